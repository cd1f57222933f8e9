"""Outbound pacing: progressive arithmetic, the abandon ledger's rolling windows, the estimates' priors,
the VICIdial-style adaptive level, the predictive pacer's decisions from forecasts and budgets, and the
brake every mode obeys over the abandon target."""

from __future__ import annotations

import math
import random

import pytest

from callcenter.dialer.estimates import Estimates, Prior
from callcenter.dialer.pacing import (
    UK_24_HOURS,
    US_30_DAYS,
    AbandonLedger,
    Brake,
    BusyAgent,
    Decision,
    ProgressivePacer,
    Snapshot,
    Window,
    abandon_brake,
)
from callcenter.dialer.predictive import PredictivePacer, expected_excess
from callcenter.dialer.sim.vicidial import AdaptivePacer

NOW = 1_000_020.0  # on a minute: the ledger's buckets start on minutes


def snap(ready: int = 0, talking: tuple[float, ...] = (), wrapping: tuple[float, ...] = (),
         leaving: tuple[float, ...] = (), dialing: tuple[float, ...] = (), waiting: int = 0,
         now: float = NOW) -> Snapshot:
    busy = ([BusyAgent("talk", e) for e in talking] + [BusyAgent("wrapup", e) for e in wrapping]
            + [BusyAgent("wrapup", 5.0, left) for left in leaving])
    return Snapshot(now, ready, tuple(busy), dialing, waiting)


def warm(human: float = 0.25, machine: float = 0.15, talk: float = 90.0, wrapup: float = 15.0) -> Estimates:
    """Estimates after a campaign's first few hundred calls."""
    est = Estimates()
    rng = random.Random(7)
    for _ in range(500):
        r = rng.random()
        if r < human:
            est.call_result("human", rng.uniform(5, 14))
            est.amd(2.0)
        elif r < human + machine:
            est.call_result("machine", rng.uniform(8, 18))
        else:
            est.call_result("no_answer", 25.0)
    for _ in range(300):
        est.talk(rng.lognormvariate(math.log(talk) - 0.25, 0.7))
        est.wrapup(rng.uniform(0.5, 1.5) * wrapup)
    return est


def roomy(windows: tuple[Window, ...] = (US_30_DAYS,), fp: float = 0.0) -> AbandonLedger:
    """A ledger with four thousand answers and no abandons over the last two hours."""
    ledger = AbandonLedger(0.03, windows, fp)
    for i in range(4000):
        ledger.human_answered(NOW - 7200 + i * 1.8)
    return ledger


def test_progressive_places_one_call_per_free_agent() -> None:
    pacer = ProgressivePacer()
    assert pacer.decide(snap(ready=5, talking=(10.0,), dialing=(1.0, 2.0), waiting=1)) == 2
    assert pacer.decide(snap(ready=1, dialing=(1.0, 2.0))) == 0
    assert pacer.decide(snap(ready=3)) == 3
    assert snap(ready=3, talking=(1.0, 2.0)).logged_in == 5


def test_expected_excess_matches_numeric_integration() -> None:
    for mean, var in ((0.0, 1.0), (-2.0, 4.0), (3.0, 0.5), (-0.5, 9.0)):
        sd = math.sqrt(var)
        steps = 20000
        lo, hi = mean - 10 * sd, mean + 10 * sd
        width = (hi - lo) / steps
        numeric = sum(max(x, 0.0) * math.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) * width
                      for x in (lo + (i + 0.5) * width for i in range(steps)))
        assert expected_excess(mean, var) == pytest.approx(numeric, rel=1e-4, abs=1e-9)
    assert expected_excess(2.0, 0.0) == 2.0 and expected_excess(-2.0, 0.0) == 0.0


def test_estimates_start_from_the_prior_and_follow_the_outcomes() -> None:
    est = Estimates(memory=100, prior=Prior(human=0.30, machine=0.15, weight=20))
    assert est.human_rate == pytest.approx(0.30) and est.machine_rate == pytest.approx(0.15)
    assert est.observed == 0 and est.observed_talks == 0
    assert len(est.samples("talk")) == 20 and sum(est.samples("talk")) / 20 == pytest.approx(120, rel=0.1)
    assert est.human_rate_upper(1.0) > est.human_rate
    for _ in range(100):
        est.call_result("no_answer", 25.0)
    assert est.observed == 100
    assert est.human_rate == pytest.approx(20 * 0.30 / 120)  # the prior weighs 20 of 120
    for _ in range(100):  # memory is 100: the oldest outcomes leave
        est.call_result("human", 9.0)
    assert est.human_rate == pytest.approx((100 + 20 * 0.30) / 120)
    assert est.samples("human")[0] == 9.0 and len(est.samples("human")) == 100  # the prior's samples left
    assert est.mean_amd == 0.0
    est.amd(2.0)
    est.amd(3.0)
    assert est.mean_amd == 2.5
    with pytest.raises(ValueError, match="outcome must be one of"):
        est.call_result("voicemail", 3.0)


