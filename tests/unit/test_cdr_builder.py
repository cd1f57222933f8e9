import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.calls.ledger import CelIngestor
from callcenter.cdr.builder import CDR_COLUMNS, build_cdr, disposition, endpoint_of, hangup_cause
from callcenter.db.engine import Database
from callcenter.db.models import Cdr

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


@dataclass
class Leg:
    uniqueid: str
    channel: str
    started_at: datetime
    caller_num: str = "2001"
    caller_name: str = "Alice"
    exten: str = "2002"
    context: str = "from-users"
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = 16
    dial_status: str = ""


@dataclass
class CallRow:
    linkedid: str
    started_at: datetime
    ended_at: datetime | None


def test_answered_internal_call() -> None:
    origin = Leg("1.0", "PJSIP/2001-00000000", T0, answered_at=T0 + timedelta(seconds=3.4),
                 ended_at=T0 + timedelta(seconds=65.9), dial_status="ANSWER")
    callee = Leg("1.1", "PJSIP/2002-00000001", T0 + timedelta(milliseconds=2), caller_num="2002",
                 answered_at=T0 + timedelta(seconds=3.4), ended_at=T0 + timedelta(seconds=66))
    row = build_cdr(CallRow("1.0", T0, T0 + timedelta(seconds=66)), [callee, origin],
                    {"2002": "Agent Bob"}, {"2001", "2002"})
    assert row.calldate == T0
    assert (row.src_id, row.src, row.clid, row.dst, row.dst_name) == ("2001", "2001", '"Alice" <2001>', "2002",
                                                                       "Agent Bob")
    assert (row.duration, row.billsec, row.disposition, row.t_cause) == (66, 62, "ANSWERED", "Normal Clearing")
    assert (row.destination, row.rate, row.charge) == ("", None, None)


def test_pstn_caller_has_no_src_id_and_clid_without_name() -> None:
    origin = Leg("9.0", "PJSIP/pstn-00000003", T0, caller_num="0049301234", caller_name="", exten="1000",
                 answered_at=T0, ended_at=T0 + timedelta(seconds=7))
    row = build_cdr(CallRow("9.0", T0, T0 + timedelta(seconds=7)), [origin], {"1000": "Demo"}, {"2001"})
    assert (row.src_id, row.clid, row.dst_name, row.billsec) == ("", "0049301234", "Demo", 7)


@pytest.mark.parametrize(("answered", "status", "cause", "expected"), [
    (True, "", 16, "ANSWERED"),
    (False, "BUSY", 17, "BUSY"),
    (False, "", 17, "BUSY"),
    (False, "NOANSWER", 19, "NO ANSWER"),
    (False, "CANCEL", 16, "NO ANSWER"),
    (False, "", 16, "NO ANSWER"),
    (False, "CONGESTION", 34, "CONGESTION"),
    (False, "CHANUNAVAIL", 20, "FAILED"),
    (False, "", 1, "FAILED"),
    (False, "", None, "FAILED"),
])
def test_disposition(answered: bool, status: str, cause: int | None, expected: str) -> None:
    assert disposition(answered, status, cause) == expected


def test_unanswered_call_has_zero_billsec_and_cause_text() -> None:
    origin = Leg("2.0", "PJSIP/2001-0000000a", T0, ended_at=T0 + timedelta(seconds=3.99), hangup_cause=19,
                 dial_status="NOANSWER")
    row = build_cdr(CallRow("2.0", T0, None), [origin], {}, {"2001"})
    assert (row.duration, row.billsec, row.disposition, row.t_cause) == (3, 0, "NO ANSWER",
                                                                         "User alerting, no answer")


def test_call_without_channels_is_refused() -> None:
    with pytest.raises(ValueError):
        build_cdr(CallRow("x", T0, T0), [], {}, set())


def test_endpoint_of_channel_names() -> None:
    assert endpoint_of("PJSIP/2001-0000002a") == "2001"
    assert endpoint_of("PJSIP/my-trunk-0000002a") == "my-trunk"
    assert endpoint_of("Local/100@ctx-00000001;1") == "100@ctx"
    assert endpoint_of("") == ""


