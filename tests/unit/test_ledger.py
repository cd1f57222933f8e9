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


def test_a_channel_that_changes_linkedid_moves_to_that_call_unless_it_started_its_own(db: Database,
                                                                                     tmp_path: Path) -> None:
    def rec(event: str, t: float, uid: str, linked: str, **extra: str) -> str:
        return json.dumps({"eventtype": event, "eventtime": f"{t:.6f}", "uniqueid": uid, "linkedid": linked,
                           "channame": f"PJSIP/x-{uid}", "num": "5", "exten": "1000", "context": "from-pstn",
                           **extra}) + "\n"
    log = tmp_path / "cel.jsonl"
    # C was dialled from A's call (so it has A's linkedid), went to B's call, and left it again.
    log.write_text(
        rec("CHAN_START", 100, "A", "A") + rec("ANSWER", 101, "A", "A")
        + rec("CHAN_START", 101.5, "C", "A") + rec("ANSWER", 101.6, "C", "A")
        + rec("CHAN_START", 102, "B", "B") + rec("ANSWER", 103, "B", "B")
        + rec("BRIDGE_ENTER", 103.5, "B", "A") + rec("LINKEDID_END", 103.6, "B", "B")
        + rec("BRIDGE_ENTER", 104, "C", "X") + rec("HANGUP", 105, "C", "X") + rec("CHAN_END", 105, "C", "X")
        + rec("HANGUP", 110, "B", "A", eventextra='{"hangupcause":16,"dialstatus":""}')
        + rec("CHAN_END", 110, "B", "A") + rec("HANGUP", 110.1, "A", "A") + rec("CHAN_END", 110.1, "A", "A")
        + rec("LINKEDID_END", 110.1, "A", "A") + rec("LINKEDID_END", 110.2, "C", "X"))
    assert CelIngestor(log, db, {}).poll() == 17
    with db.session() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
        # B started a call of its own: it stays that call's, which ends with it (its linkedid ended earlier).
        assert {leg.uniqueid for leg in calls["A"].legs} == {"A"} and calls["B"].state == "ended"
        assert {leg.uniqueid for leg in calls["B"].legs} == {"B"}
        assert set(session.scalars(select(CallEvent.event_type).where(CallEvent.call_id == calls["B"].id))) == {
            "CHAN_START", "ANSWER", "BRIDGE_ENTER", "LINKEDID_END", "HANGUP", "CHAN_END"}
        # C was no call's origin: it moved to the call it was bridged into, which had no channel of its own.
        assert [leg.uniqueid for leg in calls["X"].legs] == ["C"] and calls["X"].state == "ended"
        cdrs = {c.linkedid: (c.duration, c.billsec) for c in session.scalars(select(Cdr))}
        assert cdrs == {"A": (10, 9), "B": (8, 7), "X": (8, 8)}


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


def cel(event: str, t: float, channel: str, uid: str, linked: str, num: str = "", name: str = "",
        exten: str = "s", context: str = "from-users", app: str = "", appdata: str = "", extra: str = "") -> str:
    return json.dumps({"eventtype": event, "eventtime": f"{1796297800 + t:.6f}", "channame": channel,
                       "uniqueid": uid, "linkedid": linked, "num": num, "name": name, "exten": exten,
                       "context": context, "appname": app, "appdata": appdata, "eventextra": extra}) + "\n"


NORMAL = '{"hangupcause":16,"hangupsource":"","dialstatus":""}'
CAMPAIGN_ID = "+48221234502"


