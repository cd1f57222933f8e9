"""The ACD: queues the controller runs itself over ARI (holding bridges, originate to agents, mixing
bridges), so it knows every state and can route by skill (ACD-1..7, TEL-3).

Plain Python over the ``AcdControl`` protocol (the ARI adapter in ``stasis.py`` implements it) and a
``Timers`` clock, so unit tests drive every transition without Asterisk. State changes are made
before the first ``await`` of a step, so two events never act on the same half-changed call.

``AcdService`` is one object made of a class per responsibility, over the state in ``core.py``:

- ``agents.py``: an agent's states (log-in, pauses, ready, wrap-up);
- ``delivery.py``: callers entering a queue, waiting, and the offers to free agents;
- ``connection.py``: agent and customer bridged, the agents' kept session lines, a call's end;
- ``transfers.py``: the agent's call control (click-to-call, hold, transfers);
- ``overflow.py``: overflow to another queue, a voicemail or an IVR flow, and the callback list;
- ``figures.py``: today's queue figures, a caller's position and estimated wait.

This module is its face: construction, and what Asterisk's events and other features call. What the
ACD tells the others goes on the bus (``events.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping

from callcenter.acd.agents import AgentStates
from callcenter.acd.connection import Connection
from callcenter.acd.core import (
    CAUSE_OUTCOMES,
    AcdControl,
    CardLookup,
    PromptMedia,
)
from callcenter.acd.delivery import Delivery
from callcenter.acd.events import EnterQueue, PlaceCall, ToggleAgentLogin
from callcenter.acd.figures import Figures
from callcenter.acd.model import CallState
from callcenter.acd.overflow import Overflow
from callcenter.acd.records import AcdRecorder, start_of_day
from callcenter.acd.sessions import AgentSessions
from callcenter.acd.settings import AcdSettings, PauseReason
from callcenter.acd.transfers import Transfers
from callcenter.bus import Bus, ChannelClaims
from callcenter.errors import AriError
from callcenter.timers import LoopTimers, Timers
from callcenter.users.events import PhoneStateChanged

log = logging.getLogger(__name__)


class AcdService(AgentStates, Delivery, Connection, Transfers, Overflow, Figures):
    def __init__(self, control: AcdControl, recorder: AcdRecorder, settings: AcdSettings,
                 pause_reasons: Mapping[str, PauseReason], wrapup_codes: Mapping[str, str],
                 prompts: PromptMedia, timers: Timers | None = None, *, bus: Bus, claims: ChannelClaims,
                 dial_timeout: int = 30,
                 default_wrapup: int = 15, extensions: Callable[[], set[str]] = set,
                 card_lookup: CardLookup | None = None, phone_state: Callable[[str], str] | None = None) -> None:
        self.control = control
        self.recorder = recorder
        self.bus = bus
        self.claims = claims
        self.settings = settings
        self.pause_reasons = dict(pause_reasons)
        self.wrapup_codes = dict(wrapup_codes)
        self.prompts = prompts
        self.timers = timers or LoopTimers()
        self.dial_timeout = dial_timeout
        self.default_wrapup = default_wrapup
        self.extensions = extensions
        self.card_lookup = card_lookup
        self.phone_state = phone_state
        self.queues = {}
        self.agents = {}
        self.calls = {}
        self.channels = {}
        self.callbacks = {}
        self.last_offered = {}
        self._timers = {}
        self._day = start_of_day(self.timers.now())
        self.version = 0
        self._changed = asyncio.Event()
        self.messages = {}
        self._order = itertools.count(1)
        self._goodbyes = {}
        self.sessions = AgentSessions(control)
        self._line_lost = {}
        bus.serve(EnterQueue, lambda request: self.enter(request.channel_id, request.queue, request.caller,
                                                         request.caller_name, request.did, request.answered,
                                                         request.priority))
        bus.serve(ToggleAgentLogin, lambda request: self.toggle_login(request.extension))
        bus.serve(PlaceCall, self._place_call)
        bus.subscribe(PhoneStateChanged, self._phone_state_changed)

    async def _place_call(self, request: PlaceCall) -> str:
        call = await self.dial(request.user_id, request.number, ticket_id=request.ticket_id)
        return call.record_id

    async def _phone_state_changed(self, event: PhoneStateChanged) -> None:
        if event.state == "NOT_INUSE":
            # A phone that just hung up may be the free agent a waiting caller needs.
            await self.dispatch()

    # -- what other features and Asterisk's events call -------------------------------------------------

    async def enter(self, channel_id: str, queue: str, caller: str, caller_name: str, did: str,
                    answered: bool, priority: int = 0) -> bool:
        """The entrance for DIDs and IVR exits (``QueueEntry``)."""
        return await self.enqueue(channel_id, queue, caller, caller_name, did, priority, answered) is not None

    async def resync(self, owned: set[str]) -> None:
        """After an ARI reconnect: channels that left the app meanwhile are gone."""
        for channel_id, entry in list(self.channels.items()):
            if channel_id not in owned and entry.role != "ring":
                await self.channel_gone(channel_id)
        for session in self.sessions.all():
            if session.up and session.channel_id not in owned:
                await self.channel_gone(session.channel_id)

    async def channel_entered(self, channel_id: str) -> None:
        """An ACD-originated channel entered the app: somebody answered."""
        session = self.sessions.leg(channel_id)
        if session is not None:
            await self._session_answered(session)
            return
        entry = self.channels.get(channel_id)
        if entry is None:
            # Not ours any more (the offer was withdrawn a moment ago).
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return
        if entry.role == "ring" and entry.attempt is not None:
            if entry.attempt.purpose == "consult":
                await self._consult_answered(entry.call, entry.attempt)
            elif entry.call.answered_like_inbound:
                await self._connect(entry.call, entry.attempt)
            else:
                await self._agent_leg_answered(entry.call, entry.attempt)
        elif entry.role == "dial":
            await self._customer_answered(entry.call, channel_id)

    async def channel_gone(self, channel_id: str, cause: int = 0) -> None:
        session = await self.sessions.gone(channel_id)
        if session is not None:
            self._session_dropped(session, cause)
        entry = self.channels.get(channel_id)
        if entry is None:
            if session is not None:
                self._out_if_line_lost(session.agent)
            return
        if entry.role == "ring" and entry.attempt is not None:
            await self._attempt_over(entry.attempt, CAUSE_OUTCOMES.get(cause, "no_answer" if cause == 0 else "failed"))
        elif entry.role == "customer":
            await self.customer_gone(channel_id)
        elif entry.role == "agent":
            await self._agent_hung_up(entry.call)
        elif entry.role == "consult":
            await self._consult_ended(entry.call)
        elif entry.role == "dial":
            self.channels.pop(channel_id, None)
            self._cancel_timer("dial", entry.call.record_id)
            await self._dial_failed(entry.call, CAUSE_OUTCOMES.get(cause, "failed"))
        if session is not None:
            self._out_if_line_lost(session.agent)

    async def dtmf(self, channel_id: str, digit: str) -> bool:
        entry = self.channels.get(channel_id)
        if entry is None or entry.role != "customer":
            return entry is not None
        call = entry.call
        if digit == self.settings.callback_key and call.state in (CallState.WAITING, CallState.RINGING):
            await self._callback_requested(call)
        return True

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.channels or self.sessions.leg(channel_id) is not None

    def live_leg(self, extension: str) -> tuple[str, str] | None:
        """The agent's own channel in the call they are connected to (queue, outbound, callback or
        transferred call) and the customer's number; None when they have no connected call."""
        agent = next((a for a in self.agents.values() if a.extension == extension), None)
        call = agent.current if agent is not None else None
        if call is None or call.agent is not agent or call.agent_channel is None:
            return None
        if call.state not in (CallState.CONNECTED, CallState.HELD, CallState.CONSULTING):
            return None
        return call.agent_channel, call.number
