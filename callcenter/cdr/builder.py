"""Builds the one CDR of a finished call from its legs (CDR-1). Pure: no database, no Asterisk.

How each column is computed:
- ``calldate``: when the call's first channel (uniqueid == linkedid) was created, UTC.
- ``src`` / ``clid``: that channel's caller number / ``"name" <number>``.
- ``src_id``: the SIP user name of the caller when the first channel belongs to one of our users.
- ``dst``: the number the caller dialled (the first channel's extension at creation).
- ``dst_name``: the name of the user with that extension, or of the DID.
- ``duration``: from calldate to the end of the last channel; ``billsec``: from the first channel's
  answer to that end. Whole seconds, truncated, as Asterisk's own CDRs count them.
- ``disposition``: ANSWERED when the first channel was answered; otherwise from the dial status and
  hang-up cause: BUSY, NO ANSWER, CONGESTION or FAILED.
- ``t_cause``: the first channel's Q.850 hang-up cause as text (``hangup_cause``: a party that hung
  up itself with no cause logged cleared the call normally).
- ``destination``, ``rate``, ``charge``: for a call one of our users placed out through the trunk,
  from the rate table (callcenter/cdr/rates.py: longest prefix of the dialled number; charge = the
  billed seconds rounded up to the increment, times rate / 60, rounded half-up to 4 decimals);
  empty for every other call. For such calls ``dst`` is the dialled number even when the call was
  placed for the agent (click-to-call: the first channel is then the agent's phone).
- A call the outbound dialer placed starts on the trunk: ``src``/``clid`` are the campaign's caller ID,
  ``dst`` the dialled number (rated as above), and ``src_id`` the agent who talked to the person, if any:
  the first of our users whose leg was answered (an offer that rang and was withdrawn names nobody), else
  the agent the dialer recorded putting the person through to (a kept session line is no leg of the call).
- A supervisor's monitoring call (``#44`` + extension, or their phone rung from the panel): ``dst`` is the
  monitored agent's extension (``monitored``), not the feature code or the ``s`` of an originated channel.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from callcenter.cdr.rates import RateTable

CDR_COLUMNS = ("id", "calldate", "src_id", "src", "clid", "dst", "dst_name", "duration", "billsec",
               "disposition", "destination", "rate", "charge", "t_cause")

# What users dial to leave through the trunk (extensions never start with 0 or +).
_EXTERNAL = re.compile(r"^(\+|0)[0-9]{2,}$")

# Q.850 causes as Asterisk names them (ast_cause2str), for the causes a call centre sees.
CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    22: "Number changed",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    58: "Bearer capability not available",
    127: "Interworking, unspecified",
}


class LegLike(Protocol):
    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    exten: str
    context: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None
    dial_status: str


Leg = TypeVar("Leg", bound=LegLike)


class CallLike(Protocol):
    linkedid: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class CdrRow:
    calldate: datetime
    src_id: str
    src: str
    clid: str
    dst: str
    dst_name: str
    duration: int
    billsec: int
    disposition: str
    destination: str
    rate: Decimal | None
    charge: Decimal | None
    t_cause: str


NORMAL_CLEARING = 16


def hangup_cause(cause: object, source: str, channel: str) -> int | None:
    """The Q.850 cause of a channel's HANGUP event (CEL ``hangupcause`` and ``hangupsource``).

    Asterisk logs 0 when a party's own hang-up request was taken as a soft hang-up before its frame
    was read, which is what happens to a caller leaving a Stasis channel during a prompt: the BYE
    never reaches the channel's cause. The hang-up source still names the channel itself, so that
    party ended the call, which Q.850 calls Normal Clearing (what Asterisk records for the same BYE
    at any other moment). A 0 with another or no source stays 0: nothing says who ended it."""
    text = str(cause) if cause is not None else ""
    if not text.lstrip("-").isdigit():
        return None
    value = int(text)
    if value == 0 and source and source == channel:
        return NORMAL_CLEARING
    return value


def cause_text(cause: int | None) -> str:
    if cause is None:
        return ""
    return CAUSE_TEXT.get(cause, f"Cause {cause}")


def disposition(answered: bool, dial_status: str, cause: int | None) -> str:
    if answered:
        return "ANSWERED"
    status = dial_status.upper()
    if status == "BUSY" or cause == 17:
        return "BUSY"
    if status in ("NOANSWER", "CANCEL") or cause in (18, 19):
        return "NO ANSWER"
    if status == "CONGESTION" or cause in (34, 42):
        return "CONGESTION"
    if not status and cause == 16:
        # The caller hung up before anyone answered (in the IVR or while it rang).
        return "NO ANSWER"
    return "FAILED"


def endpoint_of(channel: str) -> str:
    """'PJSIP/2001-0000002a' -> '2001'."""
    _tech, _, rest = channel.partition("/")
    if not rest:
        return ""
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, math.floor((end - start).total_seconds()))


def _dialled_out(origin: LegLike, legs: Sequence[LegLike], trunk: str,
                 placed_for: Callable[[str], str | None]) -> str | None:
    """The external number of a call a user placed through the trunk, else None."""
    trunk_legs = [leg for leg in legs if endpoint_of(leg.channel) == trunk]
    if not trunk_legs:
        return None
    if _EXTERNAL.match(origin.exten):
        return origin.exten
    for leg in trunk_legs:
        number = placed_for(leg.uniqueid)
        if number:
            return number
    return None


def direct_outbound(call: CallLike, legs: Sequence[Leg], sip_users: frozenset[str] | set[str],
                    trunk: str) -> tuple[str, str] | None:
    """(extension, number) of a call a user dialled from their own phone out through the trunk, without
    the controller (the dialplan's ``from-users``), else None."""
    if not legs:
        return None
    origin = next((leg for leg in legs if leg.uniqueid == call.linkedid), min(legs, key=lambda leg: leg.started_at))
    extension = endpoint_of(origin.channel)
    if extension not in sip_users or not _EXTERNAL.match(origin.exten):
        return None
    if not any(endpoint_of(leg.channel) == trunk for leg in legs):
        return None
    return extension, origin.exten


def build_cdr(call: CallLike, legs: Sequence[Leg], names: Mapping[str, str],
              sip_users: frozenset[str] | set[str], rates: RateTable | None = None, trunk: str = "pstn",
              placed_for: Callable[[str], str | None] = lambda _uniqueid: None,
              dialer_number: Callable[[str], str | None] = lambda _uniqueid: None,
              monitored: Callable[[Leg], str | None] = lambda _origin: None,
              dialer_agent: Callable[[str], str | None] = lambda _uniqueid: None) -> CdrRow:
    """The CDR of a finished call. ``names`` maps extensions and DIDs to their names; ``sip_users``
    holds the SIP user names of our phones; ``placed_for`` gives the number the controller dialled
    on a channel it created (click-to-call, callbacks); ``dialer_number`` the number the outbound dialer
    called on a trunk channel it created, and ``dialer_agent`` the extension of the agent it put that call
    through to; ``monitored`` the extension a user's call was monitoring, if it was a monitoring call."""
    if not legs:
        raise ValueError(f"call {call.linkedid} has no channels")
    origin = next((leg for leg in legs if leg.uniqueid == call.linkedid),
                  min(legs, key=lambda leg: leg.started_at))
    calldate = origin.started_at
    ends = [leg.ended_at for leg in legs if leg.ended_at is not None]
    end = call.ended_at or (max(ends) if ends else calldate)
    answered_at = origin.answered_at
    endpoint = endpoint_of(origin.channel)
    name = origin.caller_name
    clid = f'"{name}" <{origin.caller_num}>' if name else origin.caller_num
    billsec = _seconds(answered_at, end) if answered_at else 0
    dst = origin.exten
    src_id = endpoint if endpoint in sip_users else ""
    destination, rate, charge = "", None, None
    dialled = _dialled_out(origin, legs, trunk, placed_for) if endpoint in sip_users else None
    if dialled is None and endpoint == trunk:
        dialled = dialer_number(origin.uniqueid)
        if dialled is not None:
            # Only an agent who answered talked to the person: an offer withdrawn unanswered is no party. An
            # agent's kept line (DIA-6) is no leg of the call: the dialer's record names that agent.
            talked = (endpoint_of(leg.channel) for leg in legs if leg.answered_at is not None)
            src_id = next((user for user in talked if user in sip_users), "") or dialer_agent(origin.uniqueid) or ""
    watched = monitored(origin) if dialled is None and endpoint in sip_users else None
    if watched:
        dst = watched
    if dialled is not None:
        dst = dialled
        found = rates.find(dialled) if rates is not None else None
        if found is not None and rates is not None:
            destination, rate, charge = found.destination, found.per_minute, rates.charge(found, billsec)
    return CdrRow(
        calldate=calldate,
        src_id=src_id,
        src=origin.caller_num,
        clid=clid,
        dst=dst,
        dst_name=names.get(dst, ""),
        duration=_seconds(calldate, end),
        billsec=billsec,
        disposition=disposition(answered_at is not None, origin.dial_status, origin.hangup_cause),
        destination=destination,
        rate=rate,
        charge=charge,
        t_cause=cause_text(origin.hangup_cause),
    )
