"""The pacing simulator: deterministic for a seed, its accounting adds up, a person is abandoned only
when no agent comes within 2 s, the rolling-window measure, and the CLI's table, JSON and plot."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from callcenter.dialer.estimates import Estimates
from callcenter.dialer.pacing import AbandonLedger, BusyAgent, Snapshot
from callcenter.dialer.sim import cli as simcli
from callcenter.dialer.sim.model import POPULATIONS, Dist, Population, RunResult, busy_agent, simulate, worst_window

B2C = POPULATIONS["b2c"]


def test_a_seed_gives_the_same_run_and_another_seed_another() -> None:
    first = simulate("predictive", 5, B2C, days=1, hours=0.5, seed=3)
    assert simulate("predictive", 5, B2C, days=1, hours=0.5, seed=3) == first
    assert simulate("predictive", 5, B2C, days=1, hours=0.5, seed=4) != first


@pytest.mark.parametrize("pacer", ["progressive", "vicidial", "predictive"])
def test_a_short_run_adds_up(pacer: str) -> None:
    r = simulate(pacer, 5, B2C, days=2, hours=0.5, seed=1)
    assert r.calls_placed == (r.human_answered + r.amd_machines + r.amd_false_positives + r.amd_false_negatives
                              + r.unanswered)
    assert r.human_answered == r.connects + r.abandoned  # every person passed by AMD got an agent or was abandoned
    assert 0 < r.occupancy <= 1 and 0 < r.talk_min_per_agent_hour <= 60 * r.occupancy
    assert r.abandon_rate == pytest.approx(r.abandoned / r.human_answered, abs=1e-5)
    assert r.worst_30d >= r.abandon_rate - 1e-9 or r.human_answered < 34
    if pacer == "progressive":
        assert r.abandoned == 0  # one call per free agent: a person always finds their agent


def scripted(calls: int):  # type: ignore[no-untyped-def]
    """A pacer placing ``calls`` calls at its first decision and none after."""
    class Burst:
        name = "burst"

        def __init__(self) -> None:
            self.done = False

        def decide(self, snap: Snapshot) -> int:
            placed, self.done = (0 if self.done else calls), True
            return placed

    def make(estimates: Estimates, ledger: AbandonLedger) -> Burst:
        return Burst()
    return make


# Everyone answers after 5 s, AMD decides at once and never errs: two people reach one agent together.
EVERYONE = Population("everyone", human=1.0, machine=0.0, busy=0.0, failed=0.0, human_answer=Dist(5.0, 0.0),
                      amd_time=Dist(0.01, 0.0), amd_false_positive=0.0, amd_false_negative=0.0,
                      wrapup=Dist(0.5, 0.0))


def test_a_person_is_abandoned_only_when_no_agent_comes_within_two_seconds() -> None:
    quick = simulate(scripted(2), 1, replace(EVERYONE, talk=Dist(1.0, 0.0)), days=1, hours=0.1)
    assert (quick.human_answered, quick.connects, quick.abandoned) == (2, 2, 0)  # the agent is back after 1.5 s
    slow = simulate(scripted(2), 1, replace(EVERYONE, talk=Dist(3.0, 0.0)), days=1, hours=0.1)
    assert (slow.human_answered, slow.connects, slow.abandoned) == (2, 1, 1)  # back after 3.5 s: too late
    assert slow.pacer == "burst" and slow.abandon_rate == 0.5


def test_worst_window_scores_full_enough_windows_within_the_run() -> None:
    answered = [float(t) for t in range(0, 200)]
    abandoned = [10.0, 11.0, 150.0]
    assert worst_window(answered, abandoned, [], 1000.0, 0.0, 34) == pytest.approx(2 / 34)  # the 34th answer
    assert worst_window(answered, abandoned, [], 1000.0, 0.0, 100) == pytest.approx(2 / 100)
    assert worst_window(answered, abandoned, [], 50.0, 0.0, 34) == pytest.approx(2 / 34)
    # Windows past the end of the run (holding only its last calls) are not scored.
    late = [195.0, 196.0]
    assert worst_window(answered, late, [], 100.0, 0.0, 34) == pytest.approx(2 / 34)
    assert worst_window(answered, late, [], 100.0, 0.0, 34, until=199.0) == pytest.approx(2 / 100)
    # The UK count adds the estimated AMD false positives on both sides.
    machines = [float(t) for t in range(0, 200, 2)]
    assert worst_window(answered, [], machines, 1000.0, 0.1, 200) == pytest.approx(10 / 210)


def test_the_fast_busy_agent_is_a_busy_agent() -> None:
    assert busy_agent("talk", 3.5) == BusyAgent("talk", 3.5)
    assert busy_agent("wrapup", 1.0) == BusyAgent("wrapup", 1.0, None)


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    simcli.add_arguments(parser)
    code = simcli.run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_a_table_and_json_with_the_documented_fields(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    small = ("--agents", "5", "--population", "b2c", "--days", "1", "--hours", "0.25", "--workers", "1")
    code, out, _ = run_cli(*small, "--pacers", "progressive,predictive", capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["population", "agents", "pacer"] and len(lines) == 3
    assert lines[1].split()[:3] == ["b2c", "5", "progressive"]
    plot = tmp_path / "out" / "pacing.png"
    code, out, err = run_cli(*small, "--pacers", "progressive", "--json", "--plot", str(plot), capsys=capsys)
    rows = json.loads(out)
    assert code == 0 and [r["pacer"] for r in rows] == ["progressive"]
    assert set(rows[0]) == {f.name for f in fields(RunResult)}
    assert {"talk_min_per_agent_hour", "occupancy", "abandon_rate", "worst_24h", "worst_30d"} <= set(rows[0])
    assert plot.read_bytes().startswith(b"\x89PNG") and str(plot) in err


def test_cli_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    simcli.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--population", "b2x"])
    assert "unknown population: b2x; choose from b2c, b2b, lowcontact" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--agents", "five"])


def test_a_plot_without_matplotlib_says_which_extra_to_install(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """matplotlib is the ``sim`` extra: without it the CLI refuses before running anything."""
    from callcenter.dialer.sim.plot import MatplotlibMissing, plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    code, out, err = run_cli("--agents", "5", "--population", "b2c", "--plot", str(tmp_path / "p.png"),
                             capsys=capsys)
    assert code == 2 and out == "" and "install the sim extra: pip install .[sim]" in err
    with pytest.raises(MatplotlibMissing, match=r"pip install \.\[sim\]"):
        plot([], tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
