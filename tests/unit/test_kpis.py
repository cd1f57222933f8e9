"""The published KPI formulas (callcenter/reports/kpis.py, docs/kpis.md) on hand-made numbers."""

from __future__ import annotations

import pytest

from callcenter.reports.kpis import AgentTimes, QueueCall, QueueCounts, percent, ratio


def test_zero_denominators_give_no_figure() -> None:
    empty = QueueCounts()
    assert (empty.service_level, empty.abandon_rate, empty.asa, empty.average_wait, empty.longest_wait,
            empty.average_talk) == (None, None, None, None, None, None)
    idle = AgentTimes()
    assert (idle.aht, idle.average_talk, idle.completion, idle.occupancy, idle.utilisation,
            idle.average_first_response) == (None, None, None, None, None, None)
    assert ratio(3, 0) is None and percent(0, 0) is None and percent(0, 4) == 0.0


def test_one_call_each_way() -> None:
    sl, short = 20, 5
    answered_fast = QueueCounts.of_call(QueueCall(12, answered=True, abandoned=False, talk_seconds=100), sl, short)
    assert (answered_fast.offered, answered_fast.answered, answered_fast.answered_in_sl) == (1, 1, 1)
    at_threshold = QueueCounts.of_call(QueueCall(20, answered=True, abandoned=False), sl, short)
    assert at_threshold.answered_in_sl == 1 and at_threshold.talked == 0  # no talk recorded yet
    late = QueueCounts.of_call(QueueCall(20.5, answered=True, abandoned=False, talk_seconds=50), sl, short)
    assert late.answered_in_sl == 0
    short_abandon = QueueCounts.of_call(QueueCall(4.9, answered=False, abandoned=True), sl, short)
    assert (short_abandon.abandoned, short_abandon.short_abandoned, short_abandon.waited) == (0, 1, 1)
    abandon = QueueCounts.of_call(QueueCall(5, answered=False, abandoned=True), sl, short)
    assert (abandon.abandoned, abandon.short_abandoned) == (1, 0)
    overflow = QueueCounts.of_call(QueueCall(300, answered=False, abandoned=False, overflowed=True), sl, short)
    assert (overflow.overflowed, overflow.wait_max) == (1, 300)
    waiting = QueueCounts.of_call(QueueCall(0, answered=False, abandoned=False), sl, short)
    assert (waiting.offered, waiting.waited) == (1, 0)  # still waiting: offered, no wait yet


def test_summed_intervals_give_the_figures() -> None:
    sl, short = 20, 5
    calls = [QueueCall(10, True, False, talk_seconds=120), QueueCall(30, True, False, talk_seconds=60),
             QueueCall(40, False, True), QueueCall(2, False, True),
             QueueCall(90, False, False, overflowed=True),
             QueueCall(15, True, False, talk_seconds=30, transferred=True),
             QueueCall(50, True, False, callback_requested=True), QueueCall(70, False, False, callback_requested=True,
                                                                          overflowed=True)]
    first = sum((QueueCounts.of_call(c, sl, short) for c in calls[:4]), QueueCounts())
    second = sum((QueueCounts.of_call(c, sl, short) for c in calls[4:]), QueueCounts())
    total = first + second
    assert total == sum(QueueCounts.of_call(c, sl, short) for c in calls)  # sum() from 0 works too
    assert (total.offered, total.answered, total.answered_in_sl) == (8, 4, 2)
    assert (total.abandoned, total.short_abandoned) == (1, 1)
    assert (total.overflowed, total.transfers, total.callbacks_requested, total.callbacks_completed) == (2, 1, 2, 1)
    assert total.service_level == pytest.approx(100 * 2 / 5)  # 2 in SL / (4 answered + 1 abandoned)
    assert total.abandon_rate == pytest.approx(100 * 1 / 7)   # short abandon out of both sides
    assert total.asa == pytest.approx((10 + 30 + 15 + 50) / 4)
    assert total.average_wait == pytest.approx((10 + 30 + 40 + 2 + 90 + 15 + 50 + 70) / 8)
    assert total.longest_wait == 90
    assert total.average_talk == pytest.approx((120 + 60 + 30) / 3)


def test_agent_times_and_their_figures() -> None:
    morning = (AgentTimes.in_state("ready", 600) + AgentTimes.in_state("on_call", 1200)
               + AgentTimes.in_state("wrap_up", 300) + AgentTimes.in_state("paused", 600, "lunch")
               + AgentTimes.in_state("logged_out", 9999))
    afternoon = AgentTimes.in_state("paused", 300, "coffee") + AgentTimes.in_state("paused", 100, "lunch")
    offers = AgentTimes(handled=5, completed=4, unanswered=1, talked=4, talk_seconds=1100, first_response_sum=20)
    day = morning + afternoon + offers
    assert day.logged_in_seconds == 3100 and day.paused_seconds == 1000
    assert dict(day.pause_reasons) == {"lunch": 700, "coffee": 300}
    assert day.handle_seconds == 1100 + 0 + 300  # talk + hold (not recorded: 0) + wrap-up
    assert day.aht == pytest.approx(1400 / 4)
    assert day.average_talk == pytest.approx(275)
    assert day.completion == pytest.approx(80)
    assert day.average_first_response == pytest.approx(5)
    assert day.occupancy == pytest.approx(100 * 1500 / 2100)
    assert day.utilisation == pytest.approx(100 * 1500 / 3100)
    assert AgentTimes.in_state("paused", 60).pause_reasons == {"(none)": 60}
    all_paused = AgentTimes.in_state("paused", 60, "meeting")
    assert all_paused.occupancy is None and all_paused.utilisation == 0.0
