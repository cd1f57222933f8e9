import argparse
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.config import PathsSettings, Settings
from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdAttempt,
    AcdCall,
    AcdDestination,
    AgentWorkLog,
    Base,
    Call,
    CallEvent,
    CallLeg,
    Cdr,
    CdrUser,
    IvrStep,
    IvrVisit,
    PurgeLog,
    Recording,
    RecordingPause,
    User,
)
from callcenter.errors import UserError
from callcenter.retention import cli as retention_cli
from callcenter.retention import services as retention

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(paths=PathsSettings(var_dir=str(tmp_path / "var")))


@pytest.fixture
def db(settings: Settings) -> Database:
    database = Database(settings.database_url)
    database.migrate()
    return database


def count(db: Database, model: type[Base]) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


class Records:
    """One record of every category (and its children and files) at a given time."""

    def __init__(self, db: Database, files: Path) -> None:
        self.db = db
        self.files = files
        self.n = 0
        with db.session() as session:
            user = User(login="a", extension="2001", name="A", sip_ha1="0" * 32, created_at=NOW)
            session.add(user)
            session.flush()
            self.user_id = user.id

    def call(self, session: Session, ended_at: datetime | None, state: str = "ended") -> Call:
        self.n += 1
        call = Call(linkedid=f"L{self.n}", started_at=(ended_at or NOW) - timedelta(minutes=1), ended_at=ended_at,
                    state=state)
        call.legs.append(CallLeg(uniqueid=f"L{self.n}", started_at=call.started_at, ended_at=ended_at))
        session.add(call)
        session.flush()
        return call

    def add(self, at: datetime, unit: bool = True) -> str:
        """Everything at ``at``; returns the recording's path."""
        with self.db.session() as session:
            call = self.call(session, at)
            cdr = Cdr(call=call, linkedid=call.linkedid, calldate=at, duration=1, billsec=1, disposition="ANSWERED")
            session.add(cdr)
            session.flush()
            session.add(CdrUser(cdr_id=cdr.id, user_id=self.user_id))
            session.add(CallEvent(call_id=call.id, leg_id=call.legs[0].id, event_type="CHAN_START", event_time=at))
            key = f"r{self.n}"
            path = f"Recordings/{at:%Y-%m-%d}/{key}.mp3"
            session.add(Recording(id=key, linkedid=call.linkedid, channel_id="c", started_at=at, ended_at=at,
                                  path=path, status="ready"))
            session.add(AcdCall(id=key, channel_id="c", direction="inbound", entered_at=at, ended_at=at))
            session.add(IvrVisit(id=key, channel_id="c", flow="main", version="1", started_at=at, ended_at=at))
            session.flush()
            session.add(RecordingPause(recording_id=key, paused_at=at, paused_by="a"))
            session.add(AcdAttempt(call_id=key, seq=1, extension="2001", started_at=at))
            session.add(AcdDestination(call_id=key, seq=1, at=at, kind="Q", target="sales"))
            session.add(IvrStep(visit_id=key, seq=1, at=at, flow="main", node="start", action="enter"))
            session.add(AgentWorkLog(user_id=self.user_id, at=at, state="ready"))
        link = touch(self.files / path)
        if unit:
            unit_copy = self.files / "units" / "1" / path
            unit_copy.parent.mkdir(parents=True, exist_ok=True)
            os.link(link, unit_copy)
        return path


ALL_TABLES: list[type[Base]] = [Cdr, CdrUser, CallEvent, Recording, RecordingPause, AcdCall, AcdAttempt,
                                AcdDestination, IvrVisit, IvrStep, AgentWorkLog]


def set_all(db: Database, days: int | None) -> None:
    with db.session() as session:
        for category in retention.CATEGORIES:
            retention.set_policy(session, category, days, "admin")


def test_policies_are_validated(db: Database) -> None:
    with db.session() as session:
        assert retention.get_policies(session) == dict.fromkeys(retention.CATEGORIES)
        for days in (1, 999, None):
            retention.set_policy(session, "cdrs", days, "admin")
            assert retention.get_policies(session)["cdrs"] == days
        retention.set_policy(session, "recordings", 30, "admin")
        for bad in (0, 1000, -1, "abc", "30", 3.5, True):
            with pytest.raises(UserError, match="1 to 999, or forever"):
                retention.set_policy(session, "cdrs", bad, "admin")  # type: ignore[arg-type]
        with pytest.raises(UserError, match="use one of cdrs, recordings, queue_calls"):
            retention.set_policy(session, "faxes", 30, "admin")
    with db.session() as session:
        assert retention.get_policies(session)["recordings"] == 30
        assert list(retention.get_policies(session)) == list(retention.CATEGORIES)
    assert [retention.parse_days(t) for t in ("forever", "", " 30 ", "1", "999")] == [None, None, 30, 1, 999]
    for bad in ("0", "1000", "abc", "-5", "3.5", "30d"):
        with pytest.raises(UserError):
            retention.parse_days(bad)
    assert list(retention.CATEGORIES) == list(retention_cli._CATEGORY_CODES)


