"""The daily CSV export (CDR-2, CDR-3): exact files, per-unit copies, reruns, catching up, the jobs.

The file tests run on SQLite and, when Debian's PostgreSQL is installed, on a throwaway cluster too
(server-side cursors, the snapshot, the id collation only exist there).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import select

from callcenter.config import PathsSettings, Settings
from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdAttempt,
    AcdCall,
    AcdDestination,
    Call,
    CallLeg,
    Cdr,
    CdrUser,
    ExportRun,
    OrgUnit,
    User,
)
from callcenter.errors import UserError
from callcenter.export import daily, scheduler
from callcenter.export.cdr import CDR_HEADER, format_cdr_row, write_cdr_csv
from callcenter.export.cli import register
from callcenter.export.daily import export_day, export_missing_days, missing_days
from callcenter.export.queue_calls import QUEUE_HEADER, UserInfo, queue_call_rows
from callcenter.export.scheduler import ExportScheduler
from callcenter.export.settings import ExportSettings
from tests.support.postgres import Cluster, find_bin

DAY = date(2025, 3, 10)
T0 = datetime(2025, 3, 10, tzinfo=UTC)
CRLF = "\r\n"
QHEAD = ",".join(QUEUE_HEADER) + CRLF
CHEAD = ",".join(CDR_HEADER) + CRLF


def at(hours: int, minutes: int = 0, seconds: int = 0, day: int = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours, minutes=minutes, seconds=seconds)


def migrated(url: str) -> Database:
    database = Database(url)
    database.migrate()
    return database


# -- the scenario ---------------------------------------------------------------------------------

def seed(db: Database) -> None:
    """Units North (1), South (2), Empty (3); alice 2001 in North, bob 2002 in South, carol 2003 in none.
    Each record holds the unit its user was in at the time, as the writers store it."""
    units = {1: 1, 2: 2, 3: None}
    with db.session() as s:
        s.add_all([OrgUnit(id=1, name="North"), OrgUnit(id=2, name="South"), OrgUnit(id=3, name="Empty")])
        s.flush()
        for uid, ext, name, unit in [(1, "2001", "Alice", 1), (2, "2002", "Bob", 2), (3, "2003", "Carol", None)]:
            s.add(User(id=uid, login=ext, extension=ext, name=name, sip_ha1="", roles="agent",
                       org_unit_id=unit, created_at=T0))
        s.flush()
        cdrs = [
            # id, calldate, src_id, src, clid, dst, dst_name, duration, billsec, disposition, destination,
            # rate, charge, users
            (1, at(-1, 59, 59), "", "0601", "0601", "1000", "", 5, 0, "NO ANSWER", "", None, None, [1]),
            (2, at(0), "", "0601", '"Dupont, "JJ" Éloïse" <0601>', "1000", "Zürich Büro", 65, 60, "ANSWERED", "",
             None, None, [1]),
            (3, at(12), "2002", "2002", "2002", "0033612345678", "", 30, 25, "ANSWERED", "France mobile",
             Decimal("0.05"), Decimal("0.02083"), [2, 3]),
            (4, at(23, 59, 59), "2001", "2001", '"Alice" <2001>', "2002", "Bob", 10, 8, "ANSWERED", "", None, None,
             [1, 2]),
            (5, at(24), "", "0602", "0602", "1000", "", 3, 0, "NO ANSWER", "", None, None, [2]),
        ]
        for cid, calldate, src_id, src, clid, dst, dst_name, dur, bill, dispo, dest, rate, charge, uids in cdrs:
            s.add(Call(id=cid, linkedid=f"L{cid}", started_at=calldate, ended_at=calldate))
            s.flush()
            s.add(CallLeg(call_id=cid, uniqueid=f"L{cid}", started_at=calldate))
            s.add(Cdr(id=cid, call_id=cid, linkedid=f"L{cid}", calldate=calldate, src_id=src_id, src=src, clid=clid,
                      dst=dst, dst_name=dst_name, duration=dur, billsec=bill, disposition=dispo, destination=dest,
                      rate=rate, charge=charge, t_cause="Normal Clearing"))
            s.flush()
            s.add_all([CdrUser(cdr_id=cid, user_id=uid, unit_id=units[uid]) for uid in uids])
        s.flush()

        def acd(cid: str, entered: datetime, queue: str | None = "sales", channel: str = "", **kw: object) -> None:
            s.add(AcdCall(id=cid, channel_id=channel or f"chan-{cid}", direction="inbound", queue=queue,
                          entered_at=entered, **kw))
            s.flush()

        # (a) rang alice, then bob, who answered; the customer's channel is a leg of CDR 2's call.
        acd("qa", at(9), channel="L2", did="1000", number="0601", callers=2, agents=3, answered_at=at(9, 0, 40),
            agent_id=2, agent_unit_id=2, wait_seconds=Decimal("40.40"), talk_seconds=Decimal("120.60"),
            outcome="answered")
        s.add_all([
            AcdAttempt(call_id="qa", seq=1, user_id=1, unit_id=1, extension="2001", started_at=at(9, 0, 5),
                       ring_seconds=Decimal("15.20"), outcome="no_answer"),
            AcdAttempt(call_id="qa", seq=2, user_id=2, unit_id=2, extension="2002", started_at=at(9, 0, 21),
                       ring_seconds=Decimal("19.60"), outcome="answered"),
            AcdDestination(call_id="qa", seq=1, at=at(9), kind="Q", target="sales"),
            AcdDestination(call_id="qa", seq=2, at=at(9, 0, 40), kind="U", target="2002")])
        # (b) rang carol, nobody answered, overflowed to voicemail.
        acd("qb", at(10), queue="support", did="1001", number="+33 1 23", callers=None, agents=0,
            wait_seconds=Decimal("60"), outcome="overflow")
        s.add_all([
            AcdAttempt(call_id="qb", seq=1, user_id=3, extension="2003", started_at=at(10, 0, 10),
                       ring_seconds=Decimal("20.00"), outcome="no_answer"),
            AcdDestination(call_id="qb", seq=1, at=at(10), kind="Q", target="support"),
            AcdDestination(call_id="qb", seq=2, at=at(10, 1), kind="V", target="support-vm")])
        # (c) the caller hung up while waiting, the last second of the day; alone in the queue, which
        # the ACD records as callers=1 (the calls in the queue, this one included).
        acd("qc", at(23, 59, 59), did="1000", number="0700", callers=1, agents=1, wait_seconds=Decimal("5.00"),
            outcome="abandoned")
        s.add(AcdDestination(call_id="qc", seq=1, at=at(23, 59, 59), kind="Q", target="sales"))
        # Not in the day's file: the days before and after, and a click-to-call (no queue).
        acd("qy", at(-1, 59, 59), number="1", outcome="abandoned")
        acd("qz", at(24), number="2", outcome="abandoned")
        acd("qn", at(11), queue=None, number="3", agent_id=1, agent_unit_id=1, outcome="answered")
        s.add(AcdAttempt(call_id="qn", seq=1, user_id=1, unit_id=1, extension="2001", started_at=at(11),
                         outcome="answered"))


CDR_ROWS = {
    2: '2,2025-03-10 00:00:00,,0601,"""Dupont, ""JJ"" Éloïse"" <0601>",1000,Zürich Büro,65,60,ANSWERED,,,,'
       'Normal Clearing\r\n',
    3: "3,2025-03-10 12:00:00,2002,2002,2002,0033612345678,,30,25,ANSWERED,France mobile,0.0500,0.0208,"
       "Normal Clearing\r\n",
    4: '4,2025-03-10 23:59:59,2001,2001,"""Alice"" <2001>",2002,Bob,10,8,ANSWERED,,,,Normal Clearing\r\n',
}
QUEUE_CALLS = {
    "qa": "qa,2,2,2,sales,1000,0601,2,3,2025-03-10 09:00:00,40,35,121,U,2002,2,C\r\n",
    "qb": "qb,,,,support,1001,+33 1 23,,0,2025-03-10 10:00:00,60,20,0,V,support-vm,2,C\r\n",
    "qc": "qc,,,,sales,1000,0700,1,1,2025-03-10 23:59:59,5,0,0,,,0,H\r\n",
}
QUEUE_USER_CALLS = {
    "qa": "qa-1,1,1,2,sales,1000,0601,2,3,2025-03-10 09:00:00,40,15,0,U,2001,1,H\r\n"
          "qa-2,2,2,2,sales,1000,0601,2,3,2025-03-10 09:00:00,40,20,121,U,2002,2,C\r\n",
    "qb": "qb-1,3,,,support,1001,+33 1 23,,0,2025-03-10 10:00:00,60,20,0,U,2003,1,H\r\n"
          "qb-2,,,,support,1001,+33 1 23,,0,2025-03-10 10:00:00,60,0,0,V,support-vm,2,C\r\n",
    "qc": "",
}