def dialer_call(uid: str, agent_channel: str, agent_uid: str, agent: tuple[str, str], customer: tuple[str, str],
                talked: bool, t: float) -> str:
    """A call the dialer placed (Asterisk 22, progressive campaign, events as logged): the trunk channel is
    created without a caller ID and gets the campaign's just after; the agent's offer is originated into
    the call and shows the customer's caller ID once rung. ``talked``: the agent answered and was bridged,
    else the offer was withdrawn at the 2-second deadline and the person abandoned."""
    pstn = "PJSIP/pstn-00000000"
    lines = [cel("CHAN_START", t, pstn, uid, uid, context="from-pstn"),
             cel("ANSWER", t + 0.3, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn", app="AppDial2"),
             cel("APP_START", t + 0.31, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn", app="Stasis"),
             cel("CHAN_START", t + 0.32, agent_channel, agent_uid, uid, *agent)]
    if talked:
        lines += [cel("ANSWER", t + 0.5, agent_channel, agent_uid, uid, *customer, app="AppDial2"),
                  cel("BRIDGE_ENTER", t + 0.51, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn", app="Stasis"),
                  cel("BRIDGE_ENTER", t + 0.52, agent_channel, agent_uid, uid, *customer, app="Stasis"),
                  cel("HANGUP", t + 2, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn", extra=NORMAL),
                  cel("CHAN_END", t + 2, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn"),
                  cel("HANGUP", t + 2.01, agent_channel, agent_uid, uid, *customer, extra=NORMAL),
                  cel("CHAN_END", t + 2.01, agent_channel, agent_uid, uid, *customer),
                  cel("LINKEDID_END", t + 2.01, agent_channel, agent_uid, uid, *customer)]
    else:
        lines += [cel("HANGUP", t + 2.3, agent_channel, agent_uid, uid, *customer, extra=NORMAL),
                  cel("CHAN_END", t + 2.3, agent_channel, agent_uid, uid, *customer),
                  cel("HANGUP", t + 14, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn", extra=NORMAL),
                  cel("CHAN_END", t + 14, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn"),
                  cel("LINKEDID_END", t + 14, pstn, uid, uid, CAMPAIGN_ID, context="from-pstn")]
    return "".join(lines)


def test_dialer_cdrs_carry_the_campaign_caller_id_and_only_the_agent_who_talked(db: Database,
                                                                               tmp_path: Path) -> None:
    """Issue 13: ``src`` was empty on every dialer CDR (the trunk channel has no caller ID at CHAN_START),
    and an abandoned call named the agent whose offer rang and was withdrawn."""
    from datetime import UTC, datetime

    from callcenter.db.models import DialerAttempt
    with db.session() as session:
        add_user(session, name="Agent Carol", extension="2003", sip_password="secret-2003")
        for channel, number in (("dialer-abandoned", "+48221139001"), ("dialer-talked", "+48221139011")):
            session.add(DialerAttempt(id=channel[-20:], campaign="winter", number=number, mode="progressive",
                                      channel_id=channel, placed_at=datetime.now(UTC)))
    log = tmp_path / "cel.jsonl"
    log.write_text(dialer_call("dialer-abandoned", "PJSIP/2002-00000001", "acd-1", ("2002", "Bob"),
                               ("+48221139001", "Abandoned Ann"), talked=False, t=0)
                   + dialer_call("dialer-talked", "PJSIP/2003-00000003", "acd-2", ("2003", "Agent Carol"),
                                 ("+48221139011", "Connected Carl"), talked=True, t=20))
    CelIngestor(log, db, {}).poll()
    with db.session() as session:
        rows = {c.dst: (c.src_id, c.src, c.clid, c.disposition) for c in session.scalars(select(Cdr))}
        assert rows == {"+48221139001": ("", CAMPAIGN_ID, CAMPAIGN_ID, "ANSWERED"),
                        "+48221139011": ("2003", CAMPAIGN_ID, CAMPAIGN_ID, "ANSWERED")}
        assert {c.linkedid: c.src for c in session.scalars(select(Call))} == {
            "dialer-abandoned": CAMPAIGN_ID, "dialer-talked": CAMPAIGN_ID}


def test_a_44_monitoring_call_is_written_when_it_ends_with_the_monitored_extension(db: Database,
                                                                                  tmp_path: Path) -> None:
    """Issue 13 (Asterisk 22, as logged): 2005 dials #442002 and hangs up first; the snoop, which took the
    supervisor's linkedid in the session's bridge, is the last to go and logs the LINKEDID_END."""
    with db.session() as session:
        add_user(session, name="Supervisor Sam", extension="2005", sip_password="secret-2005")
    sam, snoop, linked, snoop_id = "PJSIP/2005-00000002", "Snoop/1796297860.1-00000000", "1796297861.2", "mon-a-1"
    dialled = {"num": "2005", "name": "Supervisor Sam", "exten": "#442002"}
    log = tmp_path / "cel.jsonl"
    log.write_text(
        cel("CHAN_START", 61.75, sam, linked, linked, **dialled)
        + cel("APP_START", 61.752, sam, linked, linked, app="Stasis", appdata="callcenter,feature,#442002", **dialled)
        + cel("ANSWER", 61.757, sam, linked, linked, app="Stasis", **dialled)
        + cel("CHAN_START", 61.769, snoop, snoop_id, snoop_id, context="default")
        + cel("LINKEDID_END", 61.779, snoop, snoop_id, snoop_id, context="default")
        + cel("BRIDGE_ENTER", 61.7795, snoop, snoop_id, linked, context="default", app="Stasis"))
    ingestor = CelIngestor(log, db, {})
    ingestor.poll()
    with open(log, "a") as more:  # the supervisor hangs up seconds later: another batch
        more.write(cel("HANGUP", 64.787, sam, linked, linked, extra=NORMAL, **dialled)
                   + cel("CHAN_END", 64.787, sam, linked, linked, **dialled)
                   + cel("HANGUP", 64.81, snoop, snoop_id, linked, context="default", extra=NORMAL)
                   + cel("CHAN_END", 64.81, snoop, snoop_id, linked, context="default")
                   + cel("LINKEDID_END", 64.81, snoop, snoop_id, linked, context="default"))
    ingestor.poll()
    with db.session() as session:
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.linkedid, cdr.src_id, cdr.src, cdr.dst, cdr.dst_name, cdr.disposition, cdr.duration) == (
            linked, "2005", "2005", "2002", "Bob", "ANSWERED", 3)


def test_a_monitoring_call_rung_from_the_panel_names_the_monitored_extension(db: Database,
                                                                            tmp_path: Path) -> None:
    """The panel rings the supervisor's phone (an originate: exten ``s``); the session it serves is named in
    the Stasis arguments, and the monitored agent in that session's audit row."""
    from datetime import UTC, datetime

    from callcenter.db.models import MonitorSession
    session_id = "fd22cecada1c47d7ae44de7e6b8927f4"
    with db.session() as session:
        add_user(session, name="Agent Carol", extension="2003", sip_password="secret-2003")
        add_user(session, name="Supervisor Sam", extension="2005", sip_password="secret-2005")
        session.add(MonitorSession(id=session_id, supervisor="2005", agent="2003", origin="panel",
                                   started_at=datetime.now(UTC)))
    sam, snoop = "PJSIP/2005-00000005", "Snoop/acd-38346c8db63341fb8e2b-00000001"
    linked = "mon-sup-fd22cecada1c47d7ae44"
    rung = {"num": "2003", "name": "Monitor Agent Carol"}
    args = f"callcenter,monitor-supervisor,{session_id}"
    log = tmp_path / "cel.jsonl"
    log.write_text(
        cel("CHAN_START", 26.26, sam, linked, linked, "2005", "Supervisor Sam")
        + cel("ANSWER", 26.47, sam, linked, linked, app="AppDial2", **rung)
        + cel("APP_START", 26.471, sam, linked, linked, app="Stasis", appdata=args, **rung)
        + cel("BRIDGE_ENTER", 26.48, snoop, "mon-fd22-1", linked, context="default", app="Stasis"))
    ingestor = CelIngestor(log, db, {})
    ingestor.poll()
    with open(log, "a") as more:
        more.write(cel("APP_END", 31.53, sam, linked, linked, app="Stasis", appdata=args, **rung)
                   + cel("HANGUP", 31.53, sam, linked, linked, extra=NORMAL, **rung)
                   + cel("CHAN_END", 31.53, sam, linked, linked, **rung)
                   + cel("HANGUP", 31.54, snoop, "mon-fd22-1", linked, context="default", extra=NORMAL)
                   + cel("CHAN_END", 31.54, snoop, "mon-fd22-1", linked, context="default")
                   + cel("LINKEDID_END", 31.54, snoop, "mon-fd22-1", linked, context="default"))
    ingestor.poll()
    with db.session() as session:
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.src_id, cdr.src, cdr.dst, cdr.dst_name, cdr.disposition) == (
            "2005", "2005", "2003", "Agent Carol", "ANSWERED")


def test_a_person_put_through_to_a_kept_agent_line_keeps_their_own_call_and_cdr(db: Database,
                                                                                tmp_path: Path) -> None:
    """Session mode (DIA-6, Asterisk 22 as logged): the agent's kept line is older than the dialer's call, so
    the bridge gives the person's trunk channel the line's linkedid and logs the call's LINKEDID_END while
    the person still talks. The call stays the person's, ends with them, and names the agent."""
    from datetime import UTC, datetime

    from callcenter.db.models import DialerAttempt
    with db.session() as session:
        carol = add_user(session, name="Agent Carol", extension="2003", sip_password="secret-2003")
        session.flush()
        session.add(DialerAttempt(id="a1", campaign="summer", number="+48221139021", mode="progressive",
                                  channel_id="dialer-a17c", placed_at=datetime.now(UTC), agent_id=carol.user.id))
    line, pstn, kept, person = "PJSIP/2003-00000002", "PJSIP/pstn-00000003", "acd-session-8b80", "dialer-a17c"
    caller_id, agent = "+48221234503", ("2003", "Agent Carol")
    log = tmp_path / "cel.jsonl"
    log.write_text(
        cel("CHAN_START", 41.07, line, kept, kept, *agent)
        + cel("ANSWER", 41.28, line, kept, kept, app="AppDial2")
        + cel("BRIDGE_ENTER", 41.281, line, kept, kept, app="Stasis")
        + cel("CHAN_START", 42.07, pstn, person, person, context="from-pstn")
        + cel("ANSWER", 42.38, pstn, person, person, caller_id, context="from-pstn", app="AppDial2")
        + cel("BRIDGE_ENTER", 42.387, pstn, person, person, caller_id, context="from-pstn", app="Stasis")
        + cel("BRIDGE_EXIT", 42.388, line, kept, kept, app="Stasis")
        + cel("LINKEDID_END", 42.3915, pstn, person, person, caller_id, context="from-pstn", app="Stasis"))
    ingestor = CelIngestor(log, db, {})
    ingestor.poll()
    with open(log, "a") as more:
        more.write(
            cel("BRIDGE_ENTER", 42.3916, line, kept, kept, app="Stasis")
            + cel("BRIDGE_EXIT", 43.404, pstn, person, kept, caller_id, context="from-pstn", app="Stasis")
            + cel("HANGUP", 43.405, pstn, person, kept, caller_id, context="from-pstn", extra=NORMAL)
            + cel("CHAN_END", 43.405, pstn, person, kept, caller_id, context="from-pstn"))
    ingestor.poll()
    with db.session() as session:
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.linkedid, cdr.src_id, cdr.src, cdr.dst, cdr.duration, cdr.billsec) == (
            person, "2003", caller_id, "+48221139021", 1, 1)
    with open(log, "a") as more:  # the agent leaves the campaign: their line's own record
        more.write(cel("HANGUP", 45.07, line, kept, kept, extra=NORMAL) + cel("CHAN_END", 45.07, line, kept, kept)
                   + cel("LINKEDID_END", 45.07, line, kept, kept))
    ingestor.poll()
    with db.session() as session:
        line_cdr = session.scalars(select(Cdr).where(Cdr.linkedid == kept)).one()
        assert (line_cdr.src_id, line_cdr.dst, line_cdr.rate) == ("2003", "s", None)
        assert {leg.uniqueid for leg in session.scalars(select(Call).where(Call.linkedid == kept)).one().legs} == {
            kept}


def direct_call(uid: str, number: str, answered: bool, t: float) -> str:
    """Alice (2001) dials ``number`` from her phone; the dialplan sends it out through the trunk."""
    alice, pstn = "PJSIP/2001-00000010", "PJSIP/pstn-00000011"
    lines = [cel("CHAN_START", t, alice, uid, uid, "2001", "Alice", exten=number),
             cel("APP_START", t + 0.01, alice, uid, uid, "2001", "Alice", exten=number, app="Dial"),
             cel("CHAN_START", t + 0.02, pstn, f"{uid}-out", uid, exten="s", context="from-pstn")]
    if answered:
        lines += [cel("ANSWER", t + 1, pstn, f"{uid}-out", uid, number, context="from-pstn", app="AppDial"),
                  cel("ANSWER", t + 1.01, alice, uid, uid, "2001", "Alice", exten=number, app="Dial"),
                  cel("BRIDGE_ENTER", t + 1.02, alice, uid, uid, "2001", "Alice", exten=number, app="Dial")]
    end = t + (31 if answered else 5)
    status = '{"hangupcause":16,"hangupsource":"","dialstatus":"%s"}' % ("ANSWER" if answered else "NOANSWER")
    lines += [cel("HANGUP", end, pstn, f"{uid}-out", uid, number, context="from-pstn", extra=NORMAL),
              cel("CHAN_END", end, pstn, f"{uid}-out", uid, number, context="from-pstn"),
              cel("HANGUP", end + 0.01, alice, uid, uid, "2001", "Alice", exten=number, extra=status),
              cel("CHAN_END", end + 0.01, alice, uid, uid, "2001", "Alice", exten=number),
              cel("LINKEDID_END", end + 0.01, alice, uid, uid, "2001", "Alice", exten=number)]
    return "".join(lines)


def test_a_call_dialled_out_from_a_phone_is_told_to_the_hooks_in_the_cdrs_transaction(db: Database,
                                                                                       tmp_path: Path) -> None:
    from callcenter.calls.events import DirectCall
    log = tmp_path / "cel.jsonl"
    log.write_text(direct_call("dc-1", "0601000001", True, 0) + direct_call("dc-2", "0601000002", False, 100)
                   + "".join(dialer_call("dl-1", "PJSIP/2002-00000020", "dl-1-a", ("2002", "Bob"),
                                         ("0601000003", ""), True, 200)))
    told: list[tuple[DirectCall, int]] = []
    ingestor = CelIngestor(log, db, {})
    ingestor.direct_call_hooks.append(
        lambda session, call: told.append((call, len(session.new))))  # the CDR is in this transaction
    ingestor.poll()
    with db.session() as session:
        alice = session.scalar(select(User.id).where(User.extension == "2001"))
    assert [(c.linkedid, c.user_id, c.extension, c.number, c.answered, c.talk_seconds) for c, _ in told] == [
        ("dc-1", alice, "2001", "0601000001", True, 30), ("dc-2", alice, "2001", "0601000002", False, 0)]
    assert all(pending >= 1 for _, pending in told)  # the dialer's call (placed by the controller) is not one