def test_purge_removes_only_expired_rows_and_files(db: Database, tmp_path: Path) -> None:
    files = tmp_path / "files"
    records = Records(db, files)
    cutoff = NOW - timedelta(days=30)
    old = records.add(cutoff - timedelta(days=3))
    just_old = records.add(cutoff - timedelta(seconds=1))
    at_cutoff = records.add(cutoff)
    new = records.add(NOW - timedelta(hours=1))
    for root in (files, files / "units" / "1"):
        for day in ("2026-02-06", "2026-02-07", "2026-02-08", "2026-02-09"):
            touch(root / "CDRs" / f"{day}.csv")
            touch(root / "QueueCalls" / f"{day}-queue-calls.zip")
        touch(root / "CDRs" / "notes.txt")
    set_all(db, 30)

    results = retention.purge_expired(db, files, NOW)

    assert [r.category for r in results] == list(retention.CATEGORIES)
    assert all(r.kind == "expired" and r.cutoff == cutoff and r.rows == 2 for r in results)
    by_category = {r.category: r.files for r in results}
    # Days before the cutoff's day (02-08), in the main tree and the unit's.
    assert by_category == {"cdrs": 4, "recordings": 4, "queue_calls": 4, "ivr_paths": 0, "work_logs": 0,
                           "call_events": 0}
    for model in ALL_TABLES:
        assert count(db, model) == 2, model
    for root in (files, files / "units" / "1"):
        assert not (root / old).exists() and not (root / old).parent.exists()  # its day folder went too
        assert not (root / just_old).exists() and (root / just_old).parent.exists()  # at_cutoff's day
        assert (root / at_cutoff).exists() and (root / new).exists()
        assert sorted(p.name for p in (root / "CDRs").iterdir()) == ["2026-02-08.csv", "2026-02-09.csv", "notes.txt"]
        assert sorted(p.name for p in (root / "QueueCalls").iterdir()) == [
            "2026-02-08-queue-calls.zip", "2026-02-09-queue-calls.zip"]
    with db.session() as session:
        assert count(db, Call) == 2 and count(db, CallLeg) == 2  # the old call had neither CDR nor events left
        log = retention.purge_log(session)
        assert len(log) == 6 and {e.by for e in log} == {"scheduler"} and {e.kind for e in log} == {"expired"}
        assert retention.last_purges(session)["recordings"].files == 4

    assert all(r.rows == 0 and r.files == 0 for r in retention.purge_expired(db, files, NOW))


def test_forever_categories_are_not_purged(db: Database, tmp_path: Path) -> None:
    files = tmp_path / "files"
    records = Records(db, files)
    old = records.add(NOW - timedelta(days=800))
    touch(files / "CDRs" / "2020-01-01.csv")
    assert retention.purge_expired(db, files, NOW) == []
    with db.session() as session:
        retention.set_policy(session, "work_logs", 10, "admin")
        retention.set_policy(session, "recordings", None, "admin")
    results = retention.purge_expired(db, files, NOW)
    assert [(r.category, r.rows) for r in results] == [("work_logs", 1)]
    assert count(db, AgentWorkLog) == 0
    for model in ALL_TABLES[:-1]:
        assert count(db, model) == 1, model
    assert (files / old).exists() and (files / "CDRs" / "2020-01-01.csv").exists()
    assert count(db, Call) == 1 and count(db, PurgeLog) == 1