def test_ledger_counts_rolling_windows_from_timestamps() -> None:
    hour = Window("1h", 3600.0)
    ledger = AbandonLedger(0.03, [hour, Window("2h", 7200.0)], bucket_seconds=60.0)
    for i in range(100):
        ledger.human_answered(1000.0 + i)
    ledger.abandoned(1050.0)  # an abandoned person counts as answered too
    rates = ledger.rates(1200.0)
    assert (rates["1h"].answered, rates["1h"].abandoned) == (101, 1)
    assert rates["1h"].rate == pytest.approx(1 / 101)
    assert ledger.rates(1000.0 + 3600 + 200)["1h"].answered == 0  # left the hour
    assert ledger.rates(1000.0 + 3600 + 200)["2h"].answered == 101
    ledger.human_answered(4900.0)
    ledger.human_answered(4850.0)  # a little out of order
    ledger.human_answered(4500.0)  # older, in a bucket of its own
    assert ledger.rates(4900.0)["1h"].answered == 3
    assert ledger.counts(4400.0, 4900.0) == (3, 0, 0)
    assert ledger.rates(4900.0)["2h"].answered == 104


def test_ledger_replays_old_events_and_takes_back_machines() -> None:
    ledger = AbandonLedger(0.03, [US_30_DAYS, UK_24_HOURS], amd_false_positive_rate=0.05)
    day = 86400.0
    for i in range(1000):  # start-up: the last days from the database, oldest first
        ledger.human_answered(NOW - 3 * day + 30 + i * 240)
    for i in range(20):
        ledger.abandoned(NOW - 2 * day + i)
    for i in range(400):
        ledger.machine_detected(NOW - 3600 + i)
    ledger.human_answered(NOW - 10)
    ledger.machine_answered(NOW - 10)  # the agent found a machine the AMD had passed
    rates = ledger.rates(NOW)
    assert rates["30d"].answered == 1020 and rates["30d"].abandoned == 20
    assert rates["30d"].estimated_false_positives == 0.0
    recent = sum(1 for i in range(1000) if NOW - 3 * day + 30 + i * 240 > NOW - day)
    assert rates["24h"].answered == recent and rates["24h"].abandoned == 0
    assert rates["24h"].estimated_false_positives == pytest.approx(20.0)  # 5% of 400 machine verdicts
    assert rates["24h"].rate == pytest.approx(20 / (recent + 20))


def test_allowed_rate_spreads_the_slack_keeps_a_buffer_and_counts_uk_false_positives() -> None:
    us = roomy()  # 4000 answers, no abandon: 120 abandons of slack
    assert us.allowed_rate(NOW, recovery_answers=10000, buffer=5) == pytest.approx(0.03 + (120 - 5) / 10000)
    assert us.allowed_rate(NOW, recovery_answers=200, buffer=5) == pytest.approx(0.06)  # at most 2 x the target
    spent = roomy()
    for i in range(125):  # 4125 answered, 125 abandoned: 3.03%, over the target
        spent.abandoned(NOW - 100 + i * 0.5)
    assert spent.allowed_rate(NOW, recovery_answers=200, buffer=5) == 0.0
    uk = roomy((UK_24_HOURS,), fp=0.2)
    for i in range(500):  # an estimated 100 people hung up on by the AMD
        uk.machine_detected(NOW - 3000 + i)
    slack = 0.03 * 4100 - 100
    base = 0.03 - 0.97 * 100 / 4000  # what is left of the target per answer after the false positives
    assert uk.allowed_rate(NOW, recovery_answers=10000, buffer=5) == pytest.approx(base + (slack - 5) / 10000)
    fresh = AbandonLedger(0.03, [US_30_DAYS])  # no history: the buffer is earned first
    assert fresh.allowed_rate(NOW, recovery_answers=200, buffer=5) == pytest.approx(0.03 - 5 / 200)
    assert fresh.allowed_rate(NOW, recovery_answers=200, buffer=10) == 0.0


def test_predictive_is_progressive_below_min_agents_and_while_warming_up() -> None:
    state = snap(ready=1, wrapping=(12.0,) * 3, dialing=(3.0,))
    assert PredictivePacer(warm(), roomy(), min_agents=5).decide(state) == 0
    assert PredictivePacer(warm(), roomy(), min_agents=3).decide(state) > 0
    assert PredictivePacer(Estimates(), roomy(), min_agents=3).decide(state) == 0  # no outcomes of its own yet


