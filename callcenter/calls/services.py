"""Call handling in the Stasis app: what happens to a channel that Asterisk hands to the controller.

Plain Python over a small ``CallControl`` interface (the ARI client implements it), so unit tests
drive it without Asterisk. Each call is an explicit state machine:
``answering -> playing -> hanging_up -> ended`` for a greeting, ``routing -> ended`` for a
hand-over to the dialplan.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from callcenter import metrics
from callcenter.acd.events import EnterQueue, ToggleAgentLogin
from callcenter.bus import Bus
from callcenter.calls.journeys import Journeys
from callcenter.calls.settings import DidRoute
from callcenter.errors import AriError, AriNotFound
from callcenter.ivr.events import StartIvr
from callcenter.monitor.events import MonitorByCode, is_monitor_code

log = logging.getLogger(__name__)

NO_SERVICE_PROMPT = "no-service"


class CallControl(Protocol):
    async def answer(self, channel_id: str) -> None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def play(self, channel_id: str, media: list[str] | str, playback_id: str,
                   lang: str | None = None) -> None: ...
    async def playback_exists(self, playback_id: str) -> bool: ...
    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str,
                                   priority: int = 1) -> None: ...


class CallState(enum.Enum):
    ANSWERING = "answering"
    PLAYING = "playing"
    ROUTING = "routing"
    IVR = "ivr"
    QUEUED = "queued"
    MONITORING = "monitoring"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass
class StasisCall:
    channel_id: str
    kind: str  # "did" or "feature"
    number: str
    state: CallState = CallState.ANSWERING
    answered: bool = False
    playback_id: str | None = None
    history: list[CallState] = field(default_factory=list)

    def to(self, state: CallState) -> None:
        self.history.append(self.state)
        self.state = state


@dataclass(frozen=True)
class OwnedChannel:
    """A channel the app still owns, as ARI describes it after a reconnect."""

    args: tuple[str, ...]
    answered: bool
    caller: str = ""


class PromptMedia(Protocol):
    def media(self, name: str, lang: str = "en") -> str: ...


# The feature code an agent dials to log in or out of the queues.
AGENT_LOGIN_CODE = "*45"


class CallService:
    def __init__(self, control: CallControl, dids: Mapping[str, DidRoute], prompts: PromptMedia, bus: Bus,
                 journeys: Journeys | None = None) -> None:
        """``bus``: where the IVR, the ACD and monitoring are asked to take a call over (their requests).
        ``journeys``: told of each caller a DID sends to an IVR flow or a queue."""
        self.control = control
        self.journeys = journeys
        self.dids = dids
        self.prompts = prompts
        self.bus = bus
        self.calls: dict[str, StasisCall] = {}

    def _update_gauge(self) -> None:
        metrics.STASIS_ACTIVE.set(len(self.calls))

    async def start(self, channel_id: str, args: tuple[str, ...], answered: bool = False, caller: str = "",
                    caller_name: str = "") -> None:
        """A channel entered the app: ``args`` are what the dialplan passed (kind, number)."""
        kind = args[0] if args else "did"
        number = args[1] if len(args) > 1 else ""
        call = StasisCall(channel_id, kind, number, answered=answered)
        self.calls[channel_id] = call
        self._update_gauge()
        metrics.STASIS_CALLS.labels(kind).inc()
        route = self.dids.get(number) if kind == "did" else None
        try:
            if kind == "feature" and is_monitor_code(number):
                prompt = await self.bus.ask(MonitorByCode(channel_id, caller, number))
                if prompt is None:
                    call.to(CallState.MONITORING)
                else:
                    await self._greet(call, prompt)
                return
            if kind == "feature" and number == AGENT_LOGIN_CODE:
                prompt = await self.bus.ask(ToggleAgentLogin(caller))
                await self._greet(call, prompt or NO_SERVICE_PROMPT)
                return
            if route is None:
                # A number or feature code nobody configured: say so, then hang up.
                await self._greet(call, NO_SERVICE_PROMPT)
                return
            route_kind, _, target = route.route.partition(":")
            if self.journeys is not None and route_kind in ("ivr", "queue"):
                self.journeys.trunk_call(channel_id, caller, number, target if route_kind == "ivr" else "")
            if route_kind == "ivr":
                if await self.bus.ask(StartIvr(channel_id, target, caller, number, answered)):
                    call.to(CallState.IVR)
                    return
                log.error("DID %s routes to IVR flow %r, which is not loaded", number, target)
                await self._greet(call, NO_SERVICE_PROMPT)
            elif route_kind == "queue":
                if await self.bus.ask(EnterQueue(channel_id, target, caller, caller_name, number, answered)):
                    call.to(CallState.QUEUED)
                    return
                log.error("DID %s routes to queue %r, which does not exist", number, target)
                await self._greet(call, NO_SERVICE_PROMPT)
            elif route_kind == "extension":
                call.to(CallState.ROUTING)
                await self.control.continue_in_dialplan(channel_id, "users", target)
            else:
                await self._greet(call, target)
        except AriNotFound:
            self._forget(channel_id)  # the caller hung up meanwhile
        except AriError:
            log.exception("call %s: Asterisk refused a step; hanging up", channel_id)
            await self._hangup(call)

    async def _greet(self, call: StasisCall, prompt: str) -> None:
        if not call.answered:
            # Answer waits behind a playback already running on the channel (an adopted call).
            await self.control.answer(call.channel_id)
            call.answered = True
        call.to(CallState.PLAYING)
        # Unique per play: an adopted call may still have the previous controller's playback queued.
        call.playback_id = f"pb-{uuid.uuid4().hex}"
        await self.control.play(call.channel_id, self.prompts.media(prompt), call.playback_id)

    async def playback_finished(self, playback_id: str) -> None:
        call = next((c for c in self.calls.values() if c.playback_id == playback_id), None)
        if call is not None and call.state is CallState.PLAYING:
            await self._hangup(call)

    async def _hangup(self, call: StasisCall) -> None:
        call.to(CallState.HANGING_UP)
        try:
            await self.control.hangup(call.channel_id)
        except AriNotFound:
            self._forget(call.channel_id)

    def ended(self, channel_id: str) -> None:
        """The channel left the app (hung up, or handed to the dialplan)."""
        self._forget(channel_id)

    def _forget(self, channel_id: str) -> None:
        call = self.calls.pop(channel_id, None)
        if call is not None:
            call.to(CallState.ENDED)
        self._update_gauge()

    async def resync(self, owned: Mapping[str, OwnedChannel]) -> None:
        """After a (re)connect: ``owned`` maps the channels still in the app to their Stasis args
        and whether they are answered.

        Calls we track that left meanwhile are forgotten; a playback that finished while we were
        away moves its call on; channels we do not know (the controller restarted) start afresh.
        """
        for channel_id in list(self.calls):
            if channel_id not in owned:
                self._forget(channel_id)
        if self.journeys is not None:  # callers who hung up while the controller was away: their calls are over
            for channel_id in [c for c in self.journeys.by_channel if c not in owned]:
                await self.journeys.channel_ended(channel_id)
        for channel_id, channel in owned.items():
            call = self.calls.get(channel_id)
            if call is None:
                log.info("adopting channel %s still in the app after a restart", channel_id)
                await self.start(channel_id, channel.args, answered=channel.answered, caller=channel.caller)
            elif call.state is CallState.PLAYING and call.playback_id:
                if not await self.control.playback_exists(call.playback_id):
                    await self._hangup(call)
            elif call.state is CallState.HANGING_UP:
                await self._hangup(call)
