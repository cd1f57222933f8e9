"""The dialer's day report (dialer/reports.py) on hand-made attempts and work-log rows in a migrated SQLite
database: every figure exact, day boundaries, both abandon windows with the AMD false positives counted as
the pacer's ledger counts them, the agents' time on the campaign and occupancy, and the CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import AgentWorkLog, DialerAttempt, User
from callcenter.dialer import reports
from callcenter.dialer.estimates import Estimates
from callcenter.dialer.pacing import AbandonLedger
from callcenter.dialer.reports import CSV_HEADER, DayReport, campaign_day, campaign_days, csv_rows, percentile
from callcenter.dialer.settings import CampaignSpec
from callcenter.users.services import add_user

D1, D2 = date(2030, 3, 1), date(2030, 3, 2)
AFTER = datetime(2030, 3, 5, tzinfo=UTC)  # "now": both days are over


def t(day: date, clock: str) -> datetime:
    hour, minute, second = (float(part) for part in [*clock.split(":"), "0"][:3])
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour, minutes=minute, seconds=second)


@dataclass
class A:
    """An attempt: placed at (day, clock); the other times are clocks of the same day, or None."""

    id: str
    day: date
    placed: str
    outcome: str
    amd: str = ""
    answered: str | None = None
    human: str | None = None
    connected: str | None = None
    abandoned: str | None = None
    message: str | None = None
    talk: float | None = None
    campaign: str = "sales"
    agent: str | None = None  # the login of the agent connected

    def row(self, users: dict[str, int]) -> DialerAttempt:
        def at(clock: str | None) -> datetime | None:
            return None if clock is None else t(self.day, clock)

        return DialerAttempt(id=self.id, campaign=self.campaign, number="+48221234567", mode="predictive",
                             agent_id=users[self.agent] if self.agent else None,
                             placed_at=t(self.day, self.placed), answered_at=at(self.answered),
                             human_at=at(self.human), connected_at=at(self.connected), abandoned_at=at(self.abandoned),
                             message_at=at(self.message), amd_status=self.amd, outcome=self.outcome,
                             talk_seconds=self.talk, ended_at=None if self.outcome == "" else t(self.day, "23:59:59"))


ATTEMPTS = [
    # 30 days before D1 begins on 31 January: 20 January is outside both windows, 10 February inside.
    A("old", date(2030, 1, 20), "10:00", "abandoned", answered="10:00:05", human="10:00:05", abandoned="10:00:07"),
    A("e1", date(2030, 2, 10), "10:00", "abandoned", answered="10:00:05", human="10:00:05", abandoned="10:00:07"),
    A("e2", date(2030, 2, 10), "11:00", "human", answered="11:00:05", human="11:00:05", connected="11:00:06", talk=10),
    # D1
    A("a1", D1, "09:00", "human", "HUMAN", "09:00:05", "09:00:07", "09:00:08", talk=120, agent="2001"),
    A("a2", D1, "10:00", "human", "off", "10:00:04", "10:00:04", "10:00:05.5", talk=60.5),
    A("a3", D1, "11:00", "abandoned", "NOTSURE", "11:00:01", "11:00:03", abandoned="11:00:05", message="11:00:05"),
    A("a4", D1, "12:00", "machine", "MACHINE", "12:00:03"),
    A("a5", D1, "12:01", "machine", "MACHINE", "12:01:03"),
    A("a6", D1, "13:00", "busy"),
    A("a7", D1, "23:59:59", "no_answer"),  # the last second of D1
    A("a8", D1, "14:00", "hung_up", "HANGUP", "14:00:02"),
    A("x1", D1, "09:30", "abandoned", answered="09:30:01", human="09:30:01", abandoned="09:30:03",
      campaign="other"),  # another campaign
    # D2
    A("b1", D2, "00:00", "human", "HUMAN", "00:00:08", "00:00:10", "00:00:12", talk=30,
      agent="2002"),  # its first second
    A("b2", D2, "08:00", "abandoned", "", "08:00:02", "08:00:02", abandoned="08:00:03"),  # hung up waiting
    A("b3", D2, "09:00", ""),  # still ringing
    A("b4", D2, "09:30", "failed"),
    A("b5", D2, "09:40", "lost"),
    A("c1", date(2030, 3, 3), "00:00", "human", "", "00:00:01", "00:00:01", "00:00:02", talk=50),  # the next day
]

# (agent login, clock) -> state. 2001 takes an inbound call, then a1; 2002 takes b1 just after midnight;
# 2003 waits all day and takes no call of the campaign.
WORK = [
    ("2001", t(date(2030, 2, 28), "22:00"), "ready"),
    ("2001", t(D1, "08:00"), "on_call"),  # an inbound call of the same queue
    ("2001", t(D1, "08:30"), "wrap_up"),
    ("2001", t(D1, "08:40"), "ready"),
    ("2001", t(D1, "09:00:08"), "on_call"),  # a1
    ("2001", t(D1, "09:02:08"), "wrap_up"),
    ("2001", t(D1, "09:05"), "ready"),
    ("2001", t(D1, "12:00"), "paused"),
    ("2001", t(D1, "13:00"), "ready"),
    ("2001", t(D2, "02:00"), "logged_out"),
    ("2002", t(D1, "23:50"), "ready"),
    ("2002", t(D2, "00:00:05"), "ringing"),
    ("2002", t(D2, "00:00:12"), "on_call"),  # b1
    ("2002", t(D2, "00:00:42"), "wrap_up"),
    ("2002", t(D2, "00:10:42"), "logged_out"),
    ("2003", t(date(2030, 2, 1), "08:00"), "ready"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    root: Path = tmp_path_factory.mktemp("reports")
    database = Database(f"sqlite:///{root / 'cc.db'}")
    database.migrate()
    with database.session() as session:
        for extension in ("2001", "2002", "2003"):
            add_user(session, name=f"Agent {extension}", extension=extension)
        ids = {u.login: u.id for u in session.scalars(select(User))}
        session.add_all(a.row(ids) for a in ATTEMPTS)
        session.add_all(AgentWorkLog(user_id=ids[login], at=at, state=state) for login, at, state in WORK)
    yield database
    database.dispose()


def days(db: Database, first: date = D1, last: date = D2, **kwargs: Any) -> list[DayReport]:
    options: dict[str, Any] = {"target": 3.0, "windows": ("30d", "24h"), "amd_false_positive_rate": 10.0,
                               "now": AFTER, **kwargs}
    with db.session() as session:
        return campaign_days(session, "sales", first, last, **options)


def test_counts_of_each_day_with_exact_boundaries(db: Database) -> None:
    first, second = days(db)
    assert (first.day, second.day) == (D1, D2)
    assert (first.attempts, first.answered, first.reached, first.connects) == (8, 6, 3, 2)
    assert (first.abandoned, first.abandoned_with_message) == (1, 1)
    assert first.amd == {"HUMAN": 1, "MACHINE": 2, "NOTSURE": 1, "HANGUP": 1, "off": 1, "none": 2}
    assert first.outcomes == {"human": 2, "abandoned": 1, "machine": 2, "busy": 1, "no_answer": 1, "failed": 0,
                              "hung_up": 1, "lost": 0, "in_progress": 0, "other": 0}
    assert first.talk_minutes == pytest.approx(180.5 / 60)
    assert (first.connect_median, first.connect_p90) == (1.25, 1.5)

    assert (second.attempts, second.answered, second.reached, second.connects) == (5, 2, 2, 1)
    assert (second.abandoned, second.abandoned_with_message) == (1, 0)
    assert second.amd == {"HUMAN": 1, "MACHINE": 0, "NOTSURE": 0, "HANGUP": 0, "off": 0, "none": 4}
    assert {k: v for k, v in second.outcomes.items() if v} == {"human": 1, "abandoned": 1, "failed": 1, "lost": 1,
                                                              "in_progress": 1}
    assert second.talk_minutes == pytest.approx(0.5)
    assert (second.connect_median, second.connect_p90) == (2.0, 2.0)


def test_abandon_windows_with_amd_false_positives_in_the_24_hour_window_only(db: Database) -> None:
    first, second = days(db)
    day, month = first.window("24h"), first.window("30d")
    assert day is not None and month is not None
    # D1: 1 abandoned of 3 reached, plus 10 % of the 2 machine verdicts on both sides
    assert (day.false_positives, day.abandoned, day.reached) == pytest.approx((0.2, 1.2, 3.2))
    assert day.rate == pytest.approx(37.5) and day.over_target
    # 31 January to 1 March: 10 February (1 of 2) and D1 (1 of 3); 20 January is out
    assert (month.false_positives, month.abandoned, month.reached, month.rate) == (0.0, 2.0, 5.0, 40.0)
    day, month = second.window("24h"), second.window("30d")
    assert day is not None and month is not None
    assert (day.abandoned, day.reached, day.rate) == (1.0, 2.0, 50.0)
    assert (month.abandoned, month.reached) == (3.0, 7.0) and month.rate == pytest.approx(300 / 7)
    assert [w.window for w in first.windows] == ["30d", "24h"]  # as configured
    only = days(db, windows=("24h",), target=60.0)[0]
    assert only.window("30d") is None and only.window("24h") is not None
    assert not only.window("24h").over_target  # type: ignore[union-attr]


D1_AGENT_SECONDS = (20 * 60 + 8) + 120 + 172 + (2 * 3600 + 55 * 60) + 11 * 3600 + 10 * 60


def test_agent_time_is_the_time_spent_on_the_campaign_with_occupancy_and_talk_per_agent_hour(db: Database) -> None:
    """Before: every member of the campaign's queue counted all their working time, inbound calls and
    the waits for them included (23 h on D1 here), and another campaign of the queue counted it again."""
    first, second = days(db)
    # 2001 on D1: the wait from the day before ended with an inbound call (8 h, not counted), the call and
    # its wrap-up (40 min, not counted); the wait it ended (20 min 8 s), a1 (2 min) and its wrap-up
    # (2 min 52 s); ready 2 h 55 until a pause and 11 h until the log-out at 02:00 (no call ended them:
    # a1's). 2002 waits from 23:50 for b1 (10 min). 2003 took no call of the campaign.
    assert first.agent_hours == pytest.approx(D1_AGENT_SECONDS / 3600) == pytest.approx(14.5)
    assert first.busy_hours == pytest.approx(292 / 3600)
    assert first.occupancy == pytest.approx(100 * 292 / D1_AGENT_SECONDS)
    assert first.talk_per_agent_hour == pytest.approx(180.5 / 60 / 14.5)
    # D2: 2001 ready till the log-out at 02:00 (a1's); 2002 ready 5 s and ringing 7 s before b1, b1 30 s,
    # its wrap-up 10 min.
    assert second.agent_hours == pytest.approx((7200 + 12 + 30 + 600) / 3600)
    assert second.busy_hours == pytest.approx(630 / 3600)


def test_a_day_not_over_counts_agent_time_until_now(db: Database) -> None:
    with db.session() as session:
        report = campaign_day(session, "sales", D2, target=3.0, windows=("24h",),
                              amd_false_positive_rate=10.0, now=t(D2, "01:00"))
    assert report.agent_hours == pytest.approx((3600 + 12 + 30 + 600) / 3600)
    assert report.busy_hours == pytest.approx(630 / 3600)


def test_an_empty_day_has_no_rates_and_no_ratios(db: Database) -> None:
    with db.session() as session:
        report = campaign_day(session, "sales", date(2030, 6, 1), target=3.0, windows=("30d", "24h"),
                              amd_false_positive_rate=2.0, now=AFTER)
    assert report.attempts == 0 and report.agent_hours == 0
    assert report.talk_per_agent_hour is None and report.occupancy is None
    assert report.connect_median is None and report.connect_p90 is None
    assert all(w.rate is None and not w.over_target for w in report.windows)


def test_bad_ranges_and_windows_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="first day is after the last"):
        days(db, D2, D1)
    with pytest.raises(ValueError, match="unknown abandon window '7d'"):
        days(db, windows=("7d",))


def test_nearest_rank_percentile() -> None:
    assert percentile([], 0.9) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([float(n) for n in range(10, 0, -1)], 0.9) == 9.0
    assert percentile([float(n) for n in range(1, 12)], 0.9) == 10.0  # ceil(9.9) = 10th of 11


EXPECTED_HEADER = (
    "campaign,day,attempts,answered,reached,connects,abandoned,abandoned_with_message,abandon_target_percent,"
    "abandon_rate_24h_percent,abandoned_24h,reached_24h,amd_false_positives_24h,over_target_24h,"
    "abandon_rate_30d_percent,abandoned_30d,reached_30d,over_target_30d,"
    "amd_human,amd_machine,amd_notsure,amd_hangup,amd_off,amd_none,"
    "outcome_human,outcome_abandoned,outcome_machine,outcome_busy,outcome_no_answer,outcome_failed,outcome_hung_up,"
    "outcome_lost,outcome_in_progress,outcome_other,"
    "talk_minutes,agent_hours,busy_hours,talk_minutes_per_agent_hour,occupancy_percent,"
    "connect_median_seconds,connect_p90_seconds")


def test_csv_has_the_documented_header_and_one_row_a_day(db: Database) -> None:
    assert ",".join(CSV_HEADER) == EXPECTED_HEADER
    rows = list(csv_rows(days(db)))
    assert rows[0] == list(CSV_HEADER) and len(rows) == 3
    assert all(len(row) == len(CSV_HEADER) for row in rows)
    first = dict(zip(CSV_HEADER, rows[1], strict=True))
    assert first == {
        "campaign": "sales", "day": "2030-03-01", "attempts": "8", "answered": "6", "reached": "3", "connects": "2",
        "abandoned": "1", "abandoned_with_message": "1", "abandon_target_percent": "3.00",
        "abandon_rate_24h_percent": "37.50", "abandoned_24h": "1.20", "reached_24h": "3.20",
        "amd_false_positives_24h": "0.20", "over_target_24h": "yes",
        "abandon_rate_30d_percent": "40.00", "abandoned_30d": "2.00", "reached_30d": "5.00", "over_target_30d": "yes",
        "amd_human": "1", "amd_machine": "2", "amd_notsure": "1", "amd_hangup": "1", "amd_off": "1", "amd_none": "2",
        "outcome_human": "2", "outcome_abandoned": "1", "outcome_machine": "2", "outcome_busy": "1",
        "outcome_no_answer": "1", "outcome_failed": "0", "outcome_hung_up": "1", "outcome_lost": "0",
        "outcome_in_progress": "0", "outcome_other": "0",
        "talk_minutes": "3.01", "agent_hours": "14.50", "busy_hours": "0.08", "talk_minutes_per_agent_hour": "0.21",
        "occupancy_percent": "0.6", "connect_median_seconds": "1.25", "connect_p90_seconds": "1.50"}
    unused = dict(zip(CSV_HEADER, list(csv_rows(days(db, windows=("30d",))))[1], strict=True))
    assert [unused[k] for k in CSV_HEADER if k.endswith("_24h") or "_24h_" in k] == [""] * 5
    text = io.StringIO()
    csv.writer(text).writerows(csv_rows([]))
    assert text.getvalue().strip() == EXPECTED_HEADER


def test_csv_cells_that_would_run_as_formulas_are_neutralised(db: Database) -> None:
    # A campaign named like a formula (the admin pages' download and the CLI open in spreadsheets).
    report = days(db)[0]
    for name in ('=HYPERLINK("http://evil.example","x")', "@SUM(1)", "+1+cmd", "-2+3", "\t=1"):
        row = dict(zip(CSV_HEADER, list(csv_rows([dataclasses.replace(report, campaign=name)]))[1], strict=True))
        assert row["campaign"] == "'" + name
        assert row["abandon_rate_24h_percent"] == "37.50" and row["day"] == "2030-03-01"  # numbers unchanged
    negative = dataclasses.replace(report, campaign="-", talk_minutes=-1.5)
    row = dict(zip(CSV_HEADER, list(csv_rows([negative]))[1], strict=True))
    assert (row["campaign"], row["talk_minutes"]) == ("-", "-1.50")


def test_other_campaigns_attempts_are_not_counted(db: Database) -> None:
    with db.session() as session:
        other = campaign_day(session, "other", D1, target=3.0, windows=("24h",),
                             amd_false_positive_rate=0.0, now=AFTER)
    assert (other.attempts, other.reached, other.abandoned) == (1, 1, 1)
    assert other.agent_hours == 0  # nobody took its call: 2001 and 2002's time is the sales campaign's
    assert reports.WORKING_STATES >= reports.BUSY_STATES


# --- the windows as the pacer counts them ---------------------------------------------------------------

EDGE = [
    A("m1", D1, "10:00", "abandoned", answered="10:00:05", human="10:00:05", abandoned="10:00:07", campaign="edge"),
    A("m2", D1, "13:00", "abandoned", answered="13:00:05", human="13:00:05", abandoned="13:00:07", campaign="edge"),
    A("m3", D1, "14:00", "human", answered="14:00:05", human="14:00:05", connected="14:00:06", campaign="edge"),
    # An agent's wrap-up found a machine the AMD had let through: not a person for the windows.
    A("m4", D1, "15:00", "machine", "HUMAN", "15:00:03", "15:00:05", "15:00:06", campaign="edge"),
    A("m5", D1, "16:00", "machine", "MACHINE", "16:00:03", campaign="edge"),
    # Placed on D1; the person answered (and was abandoned) after midnight: D1's attempts, D2's windows.
    A("n1", D1, "23:59:50", "abandoned", campaign="edge"),
    A("p1", D2, "09:00", "human", answered="09:00:05", human="09:00:05", connected="09:00:06", campaign="edge"),
]


def test_the_windows_count_people_when_they_answered_and_end_now_for_today(db: Database) -> None:
    """Before: calendar UTC days by the time the call was placed; today's 24-hour window began at midnight."""
    from callcenter.dialer.loop import replay
    from callcenter.dialer.state import CampaignRuntime, windows_of
    from callcenter.dialer.store import history

    with db.session() as session:
        session.add_all(a.row({}) for a in EDGE)
        session.flush()
        n1 = session.get(DialerAttempt, "n1")
        assert n1 is not None
        n1.answered_at = n1.human_at = t(D2, "00:00:01")
        n1.abandoned_at = t(D2, "00:00:03")
    now = t(D2, "12:00:10")
    spec = CampaignSpec("edge", "sales_q", "+48221234500", abandon_windows=("30d", "24h"), amd_false_positive_rate=10.0)
    with db.session() as session:
        first, second = campaign_days(session, "edge", D1, D2, target=3.0, windows=spec.abandon_windows,
                                      amd_false_positive_rate=10.0, now=now)
        now_rates = reports.abandon_rates(session, spec, now)
        past = history(session, "edge", now)
    assert first.attempts == 6 and second.attempts == 1  # by the day placed, as before
    # D1, to its midnight: m1 and m2 abandoned, m3 connected (m4 was a machine), m5's verdict.
    day = first.window("24h")
    assert day is not None
    assert (day.reached, day.abandoned, day.false_positives) == pytest.approx((3.1, 2.1, 0.1))
    # D2 as of now: the 24 hours since 12:00:10 yesterday: m2, m3 (m4), m5, n1, p1; m1 is out.
    day, month = second.window("24h"), second.window("30d")
    assert day is not None and month is not None
    assert (day.reached, day.abandoned) == pytest.approx((4.1, 2.1)) and day.over_target
    assert (month.reached, month.abandoned) == (5.0, 3.0)
    # The pacer's ledger, rebuilt from the same rows as the controller does at start-up, agrees.
    runtime = CampaignRuntime(spec, Estimates(), AbandonLedger(0.03, windows_of(spec), 0.1))
    for attempt in past:
        replay(runtime, attempt)
    ledger = runtime.ledger.rates(now.timestamp())
    assert day.rate == pytest.approx(100 * ledger["24h"].rate) and day.reached == pytest.approx(
        ledger["24h"].answered + ledger["24h"].estimated_false_positives)
    assert month.rate == pytest.approx(100 * ledger["30d"].rate)
    assert now_rates == second.windows  # what `callcenter dialer start` shows