def dialled(pacer: PredictivePacer, talking: tuple[float, ...], leaving: tuple[float, ...] = ()) -> int:
    """The calls the pacer has in flight after a minute of decisions in a frozen state."""
    total = 0
    for t in range(60):
        placed = pacer.decide(snap(ready=0, talking=talking, leaving=leaving, dialing=(0.0,) * total, now=NOW + t))
        if placed:  # every call beyond progressive fits the forecast within the budget
            assert pacer.last_abandons <= pacer.last_rate * pacer.last_answers + 1e-9
        total += placed
    return total


def test_predictive_dials_ahead_for_agents_about_to_be_free() -> None:
    est = warm(human=0.15)
    soon = dialled(PredictivePacer(est, roomy()), talking=(30.0,) * 10, leaving=(1.0,) * 10)
    assert soon >= 10  # progressive would place nothing: no agent is ready
    later = dialled(PredictivePacer(est, roomy()), talking=(1.0,) * 20)
    assert later < soon
    # A higher answer rate means fewer calls for the same agents.
    assert dialled(PredictivePacer(warm(human=0.45), roomy()), talking=(30.0,) * 10, leaving=(1.0,) * 10) < soon


def test_predictive_counts_the_calls_in_flight() -> None:
    est, ledger = warm(human=0.15), roomy()
    idle = snap(ready=5, talking=(20.0,) * 15)
    first = PredictivePacer(est, ledger).decide(idle)
    busy_lines = PredictivePacer(est, ledger).decide(snap(ready=5, talking=(20.0,) * 15, dialing=(2.0,) * first))
    assert first > 5 and busy_lines < first


def test_predictive_places_nothing_more_once_a_window_is_used_up() -> None:
    est, ledger = warm(human=0.15), roomy()
    state = snap(ready=2, leaving=(1.0,) * 10, talking=(30.0,) * 10)
    assert PredictivePacer(est, ledger).decide(state) > 2
    for i in range(123):  # 123 of 4123: 2.98%, within the target but less slack than the buffer
        ledger.abandoned(NOW - 60 + i * 0.4)
    pacer = PredictivePacer(est, ledger)
    assert pacer.decide(state) == 2  # the two ready agents get their calls, nothing is risked
    assert pacer.last_rate == 0.0


def test_predictive_respects_the_uk_false_positive_estimate() -> None:
    est = warm(human=0.15)
    state = snap(ready=0, leaving=(1.0,) * 10, talking=(30.0,) * 10)
    plain = roomy((UK_24_HOURS,), fp=0.0)
    taxed = roomy((UK_24_HOURS,), fp=0.05)
    for ledger in (plain, taxed):
        for i in range(2000):  # an AMD hung up on 2000 machines; 5% of them estimated to be people
            ledger.machine_detected(NOW - 3000 + i)
        for i in range(90):
            ledger.abandoned(NOW - 2000 + i * 10)
    assert plain.rates(NOW)["24h"].rate < 0.03 < taxed.rates(NOW)["24h"].rate
    assert PredictivePacer(est, plain).decide(state) > PredictivePacer(est, taxed).decide(state) == 0


def test_adaptive_level_follows_the_differential_and_brakes_on_drops() -> None:
    ledger = AbandonLedger(0.03, [US_30_DAYS])
    pacer = AdaptivePacer(ledger, maximum_level=3.0)
    for t in range(16):  # 4 ready of 20: differential +4
        placed = pacer.decide(snap(ready=4, talking=(30.0,) * 16, now=NOW + t))
    assert pacer.level == pytest.approx(1.2)  # 1.0 x (1 + 4 / 20) after 15 s
    assert placed == round(1.2 * 20) - 16  # goal 24 lines for 20 agents, 16 of them connected
    ledger2 = AbandonLedger(0.03, [US_30_DAYS])
    braked = AdaptivePacer(ledger2, maximum_level=3.0, start_level=2.0)
    for i in range(100):
        ledger2.human_answered(NOW - 500 + i)
    for i in range(10):
        ledger2.abandoned(NOW - 400 + i)
    for t in range(61):  # the drop statistics are read every 60 s: 10% drops today, over 50 calls placed
        braked.decide(snap(ready=0, talking=(30.0,) * 20, now=NOW + t))
    assert braked.calls_today > 50 and braked.drops_today == 10
    assert braked.level == 1.0  # ADAPT_HARD_LIMIT goes back to 1.0
    with pytest.raises(ValueError, match="mode must be one of"):
        AdaptivePacer(ledger, mode="RATIO")


# --- the brake over the target -----------------------------------------------------------------------


