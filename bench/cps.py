"""Calls per second: the Stasis app against a plain dialplan, on the real Asterisk.

sipp places calls at rising rates, each step alternating between (a) DID 1002, answered by the
controller through ARI (answer, a short playback, hang-up) and (b) the dialplan's line-check number
doing the same without the controller. A rate counts as sustained when < 1% of the calls failed and
sipp really placed them at >= 95% of that rate (calls placed over the time it took to place them:
sipp falls behind its -r when it cannot keep up, and a slow rate with no failures proves nothing).
Each step runs --repeats times (default 3) and its median decides. Prints the highest rate each
sustains, the ratio (a)/(b), and the controller's CPU seconds per call (read from /proc).

    .venv/bin/python bench/cps.py [--rates 10,20,40,...] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import sipp
from tests.support.system import System, start_system, stop_system

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_FAILED = 0.01   # a sustained rate fails fewer than 1% of its calls
MIN_PLACED = 0.95   # ... and places them at 95% of the rate asked for, or faster
STAT_PERIOD = "100ms"  # sipp's statistics rows: when the last call was placed, to 0.1 s


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its finished children (the controller's threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


@dataclass(frozen=True)
class Run:
    ok: int
    failed: int
    placed_rate: float  # calls placed per second while sipp placed them
    cpu_per_call: float

    @property
    def fail_share(self) -> float:
        total = self.ok + self.failed
        return self.failed / total if total else 1.0


def _epoch(field: str) -> float:
    """sipp writes times as 'date<TAB>time<TAB>epoch'."""
    return float(field.split("\t")[-1])


def placed_rate(stat_file: Path, calls: int) -> float:
    """Calls per second sipp achieved: ``calls`` over the time from its start to the first statistics
    row that counts them all created (0 when it never created them all). Its cumulative CallRate
    column will not do: it goes on dividing by the time the last calls take to end."""
    if not stat_file.exists():
        return 0.0
    lines = [line for line in stat_file.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0.0
    header = lines[0].split(";")
    for line in lines[1:]:
        row = dict(zip(header, line.split(";"), strict=False))
        if int(row.get("OutgoingCall(C)", 0) or 0) >= calls:
            elapsed = _epoch(row["CurrentTime"]) - _epoch(row["StartTime"])
            return calls / elapsed if elapsed > 0 else 0.0
    return 0.0


async def step(system: System, service: str, rate: int, seconds: int) -> Run:
    calls = rate * seconds
    assert system.proc is not None
    cpu_before = cpu_seconds(system.proc.pid)
    caller = sipp.caller(system.sip_port, service, calls=calls, rate=rate,
                         extra=["-l", str(rate * 20), "-recv_timeout", "20000", "-fd", STAT_PERIOD],
                         wait_bye_ms=20000)
    result = await caller.run(timeout=seconds * 4 + 60)
    # The ledger goes on storing the step's events after the last BYE: count its CPU too.
    await asyncio.sleep(1.5)
    cpu = cpu_seconds(system.proc.pid) - cpu_before
    total = result.successful + result.failed
    return Run(result.successful, result.failed, placed_rate(caller.workdir / "stat.csv", calls),
               cpu / total if total else 0.0)


def median_run(runs: list[Run]) -> Run:
    return Run(round(statistics.median(r.ok for r in runs)), round(statistics.median(r.failed for r in runs)),
               statistics.median(r.placed_rate for r in runs), statistics.median(r.cpu_per_call for r in runs))


def sustained(run: Run, rate: int, seconds: int) -> bool:
    return (run.fail_share < MAX_FAILED and run.ok + run.failed >= rate * seconds
            and run.placed_rate >= MIN_PLACED * rate)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10,20,40,60,80,100,120,150,200,250,300")
    parser.add_argument("--seconds", type=int, default=10, help="length of each step")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step; the median decides")
    parser.add_argument("--database", default="", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-cps-"))
    system = start_system(var_dir, args.database or f"sqlite:///{var_dir / 'bench.db'}", instance="bench",
                          log_level="warning", poll_interval=0.2)
    line_check = system.settings.asterisk.line_check_number
    services = (("stasis", "1002"), ("dialplan", line_check))
    best = {"stasis": 0, "dialplan": 0}
    cpu_per_call: dict[str, list[float]] = {"stasis": [], "dialplan": []}
    alive = {"stasis": True, "dialplan": True}
    print(f"each step: median of {args.repeats} runs of {args.seconds} s; sustained = < {MAX_FAILED:.0%} failed "
          f"and >= {MIN_PLACED:.0%} of the rate placed")
    print(f"{'rate':>5} {'target':>9} {'ok':>6} {'failed':>6} {'fail %':>7} {'placed/s':>9} {'placed %':>9} "
          f"{'ctl CPU s/call':>15}  runs' placed/s")
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            runs: dict[str, list[Run]] = {name: [] for name, _ in services}
            # The two services take turns, so a drift of the machine's load hits both alike.
            for _ in range(args.repeats):
                for name, service in services:
                    if alive[name]:
                        system.no_channels_left(timeout=60)
                        runs[name].append(await step(system, service, rate, args.seconds))
            for name, _ in services:
                if not runs[name]:
                    continue
                run = median_run(runs[name])
                cpu_per_call[name].append(run.cpu_per_call)
                verdict = "" if sustained(run, rate, args.seconds) else "  not sustained"
                each = ",".join(f"{r.placed_rate:.1f}" for r in runs[name])
                print(f"{rate:>5} {name:>9} {run.ok:>6} {run.failed:>6} {run.fail_share * 100:>6.2f}% "
                      f"{run.placed_rate:>9.1f} {run.placed_rate / rate * 100:>8.1f}% {run.cpu_per_call:>15.5f}"
                      f"  {each}{verdict}", flush=True)
                if verdict:
                    alive[name] = False
                else:
                    best[name] = rate
            if not any(alive.values()):
                break
    finally:
        stop_system(system)
    ratio = best["stasis"] / best["dialplan"] if best["dialplan"] else float("nan")
    print()
    print(f"highest CPS sustained (< {MAX_FAILED:.0%} failed, >= {MIN_PLACED:.0%} of the rate placed): "
          f"stasis {best['stasis']}, dialplan {best['dialplan']}, ratio {ratio:.2f}")
    for name in ("stasis", "dialplan"):
        values = cpu_per_call[name]
        if values:
            print(f"controller CPU per call ({name} calls, incl. CDR ledger): "
                  f"median {statistics.median(values) * 1000:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