def test_the_cli_shows_the_rates_and_starts_a_campaign_over_target_only_when_confirmed(
        db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `callcenter dialer start` started a campaign over its target without a word."""
    from argparse import Namespace
    from types import SimpleNamespace

    from callcenter.dialer import store
    from callcenter.dialer.cli import cmd_start_stop
    from callcenter.errors import UserError

    recent = datetime.now(UTC) - timedelta(hours=2)
    with db.session() as session:
        for n, abandoned in enumerate((True, False, False)):
            session.add(DialerAttempt(id=f"cli{n}", campaign="loud", number="+48221234567", mode="progressive",
                                      placed_at=recent, answered_at=recent, human_at=recent, amd_status="off",
                                      abandoned_at=recent if abandoned else None,
                                      outcome="abandoned" if abandoned else "human"))
    loud = CampaignSpec("loud", "sales_q", "+48221234500", mode="progressive", abandon_windows=("24h", "30d"))
    quiet = CampaignSpec("quiet", "other_q", "+48221234500", mode="progressive")
    settings: Any = SimpleNamespace(campaigns={"loud": loud, "quiet": quiet}, source="test.toml",
                                    database_url=db.url)

    def running() -> set[str]:
        with db.session() as session:
            return store.running_campaigns(session)

    with pytest.raises(UserError) as refused:
        cmd_start_stop(settings, Namespace(campaign="loud", action="start", confirm=False))
    assert str(refused.value) == (
        "campaign loud is over its abandon target of 3% (24h 33.3%, 30d 33.3%): while it is, every mode dials "
        "1 call per 2 free agents. Not started; add --confirm to start it anyway")
    shown = capsys.readouterr().out.splitlines()
    assert shown == ["campaign loud abandon rate 24h 33.3% (1 abandoned of 3 people reached; target 3%; OVER TARGET)",
                     "campaign loud abandon rate 30d 33.3% (1 abandoned of 3 people reached; target 3%; OVER TARGET)"]
    assert "loud" not in running()
    assert cmd_start_stop(settings, Namespace(campaign="loud", action="start", confirm=True)) == 0
    assert "loud" in running() and capsys.readouterr().out.endswith("campaign loud started "
                                                                   "(a running controller follows within 2 s)\n")
    # Within its target (nobody reached yet): started without a question.
    assert cmd_start_stop(settings, Namespace(campaign="quiet", action="start", confirm=False)) == 0
    assert capsys.readouterr().out.startswith("campaign quiet abandon rate 30d -- (nobody reached yet; target 3%)")
    for name in ("loud", "quiet"):
        cmd_start_stop(settings, Namespace(campaign=name, action="stop", confirm=False))
    assert not running() & {"loud", "quiet"}