def test_purge_works_in_batches(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    files = tmp_path / "files"
    records = Records(db, files)
    for i in range(8):
        records.add(NOW - timedelta(days=40, minutes=i), unit=False)
    records.add(NOW)
    set_all(db, 30)
    results = retention.purge_expired(db, files, NOW)
    assert {r.rows for r in results} == {8}
    assert {r.category: r.files for r in results}["recordings"] == 8
    assert count(db, Recording) == count(db, Call) == count(db, CallEvent) == 1


def test_delete_all_needs_exactly_yes(db: Database, tmp_path: Path) -> None:
    files = tmp_path / "files"
    records = Records(db, files)
    paths = [records.add(NOW - timedelta(days=d)) for d in (0, 5, 500)]
    with db.session() as session:  # a recording still going on stays
        session.add(Recording(id="live", linkedid="x", channel_id="c", started_at=NOW, path="Recordings/live.mp3"))
    for bad in ("yes", " YES", "YES ", "", "Yes"):
        with pytest.raises(UserError, match="type YES to delete every Call recordings; nothing was deleted"):
            retention.delete_all(db, files, "recordings", bad, "admin")
    assert count(db, Recording) == 4 and all((files / p).exists() for p in paths)
    with pytest.raises(UserError, match="unknown retention category"):
        retention.delete_all(db, files, "faxes", "YES", "admin")
    assert count(db, PurgeLog) == 0

    result = retention.delete_all(db, files, "recordings", "YES", "admin")
    assert (result.category, result.kind, result.cutoff, result.rows, result.files) == (
        "recordings", "delete_all", None, 3, 6)
    assert count(db, Recording) == 1 and count(db, RecordingPause) == 0
    assert not any((root / p).exists() for p in paths for root in (files, files / "units" / "1"))
    assert count(db, Cdr) == 3  # other categories untouched
    with db.session() as session:
        entry = retention.purge_log(session)[0]
        assert (entry.kind, entry.by, entry.rows, entry.cutoff) == ("delete_all", "admin", 3, None)

    touch(files / "units" / "1" / "CDRs" / "2026-03-09.csv")
    assert retention.delete_all(db, files, "cdrs", "YES", "admin").files == 1
    assert count(db, Cdr) == count(db, CdrUser) == 0
    assert count(db, Call) == 3  # their events still hold them
    assert retention.delete_all(db, files, "call_events", "YES", "admin").rows == 3
    assert count(db, Call) == count(db, CallLeg) == 0


def test_calls_gc_keeps_active_calls_and_calls_with_a_cdr(db: Database, tmp_path: Path) -> None:
    old = NOW - timedelta(days=100)
    records = Records(db, tmp_path / "files")
    with db.session() as session:
        with_cdr = records.call(session, old)
        session.add(Cdr(call=with_cdr, linkedid=with_cdr.linkedid, calldate=NOW, duration=1, billsec=1,
                        disposition="ANSWERED"))
        active = records.call(session, None, state="active")
        unended = records.call(session, None, state="merged")
        recent = records.call(session, NOW - timedelta(days=1))
        garbage = records.call(session, old, state="merged")
        # A leg that another call's (kept) event still names keeps its call.
        named = records.call(session, old)
        session.add(CallEvent(call_id=recent.id, leg_id=named.legs[0].id, event_type="LINKEDID_END",
                              event_time=NOW))
        expected = {with_cdr.id, active.id, unended.id, recent.id, named.id}
        gone = garbage.id
    with db.session() as session:
        retention.set_policy(session, "call_events", 30, "admin")
    retention.purge_expired(db, tmp_path / "files", NOW)
    with db.session() as session:
        assert set(session.scalars(select(Call.id))) == expected
        assert session.scalar(select(func.count()).where(CallLeg.call_id == gone)) == 0


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    retention_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["retention", *argv])
    return int(args.func(settings, args))


def test_cli(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> None:
    records = Records(db, settings.files_dir)
    path = records.add(datetime.now(UTC) - timedelta(days=3))
    assert run_cli(settings, "set", "recordings", "2") == 0
    assert "Call recordings: kept 2 days" in capsys.readouterr().out
    with pytest.raises(UserError, match="1 to 999"):
        run_cli(settings, "set", "recordings", "0")

    for answer in ("yes\n", "\n", ""):
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        assert run_cli(settings, "delete-all", "work_logs") == 2
        captured = capsys.readouterr()
        assert "Type YES to delete every Agent work logs: " in captured.out
        assert "nothing was deleted" in captured.err
    assert run_cli(settings, "delete-all", "work_logs", "--confirm", "y") == 2
    assert count(db, AgentWorkLog) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("YES\n"))
    assert run_cli(settings, "delete-all", "work_logs") == 0
    assert "Agent work logs: 1 rows and 0 files deleted" in capsys.readouterr().out
    assert count(db, AgentWorkLog) == 0

    assert run_cli(settings, "purge") == 0
    assert "recordings: 1 rows and 2 files older than" in capsys.readouterr().out
    assert not (settings.files_dir / path).exists()
    assert run_cli(settings, "show") == 0
    out = capsys.readouterr().out
    assert "recordings   Call recordings              2 days     " in out and "expired: 1 rows, 2 files" in out
    assert "work_logs" in out and "delete all: 1 rows" in out and "cdrs" in out and "forever" in out
