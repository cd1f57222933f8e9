"""The call events integrations receive (seed 001's six CallGear notifications, docs/webhooks.md), made from
the bus: an agent took an inbound call (``call.accepted``), an agent's leg ended (``call.leg_finished``;
``call.outbound_leg`` for a call placed to the customer), the whole call ended (``call.finished``;
``call.outbound``), its recording is ready (``call.recording_completed``).

Each is queued by a records-writer operation added where the fact is published, inside the writer's
``together()`` (the ACD's records, the journey's end, the recording's row): the outbox row commits with the
fact or not at all. The operation reads the customer (contact) and the recording in that transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.events import AgentLegEnded, AgentLegStarted
from callcenter.acd.model import AcdCall, AgentLeg, Direction
from callcenter.bus import Bus
from callcenter.calls.events import CallFinished, CallSummary, DirectCall
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.customers.services import normalise_phones
from callcenter.db.models import Recording, User
from callcenter.db.writer import Operation
from callcenter.recording.events import RecordingDone


class Writer(Protocol):
    def add(self, item: Operation) -> None: ...


class Outbox(Protocol):
    def announce(self, session: Session, event: str, build: Callable[[], Mapping[str, Any]], *,
                 at: datetime) -> int: ...
    def recording_link(self, recording_id: str) -> str: ...


@dataclass(frozen=True)
class CallFacts:
    """What a payload says of a call, copied off the live call when the event is published."""

    session_id: str
    direction: str  # in, out
    source: str
    number: str
    did: str
    scenario: str
    external_id: str | None
    tags: tuple[str, ...]


def _facts(call: AcdCall) -> CallFacts:
    external = call.extra.get("external_id")
    return CallFacts(call.session_id, "in" if call.direction is Direction.INBOUND else "out", call.source,
                     call.number, call.did, call.queue or call.campaign or "",
                     str(external) if external is not None else None,
                     (call.wrapup_code,) if call.wrapup_code else ())


class CallNotifications:
    def __init__(self, outbox: Outbox, writer: Writer, bus: Bus, region: str) -> None:
        self.outbox = outbox
        self.writer = writer
        self.region = region
        bus.subscribe(AgentLegStarted, self._leg_started)
        bus.subscribe(AgentLegEnded, self._leg_ended)
        bus.subscribe(CallFinished, self._call_finished)
        bus.subscribe(RecordingDone, self._recording_done)

    def _queue(self, event: str, at: datetime, build: Callable[[Session], dict[str, Any]]) -> None:
        # Queued even when no endpoint takes the event: which ones do is read in the transaction (an endpoint
        # added a moment ago gets it; one the CLI removed from another process does not).
        self.writer.add(lambda session: self.outbox.announce(session, event, lambda: build(session), at=at))

    def _leg_started(self, event: AgentLegStarted) -> None:
        if event.call.direction is not Direction.INBOUND:
            return  # the agent's own call: its customer answering is told by call.outbound_leg at its end
        facts, leg, legs = _facts(event.call), event.leg, [lg.leg_id for lg in event.call.legs]
        self._queue("call.accepted", leg.started_at, lambda session: self._leg_payload(
            session, facts, leg, legs, talk=0.0))

    def _leg_ended(self, event: AgentLegEnded) -> None:
        call, leg = event.call, event.leg
        facts, legs = _facts(call), [lg.leg_id for lg in call.legs]
        ended = leg.ended_at or leg.started_at
        talk = round((ended - leg.started_at).total_seconds(), 2)
        name = "call.leg_finished" if facts.direction == "in" else "call.outbound_leg"
        self._queue(name, ended, lambda session: self._leg_payload(session, facts, leg, legs, talk=talk,
                                                                  call_id=call.record_id))

    def _call_finished(self, event: CallFinished) -> None:
        call = event.summary
        name = "call.finished" if call.direction == "inbound" else "call.outbound"
        self._queue(name, call.ended_at, lambda session: self._finished_payload(session, call))

    def _recording_done(self, event: RecordingDone) -> None:
        if event.status == "ready":
            self._queue("call.recording_completed", event.at,
                        lambda session: self._recording_payload(session, event.recording_id))

    def direct_call(self, session: Session, call: DirectCall) -> None:
        """A call a user dialled from their phone (the ledger's hook, in its CDR's transaction)."""
        self.outbox.announce(session, "call.outbound", lambda: self._direct_payload(session, call), at=call.ended_at)

    # -- payloads (inside the writer's transaction) ------------------------------------------------------

    def _direct_payload(self, session: Session, call: DirectCall) -> dict[str, Any]:
        total = round((call.ended_at - call.started_at).total_seconds(), 2)
        user = session.get(User, call.user_id)
        return {
            "virtual_phone_number": "",
            "external_id": None,
            "contact_info": self._contact(session, call.number, ""),
            "employee_info": {"employee_full_name": (user.name or user.login) if user else None,
                              "employee_id": call.user_id},
            "call_info": {"call_source": "phone", "direction": "out", "call_session_id": call.linkedid,
                          "scenario_name": "", "talk_time_duration": float(call.talk_seconds),
                          "total_time_duration": total, "wait_time_duration": round(total - call.talk_seconds, 2),
                          "tag_names": [], "is_lost": not call.answered,
                          "outcome": "answered" if call.answered else "not_answered"},
            "call_record_file_info": {"file_link": None, "call_record_duration": None, "record_file_links": []},
            "leg_id": None,
            "leg_ids": [],
        }


    def _contact(self, session: Session, number: str, did: str) -> dict[str, Any]:
        customer = None
        try:
            e164 = normalise_phones([number], self.region)
        except ValueError:
            e164 = []
        if e164:
            customer = session.scalar(select(Customer).join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                                      .where(CustomerPhone.number == e164[0]))
        return {"contact_phone_number": number, "communication_number": did,
                "contact_id": customer.id if customer is not None else None,
                "contact_full_name": customer.name if customer is not None else None}

    def _record_info(self, session: Session, call_ids: list[str]) -> dict[str, Any]:
        ready = list(session.scalars(select(Recording).where(Recording.acd_call_id.in_(call_ids),
                                                             Recording.status == "ready")
                                     .order_by(Recording.started_at))) if call_ids else []
        links = [self.outbox.recording_link(r.id) for r in ready]
        return {"file_link": links[0] if links else None,
                "call_record_duration": float(ready[0].seconds) if ready and ready[0].seconds is not None else None,
                "record_file_links": links}

    def _leg_payload(self, session: Session, facts: CallFacts, leg: AgentLeg, legs: list[str], *, talk: float,
                     call_id: str | None = None) -> dict[str, Any]:
        ended = leg.ended_at or leg.started_at
        return {
            "virtual_phone_number": facts.did,
            "external_id": facts.external_id,
            "contact_info": self._contact(session, facts.number, facts.did),
            "employee_info": {"employee_full_name": leg.agent.name, "employee_id": leg.agent.user_id},
            "call_info": {"call_source": facts.source, "direction": facts.direction,
                          "call_session_id": facts.session_id, "scenario_name": facts.scenario,
                          "is_operator": True, "talk_time_duration": talk,
                          "total_time_duration": round((ended - leg.started_at).total_seconds(), 2),
                          "wait_time_duration": 0.0, "tag_names": list(facts.tags), "is_lost": False},
            "call_record_file_info": self._record_info(session, [call_id] if call_id else []),
            "leg_id": leg.leg_id,
            "leg_ids": legs,
        }

    def _finished_payload(self, session: Session, call: CallSummary) -> dict[str, Any]:
        last = call.legs[-1] if call.legs else None
        return {
            "virtual_phone_number": call.did,
            "external_id": call.external_id,
            "contact_info": self._contact(session, call.number, call.did),
            "employee_info": {"employee_full_name": last.agent_name if last else None,
                              "employee_id": last.user_id if last else None},
            "call_info": {"call_source": call.source, "direction": "in" if call.direction == "inbound" else "out",
                          "call_session_id": call.session_id, "scenario_name": call.flow or ",".join(call.queues),
                          "talk_time_duration": call.talk_seconds, "total_time_duration": call.total_seconds,
                          "wait_time_duration": call.wait_seconds, "tag_names": [], "is_lost": call.is_lost,
                          "outcome": call.outcome},
            "call_record_file_info": self._record_info(session, list(call.record_ids)),
            "leg_id": last.leg_id if last else None,
            "leg_ids": [leg.leg_id for leg in call.legs],
            "last_scenario_operation_name": call.queues[-1] if call.queues else call.flow,
            "group_ids": list(call.queues),
        }

    def _recording_payload(self, session: Session, recording_id: str) -> dict[str, Any]:
        recording = session.get(Recording, recording_id)
        if recording is None:
            return {"recording_id": recording_id}
        inbound = recording.caller != recording.sip_username  # an agent's own call is recorded as from them
        number = recording.caller if inbound else recording.called
        link = self.outbox.recording_link(recording.id)
        seconds = float(recording.seconds) if recording.seconds is not None else None
        return {
            "virtual_phone_number": recording.called if inbound else "",
            "external_id": None,
            "contact_info": self._contact(session, number, recording.called if inbound else ""),
            "employee_info": {"employee_full_name": None, "employee_id": recording.user_id},
            "call_info": {"call_source": "did" if inbound else "click_to_call", "direction": "in" if inbound else "out",
                          "call_session_id": recording.linkedid, "scenario_name": recording.queue or "",
                          "talk_time_duration": seconds, "total_time_duration": seconds,
                          "wait_time_duration": None, "tag_names": [], "is_lost": False},
            "call_record_file_info": {"file_link": link, "call_record_duration": seconds,
                                      "record_file_links": [link]},
            "recording_id": recording.id,
            "acd_call_id": recording.acd_call_id,
            "leg_id": None,
            "leg_ids": [],
        }