def text(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def read_zip(path: Path) -> tuple[str, str]:
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist()]
        assert names == ["2025-03-10-queue_call.csv", "2025-03-10-queue_user_call.csv"]
        for info in archive.infolist():
            assert info.date_time == (2025, 3, 10, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.external_attr == 0o644 << 16
        return tuple(archive.read(name).decode("utf-8") for name in names)  # type: ignore[return-value]


# -- databases ------------------------------------------------------------------------------------

_names = itertools.count(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not (find_bin("initdb") and find_bin("pg_ctl")):
        pytest.skip("PostgreSQL is not installed (python tests/support/postgres.py install)")
    running = Cluster()
    try:
        running.start()
        yield running
    finally:
        running.stop()


def postgres_db(cluster: Cluster) -> Database:
    name = f"export_{next(_names)}"
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return migrated(f"postgresql://postgres@127.0.0.1:{cluster.port}/{name}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The seeded database, shared by the tests that only read it."""
    if request.param == "postgresql":
        db = postgres_db(request.getfixturevalue("cluster"))
    else:
        db = migrated(f"sqlite:///{tmp_path_factory.mktemp('scenario') / 'cc.db'}")
    seed(db)
    yield db
    db.dispose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = migrated(f"sqlite:///{tmp_path / 'cc.db'}")
    yield database
    database.dispose()


# -- the files ------------------------------------------------------------------------------------

def test_day_files_hold_exactly_the_days_records(scenario: Database, tmp_path: Path) -> None:
    result = export_day(scenario, tmp_path, DAY)

    cdr_text = (tmp_path / "CDRs" / "2025-03-10.csv").read_bytes().decode("utf-8")
    assert cdr_text == CHEAD + CDR_ROWS[2] + CDR_ROWS[3] + CDR_ROWS[4]
    assert CHEAD == "id,calldate,src_id,src,clid,dst,dst_name,duration,billsec,disposition,destination,rate," \
                    "charge,t_cause\r\n"
    assert not (tmp_path / "CDRs" / "2025-03-10.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    calls, places = read_zip(tmp_path / "QueueCalls" / "2025-03-10-queue-calls.zip")
    assert calls == QHEAD + QUEUE_CALLS["qa"] + QUEUE_CALLS["qb"] + QUEUE_CALLS["qc"]
    assert places == QHEAD + QUEUE_USER_CALLS["qa"] + QUEUE_USER_CALLS["qb"]
    assert QHEAD == "id,user_id,location_id,call_id,queue_id,ddi,cli,callers,agents,start_time,hold_time," \
                    "ring_time,conn_time,final_dst_type,final_dst_id,disposition,t_cause\r\n"

    assert (result.day, result.cdr_rows, result.queue_call_rows, result.queue_user_call_rows) == (DAY, 3, 3, 4)
    assert [p.relative_to(tmp_path).as_posix() for p in result.files] == [
        "CDRs/2025-03-10.csv", "QueueCalls/2025-03-10-queue-calls.zip",
        *(f"units/{u}/{name}" for u in (1, 2, 3)
          for name in ("CDRs/2025-03-10.csv", "QueueCalls/2025-03-10-queue-calls.zip"))]
    assert not list(tmp_path.rglob("*.tmp"))
    with scenario.session() as session:
        run = session.get(ExportRun, DAY)
        assert run is not None
        assert (run.cdr_rows, run.queue_call_rows, run.queue_user_call_rows) == (3, 3, 4)


def test_unit_copies_hold_only_their_users_records(scenario: Database, tmp_path: Path) -> None:
    export_day(scenario, tmp_path, DAY)
    expected = {1: ([2, 4], ["qa"]),  # alice: CDRs 2 and 4, offered qa
                2: ([3, 4], ["qa"]),  # bob: CDRs 3 and 4, answered qa
                3: ([], [])}          # nobody: the header only
    for unit, (cdr_ids, call_ids) in expected.items():
        root = tmp_path / "units" / str(unit)
        assert text(root / "CDRs" / "2025-03-10.csv") == \
            CHEAD + "".join(CDR_ROWS[i] for i in cdr_ids)
        calls, places = read_zip(root / "QueueCalls" / "2025-03-10-queue-calls.zip")
        assert calls == QHEAD + "".join(QUEUE_CALLS[c] for c in call_ids)
        assert places == QHEAD + "".join(QUEUE_USER_CALLS[c] for c in call_ids)


def test_records_stay_with_the_unit_they_were_made_in(db: Database, tmp_path: Path) -> None:
    # After the day: alice moves from North to South, bob from South to Empty. The day's copies
    # (re-exported) still follow the units stored on the records at call time.
    seed(db)
    with db.session() as session:
        for uid, unit in [(1, 2), (2, 3)]:
            user = session.get(User, uid)
            assert user is not None
            user.org_unit_id = unit
    export_day(db, tmp_path, DAY)
    expected = {1: ([2, 4], ["qa"]), 2: ([3, 4], ["qa"]), 3: ([], [])}
    for unit, (cdr_ids, call_ids) in expected.items():
        root = tmp_path / "units" / str(unit)
        assert text(root / "CDRs" / "2025-03-10.csv") == CHEAD + "".join(CDR_ROWS[i] for i in cdr_ids), unit
        calls, places = read_zip(root / "QueueCalls" / "2025-03-10-queue-calls.zip")
        # location_id too is the unit at the time: alice's offer 1, bob's answer 2.
        assert calls == QHEAD + "".join(QUEUE_CALLS[c] for c in call_ids), unit
        assert places == QHEAD + "".join(QUEUE_USER_CALLS[c] for c in call_ids), unit


def test_the_documented_examples_are_what_the_export_writes(scenario: Database, tmp_path: Path) -> None:
    # docs/export.md shows the scenario's three queue calls; "callers" counts the calls in the queue
    # when the call entered it, this one included (seed 003: "ilość połączeń w kolejce"), as the ACD
    # records it: 1 for a caller alone.
    docs = (Path(__file__).parents[2] / "docs" / "export.md").read_text(encoding="utf-8")
    shown = re.findall(r"^(?:queue_call:|queue_user_call:)?\s+(q[abc](?:-\d)?,.*)$", docs, re.MULTILINE)
    export_day(scenario, tmp_path, DAY)
    calls, places = read_zip(tmp_path / "QueueCalls" / "2025-03-10-queue-calls.zip")
    written = {line.split(",", 1)[0]: line for line in (calls + places).split(CRLF)[1:] if line and
               not line.startswith("id,")}
    assert {line.split(",", 1)[0]: line for line in shown} == written
    assert "| `callers`, `agents` | the calls in the queue when the call entered it, this one included" in docs


def test_rerun_gives_byte_identical_files(scenario: Database, tmp_path: Path) -> None:
    first = export_day(scenario, tmp_path, DAY)
    before = {path: path.read_bytes() for path in first.files}
    second = export_day(scenario, tmp_path, DAY)
    assert second == first
    assert {path: path.read_bytes() for path in second.files} == before


def test_other_days_and_the_streaming_writer(scenario: Database, tmp_path: Path) -> None:
    before = export_day(scenario, tmp_path, DAY - timedelta(days=1))
    assert (before.cdr_rows, before.queue_call_rows) == (1, 1)
    assert text(tmp_path / "CDRs" / "2025-03-09.csv").endswith(
        "1,2025-03-09 23:59:59,,0601,0601,1000,,5,0,NO ANSWER,,,,Normal Clearing\r\n")
    empty = export_day(scenario, tmp_path, date(2025, 1, 1))
    assert (empty.cdr_rows, empty.queue_call_rows, empty.queue_user_call_rows) == (0, 0, 0)
    assert (tmp_path / "CDRs" / "2025-01-01.csv").read_bytes() == CHEAD.encode()

    path = tmp_path / "south.csv"
    with scenario.session() as session, open(path, "w", encoding="utf-8", newline="") as out:
        assert write_cdr_csv(session, out, at(0), at(24), unit_id=2) == 2
        cdr = session.get(Cdr, 2)
        assert cdr is not None
        assert ",".join(format_cdr_row(cdr)) == '2,2025-03-10 00:00:00,,0601,"Dupont, "JJ" Éloïse" <0601>,1000,' \
                                                'Zürich Büro,65,60,ANSWERED,,,,Normal Clearing'
    assert text(path) == CHEAD + CDR_ROWS[3] + CDR_ROWS[4]


def test_a_failed_export_leaves_the_previous_files(scenario: Database, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = export_day(scenario, tmp_path, DAY)
    before = {path: path.read_bytes() for path in first.files}

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")
    monkeypatch.setattr(daily, "write_queue_calls", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_day(scenario, tmp_path, DAY)
    assert {path: path.read_bytes() for path in first.files} == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_queue_rows_of_a_call_sent_on_to_another_queue() -> None:
    call = SimpleNamespace(id="q1", agent_id=None, agent_unit_id=None, cdr_id=None, queue="support", did="",
                           number="5", callers=1, agents=0, entered_at=at(8), answered_at=None,
                           wait_seconds=Decimal("30.5"), talk_seconds=None)
    destinations = [SimpleNamespace(seq=1, at=at(8), kind="Q", target="support"),
                    SimpleNamespace(seq=2, at=at(8, 0, 30), kind="Q", target="sales"),
                    SimpleNamespace(seq=3, at=at(8, 0, 30), kind="C", target="callback")]
    attempts = [SimpleNamespace(seq=1, user_id=7, unit_id=4, extension="2007", started_at=at(8, 0, 2),
                                ring_seconds=Decimal("12.5"), outcome="rejected")]
    rows = queue_call_rows(call, attempts, destinations, {7: UserInfo("2007")})
    # round() halves to even: 30.5 -> 30, 12.5 -> 12.
    assert rows.call == ["q1", "", "", "", "support", "", "5", "1", "0", "2025-03-10 08:00:00", "30", "12", "0",
                         "Q", "sales", "2", "C"]
    assert rows.places == [
        ["q1-1", "7", "4", "", "support", "", "5", "1", "0", "2025-03-10 08:00:00", "30", "12", "0", "U", "2007",
         "1", "H"],
        ["q1-2", "", "", "", "support", "", "5", "1", "0", "2025-03-10 08:00:00", "30", "0", "0", "Q", "sales",
         "2", "C"]]
    assert rows.units == frozenset({4})


def test_queue_rows_of_a_call_transferred_to_another_agent() -> None:
    call = SimpleNamespace(id="q2", agent_id=8, agent_unit_id=5, cdr_id=11, queue="sales", did="1000", number="5",
                           callers=1, agents=2, entered_at=at(8), answered_at=at(8, 0, 10),
                           wait_seconds=Decimal("10"), talk_seconds=Decimal("200"))
    attempts = [SimpleNamespace(seq=1, user_id=7, unit_id=None, extension="2007", started_at=at(8, 0, 2),
                                ring_seconds=Decimal("8"), outcome="answered"),
                SimpleNamespace(seq=2, user_id=8, unit_id=5, extension="2008", started_at=at(8, 1),
                                ring_seconds=Decimal("4"), outcome="answered")]
    destinations = [SimpleNamespace(seq=1, at=at(8), kind="Q", target="sales"),
                    SimpleNamespace(seq=2, at=at(8, 0, 10), kind="U", target="2007"),
                    SimpleNamespace(seq=3, at=at(8, 1, 4), kind="U", target="2008")]
    rows = queue_call_rows(call, attempts, destinations, {7: UserInfo("2007"), 8: UserInfo("2008")})
    assert rows.call[1:3] + rows.call[11:] == ["8", "5", "12", "200", "U", "2008", "2", "C"]
    assert [row[11:] for row in rows.places] == [["8", "0", "U", "2007", "1", "C"], ["4", "200", "U", "2008", "2", "C"]]
    assert rows.units == frozenset({5})


# -- catching up ----------------------------------------------------------------------------------

def test_missing_days(caplog: pytest.LogCaptureFixture) -> None:
    today = date(2025, 3, 10)
    assert missing_days(None, today) == [date(2025, 3, 9)]
    assert missing_days(date(2025, 3, 9), today) == []
    assert missing_days(date(2025, 3, 6), today) == [date(2025, 3, 7), date(2025, 3, 8), date(2025, 3, 9)]
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        days = missing_days(date(2025, 1, 1), today)
    assert days[0] == date(2025, 2, 7) and days[-1] == date(2025, 3, 9) and len(days) == 31
    assert "callcenter export --date" in caplog.text and "2025-01-02 to 2025-02-06" in caplog.text


def test_export_missing_days_starts_after_the_last_run(db: Database, tmp_path: Path) -> None:
    today = date(2025, 3, 10)
    assert [r.day for r in export_missing_days(db, tmp_path, today)] == [date(2025, 3, 9)]
    assert export_missing_days(db, tmp_path, today) == []
    assert [r.day for r in export_missing_days(db, tmp_path, date(2025, 3, 12))] == [date(2025, 3, 10),
                                                                                     date(2025, 3, 11)]
    with db.session() as session:
        assert list(session.scalars(select(ExportRun.day).order_by(ExportRun.day))) == [
            date(2025, 3, 9), date(2025, 3, 10), date(2025, 3, 11)]
    assert sorted(p.name for p in (tmp_path / "CDRs").iterdir()) == ["2025-03-09.csv", "2025-03-10.csv",
                                                                     "2025-03-11.csv"]


# -- the jobs -------------------------------------------------------------------------------------

async def _until(condition: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _exported(db: Database) -> list[date]:
    with db.session() as session:
        return list(session.scalars(select(ExportRun.day)))


async def test_a_run_missed_while_down_happens_at_start(db: Database, tmp_path: Path) -> None:
    files = tmp_path / "files"
    first = ExportScheduler(db, files, ExportSettings())
    first.start()
    assert first.scheduler is not None
    jobs = {job.id: job for job in first.scheduler.get_jobs()}
    assert set(jobs) == {"daily-export", "daily-purge"}
    assert jobs["daily-export"].func_ref == "callcenter.export.scheduler:daily_export"
    assert str(jobs["daily-export"].trigger) == "cron[hour='1', minute='0', second='0']"
    assert str(jobs["daily-purge"].trigger) == "cron[hour='2', minute='0', second='0']"
    assert jobs["daily-export"].misfire_grace_time is None and jobs["daily-export"].coalesce
    assert jobs["daily-export"].next_run_time > datetime.now(UTC)
    await asyncio.sleep(0.1)
    assert _exported(db) == []  # nothing was due
    # The export time comes while the server is down: the stored job keeps a run time in the past.
    first.scheduler.pause()
    first.scheduler.modify_job("daily-export", next_run_time=datetime.now(UTC) - timedelta(hours=5))
    await first.shutdown()

    # Back up, with the export time changed meanwhile: the missed run still happens, at once.
    second = ExportScheduler(db, files, ExportSettings(at="03:30:00"))
    second.start()
    try:
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        await _until(lambda: _exported(db) == [yesterday])
        assert second.scheduler is not None
        job = second.scheduler.get_job("daily-export")
        await _until(lambda: second.scheduler.get_job("daily-export").next_run_time > datetime.now(UTC))
        assert str(job.trigger) == "cron[hour='3', minute='30', second='0']"
    finally:
        await second.shutdown()
    assert (files / "CDRs" / f"{yesterday}.csv").read_bytes() == CHEAD.encode()
    assert scheduler._active is None


async def test_purge_job_and_jobs_without_a_scheduler(db: Database, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    import callcenter.retention.services as retention

    calls: list[tuple[object, ...]] = []

    def fake_purge(database: Database, files_dir: Path, now: datetime) -> list[object]:
        calls.append((database, files_dir, now))
        return []
    monkeypatch.setattr(retention, "purge_expired", fake_purge)
    with caplog.at_level(logging.WARNING):
        await scheduler.daily_export()
        await scheduler.daily_purge()
    assert "no export scheduler is running" in caplog.text and not calls

    running = ExportScheduler(db, tmp_path, ExportSettings())
    running.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            ExportScheduler(db, tmp_path, ExportSettings()).start()
        await scheduler.daily_purge()
        assert [r.day for r in await running.run_export_now()] == [datetime.now(UTC).date() - timedelta(days=1)]
    finally:
        await running.shutdown()
    assert len(calls) == 1 and calls[0][0] is db and calls[0][1] == tmp_path
    assert isinstance(calls[0][2], datetime) and calls[0][2].tzinfo is not None


# -- the command ----------------------------------------------------------------------------------

def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    settings = Settings(paths=PathsSettings(var_dir=str(tmp_path)))

    def run(*argv: str) -> int:
        args = parser.parse_args(["export", *argv])
        return int(args.func(settings, args))

    assert run("--from", "2025-03-08", "--to", "2025-03-09", "--date", "2025-03-01") == 0
    out = capsys.readouterr().out
    assert "2025-03-01: CDRs/2025-03-01.csv 0 rows; QueueCalls/2025-03-01-queue-calls.zip: " \
           "2025-03-01-queue_call.csv 0 rows, 2025-03-01-queue_user_call.csv 0 rows; 0 unit copies" in out
    assert "3 day(s)" in out
    assert (settings.files_dir / "CDRs" / "2025-03-09.csv").exists()
    assert run("--missing") == 0
    assert f"{datetime.now(UTC).date() - timedelta(days=1)}:" in capsys.readouterr().out
    assert run("--missing") == 0
    assert "nothing missing" in capsys.readouterr().out
    today = datetime.now(UTC).date()
    for argv, message in [(("--date", "2025-02-30"), "--date '2025-02-30': not a date, use YYYY-MM-DD"),
                          (("--from", "2025-03-09", "--to", "2025-03-08"), "is after --to"),
                          (("--to", "2025-03-08"), "--to needs --from"),
                          (("--date", (today + timedelta(days=1)).isoformat()), "has not begun yet"),
                          ((), "say which days")]:
        with pytest.raises(UserError, match=message):
            run(*argv)
    # Today so far, on request: written, but not counted as exported (the daily run redoes it).
    assert run("--date", today.isoformat()) == 0
    assert "is not over yet" in capsys.readouterr().err
    assert run("--missing") == 0
    assert "nothing missing" in capsys.readouterr().out