def test_columns_are_in_the_catalogue_order() -> None:
    assert ",".join(CDR_COLUMNS) == ("id,calldate,src_id,src,clid,dst,dst_name,duration,billsec,disposition,"
                                     "destination,rate,charge,t_cause")


def test_a_dialer_call_is_rated_and_names_the_agent_who_talked() -> None:
    from callcenter.cdr.rates import Rate, RateTable

    origin = Leg("dialer-1", "PJSIP/pstn-00000007", T0, caller_num="+48221234500", caller_name="", exten="s",
                 context="dialer-amd", answered_at=T0 + timedelta(seconds=4), ended_at=T0 + timedelta(seconds=70))
    agent = Leg("acd-2", "PJSIP/2003-00000008", T0 + timedelta(seconds=7), caller_num="+48221110021",
                answered_at=T0 + timedelta(seconds=7), ended_at=T0 + timedelta(seconds=70))
    rates = RateTable({"48": Rate("48", "Poland", Decimal("0.0200"))})
    row = build_cdr(CallRow("dialer-1", T0, T0 + timedelta(seconds=70)), [origin, agent], {}, {"2003"}, rates,
                    "pstn", dialer_number=lambda uniqueid: "+48221110021" if uniqueid == "dialer-1" else None)
    assert (row.src_id, row.src, row.dst, row.billsec) == ("2003", "+48221234500", "+48221110021", 66)
    assert (row.destination, row.rate, row.charge) == ("Poland", Decimal("0.0200"), Decimal("0.0220"))
    machine = build_cdr(CallRow("dialer-1", T0, T0 + timedelta(seconds=70)), [origin], {}, {"2003"}, rates,
                        "pstn", dialer_number=lambda uniqueid: "+48221110021")
    assert (machine.src_id, machine.dst) == ("", "+48221110021")
    inbound = build_cdr(CallRow("dialer-1", T0, T0 + timedelta(seconds=70)), [origin, agent], {}, {"2003"}, rates,
                        "pstn", placed_for=lambda uniqueid: "+48221110021")  # an ACD customer, not dialled
    assert (inbound.src_id, inbound.dst, inbound.rate) == ("", "s", None)


def test_an_agent_whose_offer_was_withdrawn_unanswered_did_not_talk_to_the_person() -> None:
    """Issue 13: abandoned dialer calls named the agent whose phone rang and was hung up at the deadline."""
    origin = Leg("dialer-1", "PJSIP/pstn-00000007", T0, caller_num="+48221234500", caller_name="", exten="s",
                 context="dialer-amd", answered_at=T0 + timedelta(seconds=4), ended_at=T0 + timedelta(seconds=20))
    withdrawn = Leg("acd-2", "PJSIP/2006-00000008", T0 + timedelta(seconds=5), caller_num="+48221110001",
                    ended_at=T0 + timedelta(seconds=7))
    taken = Leg("acd-3", "PJSIP/2003-00000009", T0 + timedelta(seconds=7), caller_num="+48221110001",
                answered_at=T0 + timedelta(seconds=8), ended_at=T0 + timedelta(seconds=20))
    call = CallRow("dialer-1", T0, T0 + timedelta(seconds=20))
    number = {"dialer-1": "+48221110001"}.get
    abandoned = build_cdr(call, [origin, withdrawn], {}, {"2003", "2006"}, dialer_number=number)
    assert (abandoned.src_id, abandoned.src, abandoned.dst) == ("", "+48221234500", "+48221110001")
    # The person went on to the next agent, who answered: they talked.
    passed_on = build_cdr(call, [origin, withdrawn, taken], {}, {"2003", "2006"}, dialer_number=number)
    assert passed_on.src_id == "2003"


