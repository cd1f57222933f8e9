"""Calling windows in the contact's zones (clock changes included), retries and wrap-up codes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.dialer.rules import (
    DEFAULT_RETRIES,
    OUTCOMES,
    CallingWindow,
    Disposition,
    NextStep,
    RetryRule,
    after_attempt,
    after_disposition,
    parse_dispositions,
    parse_duration,
    parse_retries,
    parse_window,
)

WARSAW, NEW_YORK, LA, SYDNEY = "Europe/Warsaw", "America/New_York", "America/Los_Angeles", "Australia/Sydney"
DAY = CallingWindow()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def brute_next_open(window: CallingWindow, zones: list[str], at: datetime, limit: timedelta) -> datetime | None:
    """Minute by minute, then second by second: what next_open must agree with."""
    t = at
    while t <= at + limit:
        if window.open_at(zones, t):
            exact = max(at, t - timedelta(minutes=1))
            while not window.open_at(zones, exact):
                exact += timedelta(seconds=1)
            return exact
        t += timedelta(minutes=1)
    return None


def test_the_default_window_is_read_in_local_time() -> None:
    assert DAY.open_at([WARSAW], utc(2026, 1, 5, 7, 0))  # 08:00 CET
    assert not DAY.open_at([WARSAW], utc(2026, 1, 5, 6, 59, 59))
    assert DAY.open_at([WARSAW], utc(2026, 1, 5, 19, 59, 59))
    assert not DAY.open_at([WARSAW], utc(2026, 1, 5, 20, 0))  # 21:00 is excluded
    assert DAY.open_at([NEW_YORK], utc(2026, 1, 5, 20, 0))  # 15:00 EST
    assert DAY.open_at(WARSAW, utc(2026, 1, 5, 12))  # one zone as a plain string


def test_several_zones_must_all_be_open() -> None:
    # In the weeks when the US has already moved its clocks and Europe not yet: Warsaw 07-20 UTC, NY 12-01 UTC.
    both = [WARSAW, NEW_YORK]
    assert not DAY.open_at(both, utc(2026, 3, 10, 11, 59))
    assert DAY.open_at(both, utc(2026, 3, 10, 12, 0))
    assert DAY.open_at(both, utc(2026, 3, 10, 19, 59))
    assert not DAY.open_at(both, utc(2026, 3, 10, 20, 0))
    assert DAY.next_open(both, utc(2026, 3, 10, 8, 0)) == utc(2026, 3, 10, 12, 0)
    assert DAY.next_open(both, utc(2026, 3, 10, 20, 0)) == utc(2026, 3, 11, 12, 0)
    assert DAY.next_open(both, utc(2026, 1, 6, 20, 0)) == utc(2026, 1, 7, 13, 0)  # both on winter time


def test_zones_whose_windows_never_overlap_have_no_next_opening() -> None:
    mornings = parse_window("09:00-12:00")
    assert mornings.next_open([WARSAW, LA], utc(2026, 1, 5)) is None
    assert mornings.next_open([WARSAW], utc(2026, 1, 5)) == utc(2026, 1, 5, 8)


@pytest.mark.parametrize(("zone", "evening", "morning"), [
    (WARSAW, utc(2026, 3, 28, 20, 0), utc(2026, 3, 29, 6, 0)),  # CET -> CEST on the last Sunday of March
    (WARSAW, utc(2026, 10, 24, 19, 0), utc(2026, 10, 25, 7, 0)),  # CEST -> CET on the last Sunday of October
    (NEW_YORK, utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 12, 0)),  # EST -> EDT, second Sunday of March
    (NEW_YORK, utc(2026, 11, 1, 1, 0), utc(2026, 11, 1, 13, 0)),  # EDT -> EST, first Sunday of November
])
def test_the_window_opens_at_local_eight_on_the_days_clocks_change(zone: str, evening: datetime,
                                                                    morning: datetime) -> None:
    assert not DAY.open_at([zone], evening)
    assert DAY.next_open([zone], evening) == morning
    assert DAY.open_at([zone], morning) and not DAY.open_at([zone], morning - timedelta(seconds=1))


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    night = parse_window("02:30-03:30")
    # 2026-03-29 in Warsaw: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 03:30 CEST is 01:30 UTC.
    assert night.next_open([WARSAW], utc(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 1, 0)
    assert not night.open_at([WARSAW], utc(2026, 3, 29, 1, 30))


def test_a_window_ending_in_the_repeated_hour_opens_again_when_it_repeats() -> None:
    late = parse_window("01:00-02:30")
    # 2026-10-25 in Warsaw: 02:30 CEST (00:30 UTC) closes it; at 01:00 UTC it is 02:00 CET again.
    assert not late.open_at([WARSAW], utc(2026, 10, 25, 0, 30))
    assert late.next_open([WARSAW], utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1, 0)
    assert late.next_open([WARSAW], utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 26, 0, 0)  # 01:00 CET Monday


@pytest.mark.parametrize(("text", "zones", "at"), [
    ("08:00-21:00", [WARSAW, NEW_YORK], utc(2026, 3, 27, 18, 17, 3)),
    ("07:15-09:45 mon,wed,sat", [WARSAW, "Europe/London"], utc(2026, 3, 27, 9)),
    ("02:15-02:45", [WARSAW], utc(2026, 3, 28, 23, 0)),
    ("01:30-02:10 sun", [NEW_YORK], utc(2026, 10, 31, 12, 0)),
    # They only overlap once Sydney leaves summer time, on April 5: 12:30-13:30 UTC.
    ("18:00-23:30", [SYDNEY, "Asia/Kolkata"], utc(2026, 4, 3, 0, 0)),
])
def test_next_open_agrees_with_a_brute_force_scan(text: str, zones: list[str], at: datetime) -> None:
    window = parse_window(text)
    found = window.next_open(zones, at)
    assert found == brute_next_open(window, zones, at, timedelta(days=4))
    assert found is not None and window.open_at(zones, found)
    assert not window.open_at(zones, found - timedelta(seconds=1)) or found == at


def test_days_are_those_of_the_contact_and_openings_are_exact() -> None:
    office = parse_window("08:00-21:00 mon-fri")
    friday_night_utc = utc(2026, 6, 5, 23, 0)  # already Saturday 09:00 in Sydney (UTC+10)
    assert DAY.open_at([SYDNEY], friday_night_utc) and not office.open_at([SYDNEY], friday_night_utc)
    assert office.next_open([SYDNEY], friday_night_utc) == utc(2026, 6, 7, 22, 0)  # Monday 08:00 local
    assert office.open_at([NEW_YORK], friday_night_utc)  # still Friday 19:00 in New York
    almost = utc(2026, 1, 5, 6, 59, 30, 250)
    assert DAY.next_open([WARSAW], almost) == utc(2026, 1, 5, 7, 0)
    assert DAY.next_open([WARSAW], utc(2026, 1, 5, 12, 0, 5)) == utc(2026, 1, 5, 12, 0, 5)  # open: now
    local_evening = datetime(2026, 1, 5, 22, 0, tzinfo=ZoneInfo(WARSAW))  # any aware time; the answer is UTC
    found = DAY.next_open([WARSAW], local_evening)
    assert found == utc(2026, 1, 6, 7, 0) and found.tzinfo is UTC


def test_bad_times_and_zones_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        DAY.open_at([WARSAW], datetime(2026, 1, 5, 12))
    with pytest.raises(ValueError, match="without a time zone"):
        DAY.next_open([], utc(2026, 1, 5))
    with pytest.raises(ValueError, match="start before it ends"):
        CallingWindow(time(21), time(8))
    with pytest.raises(ValueError, match="days from 0"):
        CallingWindow(days=frozenset({7}))
    with pytest.raises(ValueError, match="days from 0"):
        CallingWindow(days=frozenset())


@pytest.mark.parametrize(("text", "window", "shown"), [
    ("08:00-21:00", CallingWindow(), "08:00-21:00"),
    (" 9:00 - 18:00  mon-fri", CallingWindow(time(9), time(18), frozenset(range(5))), "09:00-18:00 mon-fri"),
    ("10:00-14:00 sat,sun", CallingWindow(time(10), time(14), frozenset({5, 6})), "10:00-14:00 sat,sun"),
    ("08:00\u201320:00 fri-mon", CallingWindow(time(8), time(20), frozenset({4, 5, 6, 0})), "08:00-20:00 mon,fri-sun"),
    ("08:30-12:00 Monday, wed - thu", CallingWindow(time(8, 30), time(12), frozenset({0, 2, 3})),
     "08:30-12:00 mon,wed,thu"),
    ("07:00-09:00 sat", CallingWindow(time(7), time(9), frozenset({5})), "07:00-09:00 sat"),
])
def test_windows_are_read_from_text(text: str, window: CallingWindow, shown: str) -> None:
    assert parse_window(text) == window
    assert str(window) == shown and parse_window(shown) == window


@pytest.mark.parametrize(("text", "message"), [
    ("21:00-08:00", "must start before it ends; windows over midnight are not supported"),
    ("08:00-08:00", "must start before it ends"),
    ("8-21", "the start time '8' is not HH:MM"),
    ("08:00-24:00", "the end time '24:00' is not HH:MM (use 23:59 for the end of the day)"),
    ("08:61-21:00", "the start time '08:61' is not HH:MM"),
    ("08:00-21:00 funday", "'funday' is not a day"),
    ("", "calling window '': write it like 08:00-21:00"),
    ("mornings", "write it like 08:00-21:00"),
])
def test_bad_windows_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_window(text)


def test_durations() -> None:
    assert [parse_duration(v) for v in (90, "90s", "5m", "2h", "1d", "1h30m", " 300 ", "2 h", 0)] == [
        90, 90, 300, 7200, 86400, 5400, 300, 7200, 0]
    for bad in (-5, "5x", True, 1.5, "", "h", None):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_default_retries_cover_every_outcome() -> None:
    assert set(DEFAULT_RETRIES) == set(OUTCOMES)
    assert DEFAULT_RETRIES["busy"] == RetryRule(300, 5)
    assert DEFAULT_RETRIES["no_answer"] == RetryRule(3600, 4)
    assert DEFAULT_RETRIES["machine"] == RetryRule(4 * 3600, 3)
    assert str(DEFAULT_RETRIES["failed"]) == "30m x3"


def test_retries_from_config_replace_only_what_they_name() -> None:
    rules = parse_retries({"busy": "2m x3", "no_answer": {"delay": "90m", "max": 2}, "machine": {"max": 1},
                           "failed": "never", "abandoned": "1h30m x 2"})
    assert rules == {"busy": RetryRule(120, 3), "no_answer": RetryRule(5400, 2), "machine": RetryRule(4 * 3600, 1),
                     "failed": RetryRule(0, 0), "abandoned": RetryRule(5400, 2)}
    assert parse_retries({}) == DEFAULT_RETRIES


@pytest.mark.parametrize(("table", "message"), [
    ({"answered": "5m x2"}, "unknown outcome 'answered'; the outcomes are busy, no_answer, machine"),
    ({"busy": "5m"}, "retries.busy: '5m' is not like \"5m x5\""),
    ({"busy": "soon x2"}, "retries.busy: duration 'soon' is not like"),
    ({"busy": {"delay": "1h", "tries": 3}}, "retries.busy: unknown key tries"),
    ({"busy": {"max": -1}}, "retries.busy: the number of attempts -1"),
    ({"busy": {"max": True}}, "retries.busy: the number of attempts True"),
    ({"busy": 5}, "retries.busy: 5 is not like"),
])
def test_bad_retries_name_the_outcome(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_retries(table)
    with pytest.raises(ValueError, match="must be a table"):
        parse_retries(["busy"])  # type: ignore[arg-type]


NOW = utc(2026, 5, 4, 10, 0)


def test_after_an_attempt_counts_per_outcome() -> None:
    assert after_attempt("busy", {"busy": 1}, DEFAULT_RETRIES, NOW) == NextStep(
        "pending", NOW + timedelta(minutes=5), "busy (1 of 5 busy attempts), again in 5m")
    assert after_attempt("busy", {"busy": 5, "no_answer": 1}, DEFAULT_RETRIES, NOW) == NextStep(
        "failed", None, "busy (5 of 5 busy attempts), no attempts left")
    step = after_attempt("no_answer", {"busy": 4, "no_answer": 3}, DEFAULT_RETRIES, NOW)  # busy ones do not count
    assert step.status == "pending" and step.not_before == NOW + timedelta(hours=1)
    assert after_attempt("machine", {}, DEFAULT_RETRIES, NOW).reason.startswith("machine (1 of 3")  # this one
    assert after_attempt("failed", 3, DEFAULT_RETRIES, NOW) == NextStep(
        "failed", None, "failed (3 of 3 attempts), no attempts left")  # a total counts every outcome
    assert after_attempt("busy", 1, {"busy": RetryRule(0, 0)}, NOW) == NextStep(
        "failed", None, "busy is never retried")
    assert after_attempt("abandoned", 1, {}, NOW).not_before == NOW + timedelta(hours=1)  # default rule
    with pytest.raises(ValueError, match="unknown outcome 'answered'"):
        after_attempt("answered", 1, DEFAULT_RETRIES, NOW)
    with pytest.raises(ValueError, match="aware"):
        after_attempt("busy", 1, DEFAULT_RETRIES, datetime(2026, 5, 4))


def test_dispositions_from_config() -> None:
    codes = parse_dispositions({"sale": "done", "no_interest": " Done ", "call_later": "retry 2h",
                                "soon": "retry 1h 30m", "callback": "callback", "remove_me": "dnc"})
    assert codes == {"sale": Disposition("done"), "no_interest": Disposition("done"),
                     "call_later": Disposition("retry", 7200), "soon": Disposition("retry", 5400),
                     "callback": Disposition("callback"), "remove_me": Disposition("dnc")}
    assert str(codes["call_later"]) == "retry 2h" and str(codes["remove_me"]) == "dnc"
    for table, message in (({"x": "retry"}, "dispositions.x: retry needs a delay"),
                           ({"x": "retry soon"}, "dispositions.x: duration 'soon'"),
                           ({"x": "maybe"}, "dispositions.x: 'maybe' is not one of done, retry <delay>"),
                           ({"x": 3}, "dispositions.x: 3 must be text"),
                           ({" ": "done"}, "empty name")):
        with pytest.raises(ValueError, match=message):
            parse_dispositions(table)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown action"):
        Disposition("later")


def test_after_a_wrap_up_code() -> None:
    codes = parse_dispositions({"sale": "done", "call_later": "retry 2h", "cb": "callback", "remove_me": "dnc"})
    at = utc(2026, 5, 5, 16, 30)
    assert after_disposition("sale", codes, NOW, at) == NextStep("done", None, "sale: done")
    assert after_disposition("call_later", codes, NOW, None) == NextStep(
        "pending", NOW + timedelta(hours=2), "call_later: again in 2h")
    assert after_disposition("cb", codes, NOW, at) == NextStep("pending", at, "cb: call back at 2026-05-05 16:30 UTC")
    assert after_disposition("remove_me", codes, NOW, None).status == "dnc"
    with pytest.raises(ValueError, match="the agent must pick a time"):
        after_disposition("cb", codes, NOW, None)
    with pytest.raises(ValueError, match="unknown wrap-up code 'x'; the codes are sale, call_later, cb, remove_me"):
        after_disposition("x", codes, NOW, None)
