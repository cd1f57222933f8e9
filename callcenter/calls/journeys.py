"""A customer's call as one journey, from the ACD's records and legs and the call service's channel, ending
in one ``CallFinished`` (events.py).

A call from the trunk starts when its channel enters the app on a DID routed to an IVR or a queue and ends
when the channel leaves the app: in between the ACD may hold it under several records (moved between
queues, through an IVR and back, transferred), each bound to the journey by the customer's channel. A call
the ACD places (click-to-call, a callback, the dialer's) starts with its record and ends with the last
record of its session (``AcdCall.session_id``; a move to another queue continues it)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callcenter.acd.events import (
    AgentLegEnded,
    AgentLegStarted,
    CallEnded,
    CallOffered,
    CallQueued,
    OutboundCallStarted,
    OutboundLegDialled,
)
from callcenter.acd.model import AcdCall, AgentLeg, Direction
from callcenter.bus import Bus
from callcenter.calls.events import CallFinished, CallLeg, CallSummary

log = logging.getLogger(__name__)

# Calls that outlive their records this long are dropped (a missed end: the controller lost the channel).
STALE_AFTER_SECONDS = 24 * 3600


@dataclass
class Journey:
    session_id: str
    direction: str
    source: str
    number: str
    did: str
    started_at: datetime
    flow: str = ""
    channel_id: str | None = None
    answered_at: datetime | None = None
    queues: list[str] = field(default_factory=list)
    record_ids: list[str] = field(default_factory=list)
    offered: list[int] = field(default_factory=list)
    legs: list[CallLeg] = field(default_factory=list)
    outcome: str = ""
    campaign: str | None = None
    ticket_id: int | None = None
    callback: bool = False
    external_id: str | None = None

    def summary(self, ended_at: datetime) -> CallSummary:
        if self.legs:
            outcome = "answered"
        elif self.direction == "inbound":
            outcome = "missed" if self.offered else "abandoned"
        else:
            outcome = self.outcome or "failed"
        return CallSummary(self.session_id, self.direction, self.source, self.number, self.did, self.started_at,
                           self.answered_at, ended_at, tuple(self.legs), tuple(self.offered),
                           tuple(self.record_ids), tuple(dict.fromkeys(self.queues)), self.flow, outcome,
                           self.campaign, self.ticket_id, self.callback, self.external_id)


def _leg(leg: AgentLeg, now: datetime) -> CallLeg:
    agent = leg.agent
    return CallLeg(leg.leg_id, agent.user_id, agent.extension, agent.name, leg.started_at, leg.ended_at or now,
                   leg.how)


class Journeys:
    def __init__(self, bus: Bus, together: Callable[[], contextlib.AbstractContextManager[None]],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.bus = bus
        self.together = together
        self.now = now
        self.by_channel: dict[str, Journey] = {}
        self.by_session: dict[str, Journey] = {}
        bus.subscribe(CallQueued, self._queued)
        bus.subscribe(CallOffered, self._offered)
        bus.subscribe(AgentLegStarted, self._leg_started)
        bus.subscribe(AgentLegEnded, self._leg_ended)
        bus.subscribe(OutboundCallStarted, self._outbound_started)
        bus.subscribe(OutboundLegDialled, lambda event: self._outbound(event.call))
        bus.subscribe(CallEnded, self._record_ended)

    # -- calls from the trunk ---------------------------------------------------------------------------

    def trunk_call(self, channel_id: str, caller: str, did: str, flow: str = "") -> None:
        """A caller's channel entered the app on a DID that leads to an IVR flow or a queue."""
        self.by_channel[channel_id] = Journey(channel_id, "inbound", "did", caller, did, self.now(), flow=flow,
                                              channel_id=channel_id)
        self._prune()

    async def channel_ended(self, channel_id: str) -> None:
        journey = self.by_channel.pop(channel_id, None)
        if journey is None:
            return
        for session_id in [s for s, j in self.by_session.items() if j is journey]:
            del self.by_session[session_id]
        await self._finish(journey)

    # -- the ACD's records and legs ---------------------------------------------------------------------

    def _journey(self, call: AcdCall) -> Journey | None:
        journey = self.by_session.get(call.session_id)
        if journey is None and call.channel_id is not None:
            journey = self.by_channel.get(call.channel_id)
            if journey is not None:
                self.by_session[call.session_id] = journey
        return journey

    def _outbound_started(self, event: OutboundCallStarted) -> None:
        self._outbound(event.call)
        # The agent placing the call counts as the one it was offered to (their phone rings first).
        self._bound(event.call).offered.append(event.agent.user_id)

    def _outbound(self, call: AcdCall) -> None:
        journey = self._journey(call)
        if journey is None:
            journey = self._start_outbound(call)
        journey.ticket_id = journey.ticket_id or call.extra.get("ticket_id")
        journey.callback = journey.callback or bool(call.extra.get("callback"))
        journey.external_id = journey.external_id or call.extra.get("external_id")

    def _start_outbound(self, call: AcdCall) -> Journey:
        journey = Journey(call.session_id, "outbound", call.source, call.number, call.did,
                          call.entered_at or self.now(), campaign=call.campaign)
        journey.ticket_id = call.extra.get("ticket_id")
        journey.callback = bool(call.extra.get("callback")) or call.direction is Direction.CALLBACK
        self.by_session[call.session_id] = journey
        self._prune()
        return journey

    def _bound(self, call: AcdCall) -> Journey:
        journey = self._journey(call)
        if journey is None:  # placed by the ACD or the dialer, or a callback after its caller hung up
            journey = self._start_outbound(call)
        if call.record_id not in journey.record_ids:
            journey.record_ids.append(call.record_id)
        if call.queue:
            journey.queues.append(call.queue)
        return journey

    def _queued(self, event: CallQueued) -> None:
        self._bound(event.call)

    def _offered(self, event: CallOffered) -> None:
        self._bound(event.call).offered.append(event.agent.user_id)

    def _leg_started(self, event: AgentLegStarted) -> None:
        journey = self._bound(event.call)
        journey.answered_at = journey.answered_at or event.leg.started_at

    def _leg_ended(self, event: AgentLegEnded) -> None:
        self._bound(event.call).legs.append(_leg(event.leg, self.now()))

    async def _record_ended(self, event: CallEnded) -> None:
        call = event.call
        journey = self._bound(call)
        journey.outcome = event.outcome
        if journey.channel_id is not None or event.continues:
            return  # a trunk call ends with its channel; a moved call goes on under its next record
        self.by_session.pop(call.session_id, None)
        await self._finish(journey)

    async def _finish(self, journey: Journey) -> None:
        with self.together():
            await self.bus.publish(CallFinished(journey.summary(self.now())))

    def _prune(self) -> None:
        """Drops journeys whose end never came (bounded memory if an end is ever missed)."""
        now = self.now()
        for session_id, journey in list(self.by_session.items()):
            if (now - journey.started_at).total_seconds() > STALE_AFTER_SECONDS:
                log.warning("call %s never ended; forgetting it", session_id)
                del self.by_session[session_id]
        for channel_id, journey in list(self.by_channel.items()):
            if (now - journey.started_at).total_seconds() > STALE_AFTER_SECONDS:
                del self.by_channel[channel_id]
