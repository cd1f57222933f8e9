import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.ledger import CelIngestor, CelRecord
from callcenter.db.engine import Database
from callcenter.db.models import Call, CallEvent, CallLeg, Cdr, User
from callcenter.users.services import add_user

SAMPLE = Path(__file__).parent / "data" / "cel_sample.jsonl"


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 't.db'}")
    database.migrate()
    with database.session() as session:
        add_user(session, name="Alice", extension="2001", sip_password="secret-2001")
        add_user(session, name="Bob", extension="2002", sip_password="secret-2002")
    return database


def test_sample_log_gives_one_cdr_per_call(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "cel.jsonl"
    shutil.copy(SAMPLE, log)
    ingestor = CelIngestor(log, db, {"1000": "Demo greeting"})
    assert ingestor.poll() == 22
    assert ingestor.poll() == 0  # nothing new, nothing twice
    with db.session() as session:
        cdrs = list(session.scalars(select(Cdr).order_by(Cdr.id)))
        greeting, internal = cdrs
        assert (internal.src_id, internal.dst, internal.dst_name, internal.disposition) == (
            "2001", "2002", "Bob", "ANSWERED")
        assert (internal.duration, internal.billsec) == (2, 2)
        assert (greeting.dst, greeting.dst_name, greeting.disposition) == ("1000", "Demo greeting", "ANSWERED")
        assert (greeting.duration, greeting.billsec) == (6, 6)
        assert len(session.scalars(select(CallLeg)).all()) == 3
        assert len(session.scalars(select(CallEvent)).all()) == 22
        assert {c.state for c in session.scalars(select(Call))} == {"ended"}
        assert {c.direction for c in session.scalars(select(Call))} == {"internal", "inbound"}


def test_reading_resumes_from_the_stored_cursor_and_waits_for_whole_lines(db: Database, tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    log = tmp_path / "cel.jsonl"
    log.write_text("".join(lines[:5]) + lines[5][:30])  # a line half written
    assert CelIngestor(log, db, {}).poll() == 5
    with open(log, "a") as out:
        out.write(lines[5][30:] + "".join(lines[6:]))
    # A new ingestor (a restarted controller) goes on where the last one committed.
    assert CelIngestor(log, db, {}).poll() == 17
    with db.session() as session:
        assert len(session.scalars(select(Cdr)).all()) == 2


def test_a_failed_transaction_stores_nothing_and_is_retried(db: Database, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "cel.jsonl"
    shutil.copy(SAMPLE, log)
    ingestor = CelIngestor(log, db, {})
    import callcenter.calls.ledger as ledger

    original = ledger.build_cdr

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("database went away")

    monkeypatch.setattr(ledger, "build_cdr", broken)
    with pytest.raises(RuntimeError):
        ingestor.poll()
    with db.session() as session:
        assert session.scalars(select(CallEvent)).all() == []
    monkeypatch.setattr(ledger, "build_cdr", original)
    assert ingestor.poll() == 22


def test_bad_lines_are_reported_and_skipped(db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    log = tmp_path / "cel.jsonl"
    log.write_text("".join(lines[:3]) + "{not json\n" + '{"eventtype": "HANGUP"}\n' + "".join(lines[3:]))
    ingestor = CelIngestor(log, db, {})
    assert ingestor.poll() == 22
    assert ingestor.bad_lines == 2
    assert "bad CEL record skipped" in caplog.text


def test_a_replaced_file_is_read_from_the_start(db: Database, tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    log = tmp_path / "cel.jsonl"
    log.write_text("".join(lines[:4]))
    ingestor = CelIngestor(log, db, {})
    assert ingestor.poll() == 4
    log.unlink()
    log.write_text("".join(lines[4:]))
    assert ingestor.poll() == 18


def test_a_channel_that_changes_linkedid_moves_to_that_call(db: Database, tmp_path: Path) -> None:
    def rec(event: str, t: float, uid: str, linked: str, **extra: str) -> str:
        return json.dumps({"eventtype": event, "eventtime": f"{t:.6f}", "uniqueid": uid, "linkedid": linked,
                           "channame": f"PJSIP/x-{uid}", "num": "5", "exten": "1000", "context": "from-pstn",
                           **extra}) + "\n"
    log = tmp_path / "cel.jsonl"
    log.write_text(
        rec("CHAN_START", 100, "A", "A") + rec("ANSWER", 101, "A", "A")
        + rec("CHAN_START", 102, "B", "B") + rec("ANSWER", 103, "B", "B")
        + rec("BRIDGE_ENTER", 103.5, "B", "A") + rec("LINKEDID_END", 103.6, "B", "B")
        + rec("HANGUP", 110, "B", "A", eventextra='{"hangupcause":16,"dialstatus":""}')
        + rec("CHAN_END", 110, "B", "A") + rec("HANGUP", 110.1, "A", "A") + rec("CHAN_END", 110.1, "A", "A")
        + rec("LINKEDID_END", 110.1, "A", "A"))
    assert CelIngestor(log, db, {}).poll() == 11
    with db.session() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
        assert calls["B"].state == "merged"
        assert {leg.uniqueid for leg in calls["A"].legs} == {"A", "B"}
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.linkedid, cdr.duration, cdr.billsec) == ("A", 10, 9)


def test_record_parsing_rejects_incomplete_records() -> None:
    with pytest.raises(ValueError):
        CelRecord.from_json('{"eventtype": "ANSWER"}')
    with pytest.raises(ValueError):
        CelRecord.from_json("[]")
    record = CelRecord.from_json(SAMPLE.read_text().splitlines()[0])
    assert record.event == "CHAN_START" and record.time.tzinfo is not None


def test_users_do_not_leak_between_tests(db: Database) -> None:
    with db.session() as session:
        assert sorted(u.extension or "" for u in session.scalars(select(User))) == ["2001", "2002"]


def test_calls_open_when_asterisk_stopped_are_closed_with_a_cdr(db: Database, tmp_path: Path) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    log = tmp_path / "cel.jsonl"
    log.write_text("".join(lines[:4]))  # the greeting call, answered, then Asterisk died
    ingestor = CelIngestor(log, db, {"1000": "Demo greeting"})
    ingestor.poll()
    assert ingestor.close_lost_calls() == 1
    assert ingestor.close_lost_calls() == 0
    with db.session() as session:
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.dst, cdr.disposition, cdr.t_cause) == ("1000", "ANSWERED", "Asterisk stopped")
        last = CelRecord.from_json(lines[3]).time
        first = CelRecord.from_json(lines[0]).time
        assert cdr.duration == int((last - first).total_seconds())


def test_snoop_channels_are_no_calls(db: Database, tmp_path: Path) -> None:
    def rec(event: str, t: float, uid: str, channel: str) -> str:
        return json.dumps({"eventtype": event, "eventtime": f"{t:.6f}", "uniqueid": uid, "linkedid": uid,
                           "channame": channel, "num": "", "exten": "s", "context": "default"}) + "\n"
    log = tmp_path / "cel.jsonl"
    log.write_text("".join(rec(e, 100 + n, "mon-1", "Snoop/PJSIP/2002-00000001-00000002")
                           for n, e in enumerate(("CHAN_START", "HANGUP", "CHAN_END", "LINKEDID_END"))))
    assert CelIngestor(log, db, {}).poll() == 1  # its LINKEDID_END is read, and ends no call
    with db.session() as session:
        assert session.scalars(select(Call)).all() == [] and session.scalars(select(Cdr)).all() == []


def test_a_snoop_that_took_a_calls_linkedid_ends_that_call(db: Database, tmp_path: Path) -> None:
    """Seen with panel monitoring: the supervisor's channel shared a bridge with the snoop, the snoop took
    its linkedid and was the last to go, and the supervisor's call stayed open without a CDR."""
    def rec(event: str, t: float, uid: str, channel: str, linked: str = "mon-sup-1") -> str:
        return json.dumps({"eventtype": event, "eventtime": f"{t:.6f}", "uniqueid": uid, "linkedid": linked,
                           "channame": channel, "num": "2005", "exten": "s", "context": "default"}) + "\n"
    supervisor, snoop = "PJSIP/2005-0000000a", "Snoop/PJSIP/2002-00000001-00000002"
    log = tmp_path / "cel.jsonl"
    log.write_text(rec("CHAN_START", 100, "mon-sup-1", supervisor) + rec("ANSWER", 100.2, "mon-sup-1", supervisor)
                   + rec("CHAN_START", 100.3, "mon-1", snoop, "mon-1") + rec("BRIDGE_ENTER", 100.4, "mon-1", snoop)
                   + rec("HANGUP", 101, "mon-sup-1", supervisor) + rec("CHAN_END", 101, "mon-sup-1", supervisor)
                   + rec("HANGUP", 101.1, "mon-1", snoop) + rec("CHAN_END", 101.1, "mon-1", snoop)
                   + rec("LINKEDID_END", 101.1, "mon-1", snoop))
    CelIngestor(log, db, {}).poll()
    with db.session() as session:
        [call] = session.scalars(select(Call)).all()
        assert (call.linkedid, call.state) == ("mon-sup-1", "ended")
        [cdr] = session.scalars(select(Cdr)).all()
        assert cdr.linkedid == "mon-sup-1"