def over_in_24h(fp: float = 0.0) -> AbandonLedger:
    """1000 people answered two days ago; the last hour 237 connected and 13 abandoned: 5.2% in the
    24-hour window, 1.04% over 30 days."""
    ledger = AbandonLedger(0.03, [US_30_DAYS, UK_24_HOURS], fp)
    for i in range(1000):
        ledger.human_answered(NOW - 2 * 86400 + i)
    for i in range(237):
        ledger.human_answered(NOW - 3600 + i * 10)
    for i in range(13):
        ledger.abandoned(NOW - 3000 + i * 60)
    return ledger


def test_progressive_dials_one_call_per_two_free_agents_while_a_window_is_over_target() -> None:
    """Before: the progressive pacer took no ledger and dialled one call per free agent at any rate."""
    ledger = over_in_24h()
    pacer = ProgressivePacer(ledger)
    decision = pacer.decision(snap(ready=5, dialing=(1.0,)))
    assert decision.calls == 1  # 5 free agents: 2 calls' worth, one of them ringing already
    assert decision.reason == "abandon rate 5.2% over target 3% in window 24h: dialling 1 call per 2 free agents"
    assert decision.brake == Brake("24h", pytest.approx(13 / 250), 0.03, 2)  # type: ignore[arg-type]
    assert pacer.decide(snap(ready=5, dialing=(1.0,))) == 1  # the simulator's entry point, the same answer
    assert pacer.decide(snap(ready=1)) == 0  # a lone free agent would have no one behind them
    assert pacer.decide(snap(ready=8, waiting=1)) == 3  # a person waiting holds two agents too
    # Without a ledger (or within the target) it is one call per free agent, and says nothing.
    assert ProgressivePacer().decision(snap(ready=5, dialing=(1.0,))) == Decision(4)
    for i in range(200):  # people connected bring the 24-hour rate back to 13 / 450
        ledger.human_answered(NOW - 1000 + i)
    assert pacer.decision(snap(ready=5, dialing=(1.0,))) == Decision(4)
    assert pacer.decision(snap(ready=5)).reason == ""
    # The window moves: an hour past the last abandon of a day still over, the brake holds.
    assert ProgressivePacer(over_in_24h(), agents_per_call_over_target=3).decide(snap(ready=7, now=NOW + 3600)) == 2
    with pytest.raises(ValueError, match="at least 2 free agents"):
        ProgressivePacer(ledger, agents_per_call_over_target=1)


def test_the_brake_names_the_window_furthest_over_the_target() -> None:
    assert abandon_brake(AbandonLedger(0.025, [US_30_DAYS]), NOW) is None  # nobody answered yet: no rate
    ledger = AbandonLedger(0.025, [US_30_DAYS, UK_24_HOURS], 0.0)
    for i in range(90):
        ledger.human_answered(NOW - 10 * 86400 + i)
    for i in range(10):
        ledger.abandoned(NOW - 10 * 86400 + 100 + i)  # 10% in the 30 days, nothing in the last 24 hours
    ledger.human_answered(NOW - 60)
    brake = abandon_brake(ledger, NOW)
    assert brake is not None and brake.window == "30d"
    assert brake.reason == "abandon rate 9.9% over target 2.5% in window 30d: dialling 1 call per 2 free agents"
    ledger.abandoned(NOW - 30)  # 24 hours: 1 of 2
    brake = abandon_brake(ledger, NOW, agents_per_call=3)
    assert brake is not None and (brake.window, brake.rate, brake.agents_per_call) == ("24h", 0.5, 3)
    # The UK window's estimated AMD false positives count, as in the rates the wallboard shows, once a
    # person was abandoned: fewer calls would not change a rate made of estimates alone.
    uk = AbandonLedger(0.03, [UK_24_HOURS], 0.05)
    for i in range(1000):
        uk.human_answered(NOW - 5000 + i)
        uk.machine_detected(NOW - 5000 + i)
    assert uk.rates(NOW)["24h"].rate == pytest.approx(50 / 1050)
    assert abandon_brake(uk, NOW) is None
    uk.abandoned(NOW - 10)
    brake = abandon_brake(uk, NOW)
    assert brake is not None and brake.rate == pytest.approx(51 / 1051)


def test_predictive_brakes_like_progressive_over_the_target() -> None:
    """Before: over the target the predictive pacer still placed one call per free agent (or more, while
    its plan to recover over the next 15 minutes left a budget)."""
    est = warm(human=0.15)
    state = snap(ready=6, leaving=(1.0,) * 10, talking=(30.0,) * 10)
    free = PredictivePacer(est, roomy((US_30_DAYS, UK_24_HOURS))).decision(state)
    assert free.calls > 6 and free.brake is None
    pacer = PredictivePacer(est, over_in_24h())
    braked = pacer.decision(state)
    assert braked.calls == 3 and braked.brake is not None and braked.brake.window == "24h"
    assert pacer.decide(state) == 3
    assert PredictivePacer(est, over_in_24h(), min_agents=50).decide(state) == 3  # below min_agents as well
