"""Rebuilding the 15-minute interval tables (callcenter/reports/intervals.py) from hand-made ACD records in
a real migrated SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.cli import build_parser
from callcenter.db.engine import Database
from callcenter.db.models import AcdAttempt, AcdCall, AgentWorkLog, OrgUnit, Queue, User
from callcenter.reports.intervals import agent_times, interval_start, queue_counts, rebuild, split
from callcenter.reports.kpis import QueueCounts
from callcenter.reports.models import AgentInterval, QueueInterval


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'reports.db'}")
    database.migrate()
    with database.session() as s:
        s.add_all([OrgUnit(id=1, name="Sales"), OrgUnit(id=2, name="Support")])
        s.flush()
        s.add(User(id=7, login="ann", extension="201", name="Ann", sip_ha1="", org_unit_id=2,
                   created_at=at(1, 0, 0)))
        s.add(Queue(name="sales", strategy="ring-all", ring_timeout=15, wrapup=10, max_wait=300,
                    service_level=20, announce_every=60))
    yield database
    database.dispose()


def call(s: Any, cid: str, entered: datetime, wait: float, outcome: str, answered: bool = False,
         talk: float | None = None, direction: str = "inbound") -> None:
    s.add(AcdCall(id=cid, channel_id=f"ch-{cid}", direction=direction, queue="sales", entered_at=entered,
                  answered_at=entered if answered else None, outcome=outcome, wait_seconds=wait,
                  talk_seconds=talk, agent_id=7 if answered else None))


def log(s: Any, when: datetime, state: str, reason: str = "") -> None:
    s.add(AgentWorkLog(user_id=7, at=when, state=state, reason=reason))


def rows(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def plain(row: Any) -> dict[str, Any]:
        return {c.name: getattr(row, c.name) for c in row.__table__.columns}
    with db.session() as s:
        queues = [plain(r) for r in s.scalars(select(QueueInterval).order_by(QueueInterval.queue,
                                                                               QueueInterval.start))]
        agents = [plain(r) for r in s.scalars(select(AgentInterval).order_by(AgentInterval.start))]
    return queues, agents


def test_interval_arithmetic() -> None:
    assert interval_start(at(2, 9, 14, 50)) == at(2, 9, 0)
    assert interval_start(at(2, 9, 15)) == at(2, 9, 15)
    assert list(split(at(2, 9, 10), at(2, 9, 20))) == [(at(2, 9, 0), 300.0), (at(2, 9, 15), 300.0)]
    assert list(split(at(2, 9, 0), at(2, 9, 0))) == []


def test_a_call_counts_in_the_interval_it_entered(db: Database) -> None:
    with db.session() as s:
        call(s, "a", at(2, 9, 14, 50), 30, "answered", answered=True, talk=200)   # waits into 09:15
        call(s, "b", at(2, 9, 5), 10, "answered", answered=True, talk=100)
        call(s, "c", at(2, 9, 6), 3, "abandoned")                                 # short abandon
        call(s, "d", at(2, 9, 20), 45, "abandoned")
        call(s, "e", at(2, 9, 21), 0, "", direction="outbound")                   # not a queue call
        s.flush()
        s.add(AcdAttempt(call_id="a", seq=1, user_id=7, unit_id=1, extension="201", queue="sales",
                         started_at=at(2, 9, 15, 10), ring_seconds=4, outcome="answered"))
        s.add(AcdAttempt(call_id="d", seq=1, user_id=7, unit_id=1, extension="201", queue="sales",
                         started_at=at(2, 9, 20, 5), ring_seconds=15, outcome="no_answer"))
        s.add(AcdAttempt(call_id="b", seq=1, user_id=7, unit_id=1, extension="201", queue="sales",
                         started_at=at(2, 9, 5, 1), ring_seconds=1, outcome="taken_by_other"))
    with db.session() as s:
        done = rebuild(s, date(2026, 3, 2), date(2026, 3, 2), short_abandon=5, now=at(10, 0, 0))
    assert (done.days, done.calls, done.queue_rows) == (1, 4, 2)
    queues, agents = rows(db)
    nine, quarter = queues
    assert (nine["start"], nine["offered"], nine["answered"], nine["answered_in_sl"]) == (at(2, 9, 0), 3, 2, 1)
    assert (nine["short_abandoned"], nine["abandoned"], nine["wait_max"], nine["talk_sum"]) == (1, 0, 30, 300)
    assert (quarter["start"], quarter["offered"], quarter["abandoned"], quarter["sl_threshold"]) == (
        at(2, 9, 15), 1, 1, 20)
    with db.session() as s:
        counts = sum((queue_counts(r) for r in s.scalars(select(QueueInterval))), QueueCounts())
    assert counts.service_level == pytest.approx(100 * 1 / 3)  # 1 within 20 s / (2 answered + 1 abandoned)
    offers = {a["start"]: a for a in agents}
    assert (offers[at(2, 9, 15)]["handled"], offers[at(2, 9, 15)]["completed"],
            offers[at(2, 9, 15)]["unanswered"], offers[at(2, 9, 15)]["talk_seconds"]) == (2, 1, 1, 200)
    assert offers[at(2, 9, 15)]["unit_id"] == 1    # the unit of the offer, not the agent's unit today
    assert at(2, 9, 0) not in offers               # an offer another agent took is not this agent's


def test_states_split_across_intervals_and_midnight(db: Database) -> None:
    with db.session() as s:
        log(s, at(1, 23, 0), "ready")                    # before the range: the state at its start
        log(s, at(2, 9, 10), "on_call")
        log(s, at(2, 9, 20), "wrap_up")
        log(s, at(2, 9, 21), "paused", "lunch")
        log(s, at(2, 9, 51), "ready")
        log(s, at(2, 23, 50), "paused", "meeting")        # runs past midnight
        log(s, at(3, 0, 10), "logged_out")
    with db.session() as s:
        rebuild(s, date(2026, 3, 2), date(2026, 3, 3), now=at(10, 0, 0))
    _, agents = rows(db)
    by_start = {a["start"]: a for a in agents}
    assert by_start[at(2, 0, 0)]["ready_seconds"] == 900             # ready since the day before
    assert by_start[at(2, 9, 0)]["on_call_seconds"] == 300
    assert by_start[at(2, 9, 15)]["on_call_seconds"] == 300
    assert by_start[at(2, 9, 15)]["wrap_up_seconds"] == 60
    assert by_start[at(2, 9, 15)]["paused_seconds"] == 540
    assert json.loads(by_start[at(2, 9, 30)]["pause_reasons"]) == {"lunch": 900}
    assert by_start[at(2, 9, 45)]["paused_seconds"] == 360 and by_start[at(2, 9, 45)]["ready_seconds"] == 540
    assert by_start[at(2, 23, 45)]["paused_seconds"] == 600 and by_start[at(2, 23, 45)]["ready_seconds"] == 300
    assert by_start[at(3, 0, 0)]["paused_seconds"] == 600             # after midnight, in the next day
    assert json.loads(by_start[at(3, 0, 0)]["pause_reasons"]) == {"meeting": 600}
    assert at(3, 0, 15) not in by_start                                # logged out: nothing
    assert all(a["unit_id"] == 2 for a in agents)                      # no offer: the agent's unit
    assert sum(a["logged_in_seconds"] for a in agents if a["start"] < at(3, 0, 0)) == 24 * 3600
    with db.session() as s:
        day = sum(agent_times(r) for r in s.scalars(select(AgentInterval)))
    assert day.pause_reasons == {"lunch": 1800, "meeting": 1200}
    assert day.wrap_up_seconds == 60 and day.on_call_seconds == 600


def test_a_state_going_on_now_counts_up_to_now(db: Database) -> None:
    with db.session() as s:
        log(s, at(2, 9, 0), "ready")
    with db.session() as s:
        rebuild(s, date(2026, 3, 2), date(2026, 3, 2), now=at(2, 9, 20))
    _, agents = rows(db)
    assert [(a["start"], a["ready_seconds"]) for a in agents] == [(at(2, 9, 0), 900), (at(2, 9, 15), 300)]


def test_rebuilding_twice_gives_the_same_rows_and_leaves_other_days(db: Database) -> None:
    with db.session() as s:
        for day in (1, 2, 3):
            call(s, f"c{day}", at(day, 12, 0), 8, "answered", answered=True, talk=60)
            log(s, at(day, 12, 0), "on_call")
            log(s, at(day, 12, 5), "ready")
            log(s, at(day, 12, 10), "logged_out")
    with db.session() as s:
        rebuild(s, date(2026, 3, 1), date(2026, 3, 3), now=at(10, 0, 0))
    first = rows(db)
    with db.session() as s:
        rebuild(s, date(2026, 3, 1), date(2026, 3, 3), now=at(10, 0, 0))
    assert rows(db) == first
    with db.session() as s:   # a record of day 2 changes; days 1 and 3 were already built
        s.get(AcdCall, "c2").talk_seconds = 90  # type: ignore[union-attr]
        s.get(AcdCall, "c1").talk_seconds = 999  # type: ignore[union-attr]
    with db.session() as s:
        rebuild(s, date(2026, 3, 2), date(2026, 3, 2), now=at(10, 0, 0))
    queues, agents = rows(db)
    assert [q["talk_sum"] for q in queues] == [60, 90, 60]     # day 1 keeps its old figure: not rebuilt
    assert agents == first[1]


def test_the_cli_rebuilds_a_range(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with db.session() as s:
        call(s, "x", at(2, 10, 0), 8, "answered", answered=True, talk=60)
    monkeypatch.setenv("CALLCENTER_DATABASE__URL", f"sqlite:///{tmp_path / 'reports.db'}")
    from callcenter.cli import main
    assert build_parser().parse_args(["reports", "rebuild", "--from", "2026-03-02", "--to", "2026-03-02"])
    assert main(["reports", "rebuild", "--from", "2026-03-02", "--to", "2026-03-02"]) == 0
    assert "1 queue calls, 1 queue intervals" in capsys.readouterr().out
    assert main(["reports", "rebuild", "--from", "2026-03-03", "--to", "2026-03-02"]) == 1