def test_a_monitoring_call_has_the_monitored_extension_as_dst() -> None:
    supervisor = Leg("mon-sup-1", "PJSIP/2005-0000000a", T0, caller_num="2005", caller_name="Sam", exten="s",
                     answered_at=T0 + timedelta(seconds=1), ended_at=T0 + timedelta(seconds=9))
    call = CallRow("mon-sup-1", T0, T0 + timedelta(seconds=9))
    row = build_cdr(call, [supervisor], {"2003": "Carol"}, {"2003", "2005"},
                    monitored=lambda origin: "2003" if origin is supervisor else None)
    assert (row.src_id, row.src, row.dst, row.dst_name, row.billsec) == ("2005", "2005", "2003", "Carol", 8)
    assert build_cdr(call, [supervisor], {}, {"2003", "2005"}).dst == "s"  # any other call: what was dialled


# A caller hanging up during an IVR prompt (DID 1101, a real run on Asterisk 22): Asterisk logs
# hangupcause 0 and names the caller's own channel as the hang-up source.
IVR_HANGUP_CEL = [
    ("CHAN_START", "1796284782.899329", "", ""),
    ("APP_START", "1796284782.899510", "Stasis", ""),
    ("ANSWER", "1796284782.901931", "Stasis", ""),
    ("APP_END", "1796284787.414468", "Stasis", ""),
    ("HANGUP", "1796284787.414468", "",
     '{"hangupcause":0,"hangupsource":"PJSIP/pstn-00000000","dialstatus":""}'),
    ("CHAN_END", "1796284787.414468", "", ""),
    ("LINKEDID_END", "1796284787.414468", "", ""),
]


def _ivr_hangup_lines() -> str:
    return "".join(json.dumps({
        "eventtype": event, "eventtime": when, "name": "Test Caller", "num": "0049301234567",
        "ani": "0049301234567", "dnid": "1101", "exten": "1101", "context": "from-pstn",
        "channame": "PJSIP/pstn-00000000", "appname": app, "appdata": "callcenter,did,1101" if app else "",
        "uniqueid": "1796284782.0", "linkedid": "1796284782.0", "peer": "", "eventextra": extra,
        "userdeftype": ""}) + "\n" for event, when, app, extra in IVR_HANGUP_CEL)


def test_a_caller_hanging_up_during_an_ivr_prompt_is_normal_clearing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 't.db'}")
    db.migrate()
    log = tmp_path / "cel.jsonl"
    log.write_text(_ivr_hangup_lines())
    assert CelIngestor(log, db, {"1101": "Deep test flow"}).poll() == len(IVR_HANGUP_CEL)
    with db.session() as session:
        [cdr] = session.scalars(select(Cdr)).all()
        assert (cdr.dst, cdr.disposition, cdr.t_cause, cdr.duration) == ("1101", "ANSWERED", "Normal Clearing", 4)
    db.dispose()


@pytest.mark.parametrize(("cause", "source", "expected"), [
    (0, "PJSIP/pstn-00000000", 16),     # the caller's own hang-up, no cause logged: a BYE
    (0, "PJSIP/2002-00000001", 0),      # someone else hung it up: the cause stays unknown
    (0, "", 0),
    (17, "PJSIP/pstn-00000000", 17),    # a cause Asterisk did log is kept
    ("16", "", 16),
    (None, "PJSIP/pstn-00000000", None),
    ("", "PJSIP/pstn-00000000", None),
])
def test_hangup_cause_of_a_hangup_event(cause: object, source: str, expected: int | None) -> None:
    assert hangup_cause(cause, source, "PJSIP/pstn-00000000") == expected


def test_an_unanswered_caller_who_gave_up_without_a_cause_is_no_answer() -> None:
    cause = hangup_cause(0, "PJSIP/pstn-00000004", "PJSIP/pstn-00000004")
    origin = Leg("4.0", "PJSIP/pstn-00000004", T0, caller_num="0301", exten="1200",
                 ended_at=T0 + timedelta(seconds=2), hangup_cause=cause)
    row = build_cdr(CallRow("4.0", T0, None), [origin], {}, set())
    assert (row.disposition, row.t_cause) == ("NO ANSWER", "Normal Clearing")
