"""The ACD: queues the controller runs itself over ARI (holding bridges, originate to agents, mixing
bridges), so it knows every state and can route by skill (ACD-1..7, TEL-3).

Plain Python over the ``AcdControl`` protocol (the ARI adapter in ``stasis.py`` implements it) and a
``Timers`` clock, so unit tests drive every transition without Asterisk. State changes are made
before the first ``await`` of a step, so two events never act on the same half-changed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from callcenter import metrics
from callcenter.acd import strategies
from callcenter.acd.bridges import create_or_adopt
from callcenter.acd.model import (
    AGENT_TRANSITIONS,
    AcdCall,
    Agent,
    AgentState,
    Attempt,
    CallState,
    CustomerCard,
    Direction,
)
from callcenter.acd.records import AcdRecorder, DayFigures, start_of_day
from callcenter.acd.sessions import (
    SESSION_ARG,
    SESSION_RING_SECONDS,
    AgentSession,
    AgentSessions,
    SessionControl,
)
from callcenter.config import AcdSettings, PauseReason, QueueSpec
from callcenter.errors import ActionRefused, AriError, AriNotFound

log = logging.getLogger(__name__)

# Stasis arguments of the channels the ACD originates; the adapter routes them here.
ACD_ARG = "acd"
# Hang-up causes of an agent's phone that did not take an offered call (Q.850).
CAUSE_OUTCOMES = {17: "busy", 21: "rejected", 18: "no_answer", 19: "no_answer", 16: "no_answer"}
# An offer the dialer withdrew at its 2-second deadline was not taken in time: a miss like any other.
# So is an offer of a dialer's person that a later offer to another agent overtook.
MISS_OUTCOMES = {"no_answer", "busy", "rejected", "failed", "withdrawn", "overtaken"}
# A dialer's person is offered to one more ringing phone only while this much of their 2 s is left,
# once the offers so far have rung this long unanswered (an auto-answering phone answers well within it).
WIDEN_RING_MARGIN = 1.0
WIDEN_AFTER = 0.5
NUMBER_RE = re.compile(r"^\+?[0-9*#]{2,32}$")


class AcdControl(SessionControl, Protocol):
    """What the ACD asks of Asterisk: the sessions' bridges and playback, and more."""

    async def answer(self, channel_id: str) -> None: ...
    async def start_moh(self, channel_id: str, moh_class: str) -> None: ...
    async def stop_moh(self, channel_id: str) -> None: ...
    async def stop_playback(self, playback_id: str) -> None: ...
    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int,
                        args: list[str], originator: str | None = None) -> None: ...
    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str,
                                   priority: int = 1) -> None: ...


class Timers(Protocol):
    def now(self) -> datetime: ...
    def later(self, delay: float, action: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Runs ``action`` after ``delay`` seconds; returns a function that cancels it."""


class LoopTimers:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def later(self, delay: float, action: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except Exception:
                log.exception("ACD timer failed")
        task = asyncio.get_running_loop().create_task(run())

        def cancel() -> None:
            task.cancel()
        return cancel


class PromptMedia(Protocol):
    def media(self, name: str, lang: str = "en") -> str: ...


IvrStart = Callable[[str, str, str, str], bool]  # channel, flow, caller, did -> started
CardLookup = Callable[[str], Awaitable[CustomerCard | None]]


@dataclass
class _Channel:
    """What a channel is to the ACD: the customer, an agent phone ringing, the connected agent..."""

    role: str  # customer, ring, agent, consult, dial
    call: AcdCall
    attempt: Attempt | None = None


@dataclass
class QueueRuntime:
    spec: QueueSpec
    figures: DayFigures
    handle_times: deque[float]
    bridge_ready: bool = False

    @property
    def hold_bridge(self) -> str:
        return f"acd-hold-{self.spec.name}"


class DialerHook(Protocol):
    """What the outbound dialer hears about the calls it handed to the ACD."""

    async def connected(self, call: AcdCall) -> None: ...
    async def ended(self, call: AcdCall) -> None: ...
    async def wrapped_up(self, call: AcdCall) -> None: ...


class RecordingHook(Protocol):
    """Recording of connected calls (callcenter/recording): told when a call is bridged and when it ends."""

    async def connected(self, call: AcdCall) -> None: ...
    async def ended(self, call: AcdCall) -> None: ...


class AcdService:
    def __init__(self, control: AcdControl, recorder: AcdRecorder, settings: AcdSettings,
                 pause_reasons: Mapping[str, PauseReason], wrapup_codes: Mapping[str, str],
                 prompts: PromptMedia, timers: Timers | None = None, *, dial_timeout: int = 30,
                 default_wrapup: int = 15, extensions: Callable[[], set[str]] = set,
                 card_lookup: CardLookup | None = None, phone_state: Callable[[str], str] | None = None) -> None:
        self.control = control
        self.recorder = recorder
        self.settings = settings
        self.pause_reasons = dict(pause_reasons)
        self.wrapup_codes = dict(wrapup_codes)
        self.prompts = prompts
        self.timers: Timers = timers or LoopTimers()
        self.dial_timeout = dial_timeout
        self.default_wrapup = default_wrapup
        self.recording: RecordingHook | None = None
        self.dialer: DialerHook | None = None
        self.extensions = extensions
        self.card_lookup = card_lookup
        self.phone_state = phone_state
        self.ivr_start: IvrStart | None = None
        self.queues: dict[str, QueueRuntime] = {}
        self.agents: dict[int, Agent] = {}
        self.calls: dict[str, AcdCall] = {}  # by record id
        self.channels: dict[str, _Channel] = {}
        self.callbacks: dict[str, dict[str, Any]] = {}  # open callback-list entries by number
        self.last_offered: dict[str, int] = {}
        self._timers: dict[tuple[str, str], Callable[[], None]] = {}
        self._day = start_of_day(self.timers.now())
        self.version = 0
        self._changed = asyncio.Event()
        self.messages: dict[int, str] = {}  # a note for an agent's panel (a failed transfer...)
        self._order = itertools.count(1)
        self._goodbyes: dict[str, str] = {}  # playback id -> channel to hang up when it ends
        self.sessions = AgentSessions(control)
        # Agents whose session line dropped: logged out as soon as their call and wrap-up are over.
        self._line_lost: dict[int, str] = {}

    # -- set-up -------------------------------------------------------------------------------------

    def load(self, queues: Mapping[str, QueueSpec], agents: Mapping[int, Agent],
             figures: Mapping[str, DayFigures], handle_times: Mapping[str, list[float]],
             callbacks: Iterable[dict[str, Any]]) -> None:
        self.queues = {name: QueueRuntime(spec, figures.get(name, DayFigures()),
                                          deque(handle_times.get(name, []), maxlen=self.settings.estimate_calls))
                       for name, spec in queues.items()}
        self.agents = dict(agents)
        self.callbacks = {c["number"]: dict(c) for c in callbacks}
        self.notify()

    # -- notifications ------------------------------------------------------------------------------

    def notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, version: int, timeout: float) -> int:
        if version == self.version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self.version

    # -- agent state ----------------------------------------------------------------------------------

    def _set_state(self, agent: Agent, state: AgentState, reason: str = "", detail: str = "") -> None:
        previous = agent.state
        if state not in AGENT_TRANSITIONS[previous] and state is not previous:
            log.warning("agent %s: unexpected transition %s -> %s", agent.extension, previous, state)
        now = self.timers.now()
        if state is previous and reason == agent.reason:
            return
        agent.state, agent.reason, agent.since = state, reason, now
        if state is AgentState.READY and previous is not AgentState.RINGING:
            # An offer that ended without a miss (another agent took it, the caller left) keeps the agent's
            # place in longest-idle; a miss moves them back (``_attempt_over``).
            agent.idle_since = now
        if state is not AgentState.WRAP_UP:
            agent.wrapup_deadline = None
            self._cancel_timer("wrapup", str(agent.user_id))
        self.recorder.agent_state(agent, previous, now, detail)
        metrics.ACD_AGENT_STATES.labels(state.value).inc()
        self.notify()

    def _settle(self, agent: Agent, detail: str = "") -> None:
        """The agent has no call and no wrap-up left: ready, or the pause they asked for meanwhile."""
        if agent.state is AgentState.LOGGED_OUT:
            return
        if agent.user_id in self._line_lost:
            self._set_state(agent, AgentState.LOGGED_OUT, "", self._line_lost.pop(agent.user_id))
            return
        if agent.missed_in_row >= self.settings.missed_limit:
            self._set_state(agent, AgentState.PAUSED, "missed",
                            f"{agent.missed_in_row} offered calls in a row not answered")
        elif agent.pending_pause:
            reason, agent.pending_pause = agent.pending_pause, None
            self._set_state(agent, AgentState.PAUSED, reason, detail)
        elif agent.resume_pause:
            reason, agent.resume_pause = agent.resume_pause, None
            self._set_state(agent, AgentState.PAUSED, reason, detail)
        else:
            self._set_state(agent, AgentState.READY, "", detail)

    def agent_by_extension(self, extension: str) -> Agent | None:
        return next((a for a in self.agents.values() if a.extension == extension), None)

    def _agent(self, user_id: int) -> Agent:
        agent = self.agents.get(user_id)
        if agent is None:
            raise ActionRefused("You are not an agent with an extension; ask an admin.", 403)
        return agent

    async def login(self, user_id: int) -> None:
        agent = self._agent(user_id)
        if agent.logged_in:
            raise ActionRefused("You are logged in already.")
        agent.missed_in_row = 0
        self._set_state(agent, AgentState.READY, "", "login")
        await self.dispatch()

    async def logout(self, user_id: int, by: str = "agent") -> None:
        agent = self._agent(user_id)
        if not agent.logged_in:
            raise ActionRefused("You are logged out already.")
        if agent.calls:
            raise ActionRefused("Finish the call first.")
        agent.pending_pause = agent.awaiting_approval = agent.resume_pause = None
        self._set_state(agent, AgentState.LOGGED_OUT, "", f"logout by {by}")
        session = self.sessions.of(agent)
        if session is not None:
            await self.sessions.close(session)
        await self._overflow_unstaffed()

    async def ready(self, user_id: int) -> None:
        agent = self._agent(user_id)
        if agent.state is AgentState.READY:
            return
        if agent.state not in (AgentState.PAUSED, AgentState.WRAP_UP, AgentState.LOGGED_OUT):
            raise ActionRefused("You can go ready when the call ends.")
        agent.missed_in_row = 0
        agent.pending_pause = agent.resume_pause = None
        self._set_state(agent, AgentState.READY, "", "ready")
        await self.dispatch()

    async def pause(self, user_id: int, reason: str) -> None:
        agent = self._agent(user_id)
        if reason not in self.pause_reasons:
            raise ActionRefused(f"Unknown pause reason {reason!r}.")
        if not agent.logged_in:
            raise ActionRefused("Log in first.")
        if self.pause_reasons[reason].needs_approval:
            agent.awaiting_approval, agent.awaiting_since = reason, self.timers.now()
            self.recorder.agent_state(agent, agent.state, self.timers.now(), f"asks for pause {reason}")
            self.notify()
            return
        self._apply_pause(agent, reason)

    def _apply_pause(self, agent: Agent, reason: str, detail: str = "") -> None:
        if agent.calls or agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            agent.pending_pause = reason
            self.notify()
        else:
            agent.missed_in_row = 0
            self._set_state(agent, AgentState.PAUSED, reason, detail)

    async def decide_pause(self, supervisor: str, agent_id: int, approve: bool) -> None:
        agent = self._agent(agent_id)
        reason = agent.awaiting_approval
        if reason is None:
            raise ActionRefused(f"{agent.name} is not waiting for a pause approval.", 404)
        agent.awaiting_approval = agent.awaiting_since = None
        if approve and agent.logged_in:
            self._apply_pause(agent, reason, f"approved by {supervisor}")
        else:
            self.recorder.agent_state(agent, agent.state, self.timers.now(),
                                      f"pause {reason} {'denied' if not approve else 'void'} by {supervisor}")
            self.notify()

    async def wrapup(self, user_id: int, code: str, note: str) -> None:
        agent = self._agent(user_id)
        if code not in self.wrapup_codes:
            raise ActionRefused("Pick a wrap-up code.")
        connected = agent.current if agent.current is not None and agent.current.agent is agent else None
        call = connected or agent.last_call
        if call is None:
            raise ActionRefused("There is no call to wrap up.")
        call.wrapup_code, call.note = code, note.strip()[:2000]
        self.recorder.call_updated(call.record_id, wrapup_code=code, note=call.note)
        if call.campaign and self.dialer is not None:
            await self._tell_dialer(self.dialer.wrapped_up, call)
        if agent.state is AgentState.WRAP_UP and connected is None:
            self._settle(agent, f"wrap-up {code}")
            await self.dispatch()
        self.notify()

    async def _wrapup_over(self, agent: Agent) -> None:
        if agent.state is AgentState.WRAP_UP:
            self._settle(agent, "wrap-up time over")
            await self.dispatch()

    def _start_wrapup(self, agent: Agent, call: AcdCall) -> None:
        agent.last_call = call
        seconds = self.queues[call.queue].spec.wrapup if call.queue in self.queues else self.default_wrapup
        if seconds <= 0:
            self._settle(agent, "call ended")
            return
        self._set_state(agent, AgentState.WRAP_UP, "", f"call {call.record_id}")
        agent.wrapup_deadline = self.timers.now() + timedelta(seconds=seconds)
        self._set_timer("wrapup", str(agent.user_id), seconds, lambda: self._wrapup_over(agent))

    # -- timers ---------------------------------------------------------------------------------------

    def _set_timer(self, kind: str, key: str, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        self._cancel_timer(kind, key)

        async def fire() -> None:
            self._timers.pop((kind, key), None)
            await action()
        self._timers[(kind, key)] = self.timers.later(delay, fire)

    def _cancel_timer(self, kind: str, key: str) -> None:
        cancel = self._timers.pop((kind, key), None)
        if cancel is not None:
            cancel()

    def _cancel_call_timers(self, call: AcdCall) -> None:
        for kind in ("maxwait", "announce", "dial", "widen"):
            self._cancel_timer(kind, call.record_id)

    # -- entering a queue -------------------------------------------------------------------------------

    async def enter(self, channel_id: str, queue: str, caller: str, caller_name: str, did: str,
                    answered: bool, priority: int = 0) -> bool:
        """The entrance for DIDs and IVR exits (``QueueEntry``)."""
        return await self.enqueue(channel_id, queue, caller, caller_name, did, priority, answered) is not None

    async def toggle_login(self, extension: str) -> str | None:
        """The agent login feature code: logs in (ready) or out; the Asterisk prompt to play."""
        agent = self.agent_by_extension(extension)
        if agent is None:
            return None
        try:
            if agent.logged_in:
                await self.logout(agent.user_id, by="feature code")
                return "agent-loggedoff"
            await self.login(agent.user_id)
        except ActionRefused:
            return "agent-alreadyon"  # on a call: nothing changes
        return "agent-loginok"

    async def resync(self, owned: set[str]) -> None:
        """After an ARI reconnect: channels that left the app meanwhile are gone."""
        for channel_id, entry in list(self.channels.items()):
            if channel_id not in owned and entry.role != "ring":
                await self.channel_gone(channel_id)
        for session in self.sessions.all():
            if session.up and session.channel_id not in owned:
                await self.channel_gone(session.channel_id)


    async def enqueue(self, channel_id: str, queue: str, number: str, name: str = "", did: str = "",
                      priority: int = 0, answered: bool = False, parent: AcdCall | None = None,
                      campaign: str | None = None, card: CustomerCard | None = None,
                      connect_by: datetime | None = None, session_only: bool = False) -> AcdCall | None:
        """A caller (from a DID, the IVR or a transfer) waits in ``queue``; None if there is no such queue.

        With a ``campaign`` the customer is one the dialer reached: they wait in silence (a person who
        answered a call hears no music), nothing is counted in the queue's inbound figures, and the dialer
        decides when they stop waiting (``withdraw``, at ``connect_by``). ``session_only``: only agents
        with a kept line (``sessions.py``) are offered the call."""
        runtime = self.queues.get(queue)
        if runtime is None:
            return None
        self._roll_day()
        now = self.timers.now()
        direction = Direction.DIALER if campaign else Direction.INBOUND
        call = AcdCall(channel_id, direction, queue, number, name, did, priority, entered_at=now,
                       state_since=now, parent_id=parent.record_id if parent else None, order=next(self._order),
                       campaign=campaign, card=card, connect_by=connect_by, session_only=session_only)
        if parent is not None:
            call.card, call.destination_seq = parent.card, 0
        # The queue when this caller arrived, themself included (queue_call CSV: callers, agents).
        waiting = sum(1 for c in self.calls.values() if c.queue == queue and c.state is CallState.WAITING)
        call.queue_callers = waiting + 1
        call.queue_agents = sum(1 for a in self.agents.values() if a.logged_in and queue in a.skills)
        self.calls[call.record_id] = call
        self.channels[channel_id] = _Channel("customer", call)
        self.recorder.call_started(call)
        self.recorder.destination(call, "Q", queue, now)
        if call.direction is Direction.DIALER:
            self.notify()
            await self.dispatch()
            return call
        runtime.figures.offered += 1
        metrics.ACD_CALLS.labels(queue, "offered").inc()
        self.notify()
        if self.card_lookup is not None and call.card is None:
            asyncio.get_running_loop().create_task(self._load_card(call))
        try:
            if not answered:
                await self.control.answer(channel_id)
            await self._park(call)
        except AriNotFound:
            await self.customer_gone(channel_id)
            return call
        if runtime.spec.max_wait > 0:
            self._set_timer("maxwait", call.record_id, runtime.spec.max_wait, lambda: self._max_wait(call))
        if runtime.spec.announce_every > 0:
            self._set_timer("announce", call.record_id, min(5, runtime.spec.announce_every),
                            lambda: self._announce(call))
        if not self._staffed(queue) and runtime.spec.overflow:
            await self._overflow(call, "no agent logged in")
            return call
        await self.dispatch()
        return call

    async def _load_card(self, call: AcdCall) -> None:
        assert self.card_lookup is not None
        try:
            call.card = await self.card_lookup(call.number)
        except Exception as exc:  # the card is a nicety; the call goes on without it
            log.warning("customer card for %s failed: %s", call.number, exc)
            return
        self.notify()

    def _staffed(self, queue: str) -> bool:
        return any(a.logged_in and queue in a.skills for a in self.agents.values())

    async def _park(self, call: AcdCall) -> None:
        """The customer hears music: in the queue's holding bridge, or alone when no queue."""
        assert call.channel_id is not None
        call.parked = True
        runtime = self.queues.get(call.queue or "")
        if runtime is None:
            await self.control.start_moh(call.channel_id, "default")
            return
        if not runtime.bridge_ready:
            runtime.bridge_ready = True
            try:
                await create_or_adopt(self.control, runtime.hold_bridge, "holding")
                await self.control.bridge_moh(runtime.hold_bridge, runtime.spec.moh_class)
            except AriError:
                runtime.bridge_ready = False
                raise
        try:
            await self.control.add_to_bridge(runtime.hold_bridge, call.channel_id)
        except AriError as exc:
            if isinstance(exc, AriNotFound) or exc.status < 400 or exc.status >= 500:
                raise
            # A caller adopted after a controller restart may still be in the holding bridge.
            log.info("call %s: %s; the caller stays where it is", call.record_id, exc.message)

    async def _unpark(self, call: AcdCall) -> None:
        if call.channel_id is None or not call.parked:
            await self._stop_playback(call)
            return
        call.parked = False
        runtime = self.queues.get(call.queue or "")
        with contextlib.suppress(AriNotFound):
            if runtime is None:
                await self.control.stop_moh(call.channel_id)
            else:
                await self.control.remove_from_bridge(runtime.hold_bridge, call.channel_id)
        await self._stop_playback(call)

    async def _stop_playback(self, call: AcdCall) -> None:
        if call.playback_id:
            playback, call.playback_id = call.playback_id, None
            with contextlib.suppress(AriError):
                await self.control.stop_playback(playback)

    def position(self, call: AcdCall) -> int:
        ahead = [c for c in self.calls.values() if c.queue == call.queue and c.waiting and _rank(c) < _rank(call)]
        return len(ahead) + 1

    def estimated_wait(self, queue: str, position: int) -> float | None:
        """Seconds until an agent takes a caller at ``position`` (docs/wallboard.md): callers ahead
        beyond the free agents, served by the staffed agents at the recent average handle time."""
        runtime = self.queues[queue]
        staffed = [a for a in self.agents.values() if queue in a.skills and a.logged_in
                   and a.state is not AgentState.PAUSED]
        if not staffed:
            return None
        free = sum(1 for a in staffed if a.free)
        times = runtime.handle_times
        handle = sum(times) / len(times) if times else float(self.settings.default_handle_time)
        return max(0, position - free) * handle / len(staffed)

    async def _announce(self, call: AcdCall) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.state not in (CallState.WAITING, CallState.RINGING) or not call.channel_id:
            return
        position = self.position(call)
        media = [self.prompts.media("queue-position"), f"number:{position}"]
        wait = self.estimated_wait(runtime.spec.name, position)
        if wait is not None:
            minutes = round(wait / 60)
            media += [self.prompts.media("queue-under-minute")] if minutes < 1 else \
                [self.prompts.media("queue-wait"), f"number:{minutes}", self.prompts.media("queue-minutes")]
        media.append(self.prompts.media("queue-callback-offer"))
        await self._stop_playback(call)
        call.playback_id = f"acd-ann-{uuid.uuid4().hex}"
        try:
            await self.control.play(call.channel_id, media, call.playback_id)
            metrics.ACD_ANNOUNCEMENTS.inc()
        except AriError as exc:
            log.info("announcement to %s failed: %s", call.channel_id, exc)
        self._set_timer("announce", call.record_id, runtime.spec.announce_every, lambda: self._announce(call))

    # -- delivery ---------------------------------------------------------------------------------------

    def available(self, agent: Agent) -> bool:
        """Free, and their phone can take a call now."""
        return self._available(agent)

    def close_callback(self, number: str, user_id: int | None) -> None:
        """The dialer reached a number from the callback list: it leaves the list."""
        self._close_callback(number, "done", user_id)

    def _available(self, agent: Agent) -> bool:
        if not agent.free:
            return False
        session = self.sessions.of(agent)
        if session is not None:
            # The phone is busy with the session leg itself: what counts is that the leg is up and idle.
            return session.up and not session.lent
        if self.phone_state is None:
            return True
        # An unregistered or busy phone (a direct call) would only ring out or refuse.
        return self.phone_state(agent.extension) in ("NOT_INUSE", "UNKNOWN", "")

    async def dispatch(self) -> None:
        """Offers waiting calls to free agents: the highest priority, then the longest waiting first,
        whatever queue they are in (a callback keeps the place its caller had).

        A person the dialer reached is already on the line with a 2-second promise: while their offer
        rings one agent, another free agent is offered them too (a session agent is connected at once),
        after every caller nobody is ringing yet has had their turn."""
        now = self.timers.now()
        waiting = sorted((c for c in self.calls.values()
                          if (c.state in (CallState.WAITING, CallState.CALLBACK_WAITING) and not c.ringing)
                          or (c.state is CallState.RINGING and c.direction is Direction.DIALER)),
                         key=lambda c: (bool(c.ringing), _rank(c)))
        offers: list[tuple[AcdCall, list[Agent]]] = []
        for call in waiting:
            free = [a for a in self.agents.values() if self._available(a)]
            if not free:
                break
            if call.session_only:
                free = [a for a in free if self.sessions.up(a)]
            if call.ringing:
                left = (call.connect_by - now).total_seconds() if call.connect_by else 0.0
                rung = (now - max(a.started_at for a in call.ringing.values())).total_seconds()
                free = [a for a in free if left > 0 and (
                    self.sessions.up(a) or (left >= WIDEN_RING_MARGIN and rung >= WIDEN_AFTER))]
                if not free:
                    continue
            if call.target_agent is not None:
                chosen = [call.target_agent] if call.target_agent in free else []
            else:
                runtime = self.queues.get(call.queue or "")
                if runtime is None:
                    continue
                chosen = strategies.choose(runtime.spec.strategy, runtime.spec.name, free, call.tried,
                                           self.last_offered)
            if chosen:
                self._reserve(call, chosen)
                offers.append((call, chosen))
        for call, chosen in offers:
            await self._ring(call, chosen)

    def _reserve(self, call: AcdCall, agents: list[Agent]) -> None:
        now = self.timers.now()
        ring_timeout = self._ring_timeout(call)
        for agent in agents:
            session = self.sessions.of(agent)
            # A session agent's offer is their kept leg: it is connected at once, nothing rings.
            channel_id = session.channel_id if session is not None else f"acd-{uuid.uuid4().hex[:20]}"
            attempt = Attempt(call.next_attempt_seq(), agent, channel_id, now)
            call.ringing[attempt.channel_id] = attempt
            self.channels[attempt.channel_id] = _Channel("ring", call, attempt)
            agent.calls.append(call)
            if call.queue:
                self.last_offered[call.queue] = int(agent.extension)
            self._set_state(agent, AgentState.RINGING, "", f"offered call {call.record_id}")
            self.recorder.attempt_started(call, attempt)
            if session is None:
                self._set_timer("ring", attempt.channel_id, ring_timeout, self._ring_timer(attempt))
                if call.direction is Direction.DIALER:
                    self._set_timer("widen", call.record_id, WIDEN_AFTER, self.dispatch)
            trigger = max(agent.idle_since or now, call.state_since or call.entered_at or now)
            metrics.ACD_OFFER_DELAY.observe(max(0.0, (now - trigger).total_seconds()))
        if call.state is CallState.WAITING:
            call.state = CallState.RINGING

    def _ring_timer(self, attempt: Attempt) -> Callable[[], Awaitable[None]]:
        return lambda: self._ring_timeout_over(attempt)

    def _ring_timeout(self, call: AcdCall) -> int:
        runtime = self.queues.get(call.queue or "")
        return runtime.spec.ring_timeout if runtime else 20

    async def _ring(self, call: AcdCall, agents: list[Agent]) -> None:
        caller_id = _caller_id(call.name, call.number)
        for agent in agents:
            attempt = next((a for a in call.ringing.values() if a.agent is agent), None)
            if attempt is None:
                continue
            if self.sessions.leg(attempt.channel_id) is not None:
                await self._connect(call, attempt)
                continue
            try:
                await self.control.originate(attempt.channel_id, f"PJSIP/{agent.extension}", caller_id,
                                             self._ring_timeout(call) + 5, [ACD_ARG, call.record_id],
                                             originator=call.channel_id)
            except AriError as exc:
                log.warning("ringing agent %s failed: %s", agent.extension, exc)
                await self._attempt_over(attempt, "failed")

    async def _ring_timeout_over(self, attempt: Attempt) -> None:
        entry = self.channels.get(attempt.channel_id)
        if entry is None or entry.role != "ring":
            return
        await self._attempt_over(attempt, "no_answer", hang_up=True)

    async def _attempt_over(self, attempt: Attempt, outcome: str, hang_up: bool = False) -> None:
        """An offer ended without the agent taking the call."""
        entry = self.channels.pop(attempt.channel_id, None)
        if entry is None:
            return
        call, agent = entry.call, attempt.agent
        self._cancel_timer("ring", attempt.channel_id)
        call.ringing.pop(attempt.channel_id, None)
        attempt.outcome = outcome
        self.recorder.attempt_ended(call, attempt, self.timers.now())
        metrics.ACD_ATTEMPTS.labels(outcome).inc()
        if call in agent.calls:
            agent.calls.remove(call)
        if hang_up:
            await self._let_go_leg(attempt.channel_id)
        if attempt.purpose == "consult":
            await self._consult_failed(call, attempt)
            return
        if not call.answered_like_inbound and call.state is CallState.RINGING:
            # The agent did not pick up their own click-to-call or callback leg.
            if call.direction is Direction.OUTBOUND:
                await self._end_call(call, outcome="failed", agent_left=True)
                self._settle(agent, f"outbound call not picked up ({outcome})")
                await self.dispatch()
                return
        if outcome in MISS_OUTCOMES:
            agent.missed_in_row += 1
            call.tried.add(agent.user_id)
            # A missed offer is no claim to the next one: the agent goes to the back of longest-idle.
            agent.idle_since = self.timers.now()
            detail = f"did not take call {call.record_id} ({outcome})"
        else:
            detail = f"offer of call {call.record_id} over ({outcome})"
        if agent.state is AgentState.RINGING and not agent.calls:
            self._settle(agent, detail)
        if call.state is CallState.RINGING and not call.ringing:
            call.state = CallState.WAITING if call.channel_id else CallState.CALLBACK_WAITING
            call.state_since = self.timers.now()
            if call.target_agent is agent:
                await self._target_missed(call)
                return
        self.notify()
        await self.dispatch()

    async def _target_missed(self, call: AcdCall) -> None:
        """A blind transfer to one agent was not taken: back to the queue, else their voicemail."""
        agent, call.target_agent = call.target_agent, None
        if call.queue and call.queue in self.queues:
            await self.dispatch()
            return
        assert agent is not None
        await self._to_voicemail(call, agent.extension)

    # -- events from Asterisk -----------------------------------------------------------------------------

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

    # -- agent sessions (sessions.py) --------------------------------------------------------------------

    def session_of(self, user_id: int) -> AgentSession | None:
        agent = self.agents.get(user_id)
        return self.sessions.of(agent) if agent is not None else None

    async def open_session(self, user_id: int, label: str, music: str = "") -> bool:
        """Calls a free agent's phone to keep it connected for ``label`` (a campaign); False if the agent
        cannot take it now (not free, a session already, their phone busy)."""
        agent = self.agents.get(user_id)
        if agent is None or self.sessions.of(agent) is not None or not self._available(agent):
            return False
        session = self.sessions.begin(agent, label, music, self.timers.now())
        self.recorder.agent_state(agent, agent.state, self.timers.now(), f"session for {label}: calling the phone")
        self.notify()
        try:
            await self.control.originate(session.channel_id, f"PJSIP/{agent.extension}", _caller_id(label, ""),
                                         SESSION_RING_SECONDS, [ACD_ARG, SESSION_ARG], originator=None)
        except AriError as exc:
            log.warning("agent %s: calling the phone for %s failed: %s", agent.extension, label, exc)
            self.sessions.forget(session)
            self._session_failed(session)
        return True

    async def close_session(self, user_id: int) -> None:
        """No campaign needs the agent's kept line any more: it is hung up once they have no call."""
        agent = self.agents.get(user_id)
        session = self.sessions.of(agent) if agent is not None else None
        if session is None or session.lent or (agent is not None and agent.calls):
            return
        await self.sessions.close(session)
        self.recorder.agent_state(session.agent, session.agent.state, self.timers.now(),
                                  f"session for {session.label} closed")
        self.notify()

    async def _session_answered(self, session: AgentSession) -> None:
        agent = session.agent
        try:
            await self.sessions.answered(session, self.timers.now())
        except AriError as exc:
            log.warning("agent %s: the session could not start: %s", agent.extension, exc)
            await self.sessions.close(session)
            self._session_failed(session)
            return
        self.recorder.agent_state(agent, agent.state, self.timers.now(), f"session for {session.label} connected")
        self.messages.pop(agent.user_id, None)
        self.notify()
        await self.dispatch()

    def _session_failed(self, session: AgentSession) -> None:
        """The line could not be set up (no call to end): the agent leaves at once."""
        self._session_dropped(session, 0)
        self._out_if_line_lost(session.agent)

    def _session_dropped(self, session: AgentSession, cause: int) -> None:
        """The kept line ended without us: the agent leaves (after the call they are on), with a message,
        and is never left ready with no phone."""
        agent = session.agent
        if agent.state is AgentState.LOGGED_OUT:
            return
        what = "did not answer the call" if not session.up else "line was hung up"
        message = (f"Your phone {what} for {session.label} (cause {cause}): you are logged out. "
                   "Log in again to rejoin.")
        self.messages[agent.user_id] = message
        self._line_lost[agent.user_id] = f"session line lost ({session.label}, cause {cause})"
        log.info("agent %s: the session line for %s ended (cause %s)", agent.extension, session.label, cause)

    def _out_if_line_lost(self, agent: Agent) -> None:
        if agent.user_id in self._line_lost and not agent.calls and agent.state is not AgentState.WRAP_UP:
            self._settle(agent, "")
            self.notify()

    async def _let_go_leg(self, channel_id: str) -> None:
        """An agent-side channel leaves a call: a session leg goes back to its agent, any other hangs up."""
        session = self.sessions.leg(channel_id)
        if session is not None:
            await self.sessions.take_back(session)
            return
        with contextlib.suppress(AriError):
            await self.control.hangup(channel_id)

    async def _bridge_agent_leg(self, bridge_id: str, channel_id: str) -> None:
        session = self.sessions.leg(channel_id)
        if session is not None:
            await self.sessions.lend(session, bridge_id)
        else:
            await self.control.add_to_bridge(bridge_id, channel_id)

    # -- connecting -------------------------------------------------------------------------------------

    async def _connect(self, call: AcdCall, attempt: Attempt) -> None:
        agent = attempt.agent
        now = self.timers.now()
        if call.state is not CallState.RINGING or call.channel_id is None:
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
            return
        self._take_answer(call, attempt, now, "agent")
        others = list(call.ringing.values())
        self._cancel_call_timers(call)
        first_answer = call.answered_at is None
        call.state, call.state_since = CallState.CONNECTED, now
        call.answered_at = call.answered_at or now
        call.agent, call.agent_channel, call.target_agent = agent, attempt.channel_id, None
        agent.missed_in_row = 0
        agent.calls_today += 1
        self._set_state(agent, AgentState.ON_CALL, "", f"call {call.record_id} from {call.number}")
        wait = (now - (call.entered_at or now)).total_seconds()
        if first_answer:
            if call.direction is Direction.INBOUND:
                self._count_answer(call, wait)
            self.recorder.call_updated(call.record_id, answered_at=now, wait_seconds=round(wait, 2),
                                       agent_id=agent.user_id, outcome="answered")
        else:
            self.recorder.call_updated(call.record_id, agent_id=agent.user_id)
        self.recorder.destination(call, "U", agent.extension, now)
        for other in others:
            # A dialer's person was offered to this agent because the earlier offers were too slow.
            overtaken = call.direction is Direction.DIALER and other.started_at < attempt.started_at
            await self._attempt_over(other, "overtaken" if overtaken else "taken_by_other", hang_up=True)
        linking = call.linking = asyncio.Event()
        try:
            await self._unpark(call)
            call.bridge_id = f"acd-call-{call.record_id}"
            await self.control.create_bridge(call.bridge_id, "mixing")
            await self.control.add_to_bridge(call.bridge_id, call.channel_id)
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
        except AriNotFound:
            # One side hung up while we bridged: its own event ends the call.
            log.info("call %s: a party left while being connected", call.record_id)
        else:
            session = self.sessions.leg(attempt.channel_id)
            if session is not None:
                await self.sessions.beep(session)
            await self._start_recording(call)
        finally:
            linking.set()
        if call.direction is Direction.DIALER and self.dialer is not None:
            await self._tell_dialer(self.dialer.connected, call)
        self.notify()

    def _take_answer(self, call: AcdCall, attempt: Attempt, now: datetime, role: str) -> None:
        """An agent's phone answered this offer: it stops ringing and becomes the call's ``role`` channel."""
        self._cancel_timer("ring", attempt.channel_id)
        call.ringing.pop(attempt.channel_id, None)
        attempt.answered, attempt.outcome = True, "answered"
        self.recorder.attempt_ended(call, attempt, now)
        metrics.ACD_ATTEMPTS.labels("answered").inc()
        self.channels[attempt.channel_id] = _Channel(role, call)

    def _count_answer(self, call: AcdCall, wait: float) -> None:
        """A queue call was answered for the first time, after ``wait`` seconds: today's figures."""
        runtime = self.queues.get(call.queue or "")
        if runtime is None:
            return
        runtime.figures.answered += 1
        runtime.figures.wait_total += wait
        if wait <= runtime.spec.service_level:
            runtime.figures.answered_in_sl += 1
        metrics.ACD_CALLS.labels(call.queue, "answered").inc()
        metrics.ACD_WAIT.observe(wait)

    async def _agent_leg_answered(self, call: AcdCall, attempt: Attempt) -> None:
        """Click-to-call and callbacks: the agent took their phone; now the customer is dialled."""
        agent = attempt.agent
        now = self.timers.now()
        self._take_answer(call, attempt, now, "agent")
        call.agent, call.agent_channel = agent, attempt.channel_id
        if call.direction is Direction.CALLBACK:
            agent.missed_in_row = 0
            agent.calls_today += 1
            self._set_state(agent, AgentState.ON_CALL, "", f"callback {call.record_id} to {call.number}")
        call.state, call.state_since = CallState.DIALING, now
        call.bridge_id = f"acd-call-{call.record_id}"
        dial_channel = f"acd-{uuid.uuid4().hex[:20]}"
        self.channels[dial_channel] = _Channel("dial", call)
        # The customer's leg belongs to the agent's call, except a kept session line's: that line is a
        # call of its own (for hours), and the customer's call must keep its own records (docs/cdr.md).
        originator = None if self.sessions.leg(attempt.channel_id) is not None else attempt.channel_id
        try:
            await self.control.create_bridge(call.bridge_id, "mixing")
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
            await self.control.originate(dial_channel, self._endpoint(call.number, call.trunk),
                                         call.dial_caller_id or _caller_id(agent.name, agent.extension),
                                         self.dial_timeout,
                                         [ACD_ARG, call.record_id], originator=originator)
        except AriError as exc:
            log.warning("dialling %s failed: %s", call.number, exc)
            self.channels.pop(dial_channel, None)
            await self._dial_failed(call, "failed")
            return
        self._set_timer("dial", call.record_id, self.dial_timeout,
                        lambda: self._dial_timeout_over(call, dial_channel))
        self.notify()

    def _endpoint(self, number: str, trunk: str | None = None) -> str:
        if number in self.extensions():
            return f"PJSIP/{number}"
        return f"PJSIP/{number}@{trunk or self.settings.trunk}"

    async def _dial_timeout_over(self, call: AcdCall, dial_channel: str) -> None:
        if self.channels.pop(dial_channel, None) is not None:
            with contextlib.suppress(AriError):
                await self.control.hangup(dial_channel)
            await self._dial_failed(call, "no_answer")

    async def _customer_answered(self, call: AcdCall, channel_id: str) -> None:
        now = self.timers.now()
        self._cancel_timer("dial", call.record_id)
        call.channel_id = channel_id
        self.channels[channel_id] = _Channel("customer", call)
        call.state, call.state_since, call.answered_at = CallState.CONNECTED, now, now
        values: dict[str, Any] = {"answered_at": now, "outcome": "answered", "channel_id": channel_id,
                                  "agent_id": call.agent.user_id if call.agent else None}
        if call.direction is Direction.CALLBACK:
            wait = (now - (call.entered_at or now)).total_seconds()
            values["wait_seconds"] = round(wait, 2)
            self._count_answer(call, wait)
        self.recorder.call_updated(call.record_id, **values)
        if call.agent is not None:
            self.recorder.destination(call, "U", call.agent.extension, now)
        if call.number in self.callbacks:
            self._close_callback(call.number, "done", call.agent.user_id if call.agent else None)
        linking = call.linking = asyncio.Event()
        try:
            assert call.bridge_id is not None
            await self.control.add_to_bridge(call.bridge_id, channel_id)
        except AriNotFound:
            log.info("call %s: a party left while being connected", call.record_id)
        else:
            await self._start_recording(call)
        finally:
            linking.set()
        if call.campaign and self.dialer is not None:
            await self._tell_dialer(self.dialer.connected, call)
        self.notify()

    async def _start_recording(self, call: AcdCall) -> None:
        if self.recording is None:
            return
        try:
            await self.recording.connected(call)
        except Exception:  # a recording problem must never cost the call
            log.exception("starting the recording of call %s failed", call.record_id)

    async def _dial_failed(self, call: AcdCall, outcome: str) -> None:
        """The customer of a click-to-call or callback did not answer: the agent is told and freed."""
        if call.agent is not None:
            self.messages[call.agent.user_id] = f"{call.number} did not answer ({outcome.replace('_', ' ')})."
        if call.number and call.direction is Direction.CALLBACK:
            self._add_callback(call, "callback_failed")
        await self._end_call(call, outcome=outcome)

    # -- ending -----------------------------------------------------------------------------------------

    async def customer_gone(self, channel_id: str) -> None:
        entry = self.channels.pop(channel_id, None)
        if entry is None:
            return
        call = entry.call
        if call.state in (CallState.WAITING, CallState.RINGING):
            await self._abandoned(call)
        elif call.state is not CallState.ENDED:
            call.channel_id = None
            await self._end_call(call)

    async def _abandoned(self, call: AcdCall) -> None:
        now = self.timers.now()
        self._cancel_call_timers(call)
        rang = call.attempt_seq > 0
        call.state, call.outcome = CallState.ENDED, "abandoned"
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        wait = (now - (call.entered_at or now)).total_seconds()
        runtime = self.queues.get(call.queue or "")
        dialer = call.direction is Direction.DIALER
        if runtime is not None and not dialer:
            runtime.figures.abandoned += 1
            metrics.ACD_CALLS.labels(call.queue, "abandoned").inc()
        self.recorder.call_updated(call.record_id, ended_at=now, outcome="abandoned", wait_seconds=round(wait, 2))
        if not dialer:  # the dialer's own retry rules call the customer again
            self._add_callback(call, "missed" if rang else "abandoned")
        self._forget(call)
        if dialer and self.dialer is not None:
            await self._tell_dialer(self.dialer.ended, call)
        await self.dispatch()

    async def withdraw(self, record_id: str) -> AcdCall | None:
        """The dialer takes back a customer no agent took in time (the 2-second rule): the offers stop,
        the ACD lets go of the channel, and the record says abandoned. None if the call is no longer
        waiting (an agent got it a moment ago)."""
        call = self.calls.get(record_id)
        if call is None or call.state not in (CallState.WAITING, CallState.RINGING):
            return None
        now = self.timers.now()
        call.state = CallState.ENDED
        self._cancel_call_timers(call)
        wait = (now - (call.entered_at or now)).total_seconds()
        self.recorder.call_updated(call.record_id, ended_at=now, outcome="abandoned", wait_seconds=round(wait, 2))
        if call.channel_id is not None:
            self.channels.pop(call.channel_id, None)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "withdrawn", hang_up=True)
        self._forget(call)
        await self.dispatch()
        return call

    async def _tell_dialer(self, hook: Callable[[AcdCall], Awaitable[None]], call: AcdCall) -> None:
        try:
            await hook(call)
        except Exception:  # the dialer's bookkeeping must never cost the call
            log.exception("the dialer failed to handle call %s", call.record_id)

    async def _agent_hung_up(self, call: AcdCall) -> None:
        if call.state is CallState.CONSULTING and call.consult_channel is not None:
            await self.transfer_complete_call(call)  # as a phone's attended transfer does
            return
        if call.agent_channel:
            self.channels.pop(call.agent_channel, None)
        call.agent_channel = None
        await self._end_call(call)

    async def _end_call(self, call: AcdCall, outcome: str | None = None, agent_left: bool = False) -> None:
        """Ends a call that reached an agent (or was dialled for one): every channel and the bridge go,
        the agent wraps up."""
        if call.state is CallState.ENDED:
            return
        now = self.timers.now()
        previous = call.state
        call.state = CallState.ENDED
        call.outcome = outcome or ("answered" if call.answered_at else "")
        if self.recording is not None:
            await self.recording.ended(call)
        self._cancel_call_timers(call)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        channels = [c for c in (call.channel_id, call.agent_channel, call.consult_channel) if c]
        channels += [cid for cid, entry in self.channels.items() if entry.call is call]
        for channel_id in dict.fromkeys(channels):
            entry = self.channels.pop(channel_id, None)
            if entry is not None and entry.role == "consult" and call.consult is not None:
                self._consult_agent_free(call.consult.agent)
            await self._let_go_leg(channel_id)
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await self.control.destroy_bridge(call.bridge_id)
        talk = (now - call.answered_at).total_seconds() if call.answered_at else None
        values: dict[str, Any] = {"ended_at": now}
        if talk is not None:
            values["talk_seconds"] = round(talk, 2)
            runtime = self.queues.get(call.queue or "") if call.direction is not Direction.DIALER else None
            if runtime is not None:
                runtime.figures.talk_total += talk
                runtime.figures.talked += 1
                runtime.handle_times.append(talk + runtime.spec.wrapup)
        if outcome:
            values["outcome"] = outcome
        self.recorder.call_updated(call.record_id, **values)
        self._forget(call)
        agent = call.agent
        if agent is not None and call in agent.calls:
            agent.calls.remove(call)
            if not agent_left and previous is not CallState.RINGING:
                self._start_wrapup(agent, call)
        if call.campaign and self.dialer is not None:
            await self._tell_dialer(self.dialer.ended, call)
        await self.dispatch()

    def _forget(self, call: AcdCall) -> None:
        self._cancel_call_timers(call)
        self.calls.pop(call.record_id, None)
        for channel_id in [cid for cid, entry in self.channels.items() if entry.call is call]:
            self.channels.pop(channel_id, None)
        self.notify()

    # -- overflow and callbacks ---------------------------------------------------------------------------

    async def _max_wait(self, call: AcdCall) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.state not in (CallState.WAITING, CallState.RINGING) or not runtime.spec.overflow:
            return
        await self._overflow(call, f"waited {runtime.spec.max_wait} s")

    async def _overflow_unstaffed(self) -> None:
        for call in list(self.calls.values()):
            runtime = self.queues.get(call.queue or "")
            if (runtime is not None and call.state is CallState.WAITING and runtime.spec.overflow
                    and not self._staffed(runtime.spec.name)):
                await self._overflow(call, "no agent logged in")

    async def _overflow(self, call: AcdCall, why: str) -> None:
        runtime = self.queues[call.queue or ""]
        kind, _, target = runtime.spec.overflow.partition(":")
        log.info("call %s overflows from %s to %s: %s", call.record_id, call.queue, runtime.spec.overflow, why)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        metrics.ACD_CALLS.labels(call.queue, "overflow").inc()
        if kind == "queue":
            await self._move_to_queue(call, target, "overflow")
        elif kind == "voicemail":
            await self._to_voicemail(call, target)
        elif kind == "ivr":
            await self._to_ivr(call, target, "overflow")
        else:
            await self._leave_for_callback(call, "overflow", "queue-overflow-callback")

    def _close_record(self, call: AcdCall, outcome: str, kind: str, target: str) -> None:
        now = self.timers.now()
        self._cancel_call_timers(call)
        wait = (now - (call.entered_at or now)).total_seconds()
        runtime = self.queues.get(call.queue or "")
        if runtime is not None and call.answered_at is None:
            runtime.figures.overflowed += 1
        values: dict[str, Any] = {"ended_at": now, "outcome": outcome}
        if call.answered_at is None:
            values["wait_seconds"] = round(wait, 2)
        else:
            values["talk_seconds"] = round((now - call.answered_at).total_seconds(), 2)
        self.recorder.call_updated(call.record_id, **values)
        self.recorder.destination(call, kind, target, now)

    async def _move_to_queue(self, call: AcdCall, queue: str, outcome: str) -> None:
        assert call.channel_id is not None
        self._close_record(call, outcome, "Q", queue)
        await self._unpark(call)
        self._forget(call)
        await self.enqueue(call.channel_id, queue, call.number, call.name, call.did, call.priority, answered=True,
                           parent=call)

    async def _to_voicemail(self, call: AcdCall, mailbox: str) -> None:
        channel_id = call.channel_id
        self._close_record(call, "overflow" if call.answered_at is None else "transferred", "V", mailbox)
        self._add_callback(call, "voicemail")
        call.state = CallState.ENDED
        self._forget(call)
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
                await self.control.continue_in_dialplan(channel_id, "ivr-voicemail", mailbox)
        await self.dispatch()

    async def _to_ivr(self, call: AcdCall, flow: str, outcome: str) -> None:
        channel_id = call.channel_id
        self._close_record(call, outcome, "R", flow)
        call.state = CallState.ENDED
        self._forget(call)
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
            if self.ivr_start is None or not self.ivr_start(channel_id, flow, call.number, call.did):
                log.error("call %s: IVR flow %s is not loaded; hanging up", call.record_id, flow)
                with contextlib.suppress(AriError):
                    await self.control.hangup(channel_id)
        await self.dispatch()

    async def _leave_for_callback(self, call: AcdCall, reason: str, prompt: str) -> None:
        """Overflow to the callback list: the caller hears why, hangs up, and the number is listed."""
        channel_id = call.channel_id
        self._close_record(call, "overflow", "C", "callback")
        self._add_callback(call, reason)
        call.state = CallState.ENDED
        self._forget(call)
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
            await self._goodbye(channel_id, prompt)
        await self.dispatch()

    async def _goodbye(self, channel_id: str, prompt: str) -> None:
        """Plays a last prompt to a customer the ACD let go of, then hangs up."""
        playback_id = f"acd-bye-{uuid.uuid4().hex}"
        self._goodbyes[playback_id] = channel_id
        try:
            await self.control.play(channel_id, self.prompts.media(prompt), playback_id)
        except AriError:
            self._goodbyes.pop(playback_id, None)
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)

    async def playback_finished(self, playback_id: str) -> None:
        channel_id = self._goodbyes.pop(playback_id, None)
        if channel_id is not None:
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return
        for call in self.calls.values():
            if call.playback_id == playback_id:
                call.playback_id = None

    async def _callback_requested(self, call: AcdCall) -> None:
        """The caller keeps their place without holding on: the call waits on as a callback."""
        assert call.channel_id is not None
        channel_id = call.channel_id
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        self.channels.pop(channel_id, None)
        self._cancel_timer("announce", call.record_id)
        self._cancel_timer("maxwait", call.record_id)
        with contextlib.suppress(AriNotFound):
            await self._unpark(call)
        call.channel_id = None
        call.direction = Direction.CALLBACK
        call.state = CallState.CALLBACK_WAITING
        self._add_callback(call, "requested")
        self.recorder.call_updated(call.record_id, direction=Direction.CALLBACK.value)
        self.recorder.destination(call, "C", "requested", self.timers.now())
        metrics.ACD_CALLS.labels(call.queue, "callback_requested").inc()
        self.notify()
        await self._goodbye(channel_id, "queue-callback-ok")
        await self.dispatch()

    def _add_callback(self, call: AcdCall, reason: str) -> None:
        if not call.number or not NUMBER_RE.match(call.number):
            return  # anonymous: nobody to call back
        now = self.timers.now()
        entry = self.callbacks.get(call.number)
        if entry is None:
            entry = {"id": call.number, "number": call.number, "name": call.name, "queue": call.queue,
                     "reason": reason, "count": 0, "last_at": now.isoformat()}
            self.callbacks[call.number] = entry
        entry["count"] += 1
        entry.update(reason=reason, last_at=now.isoformat(), name=call.name or entry["name"],
                     queue=call.queue or entry["queue"])
        self.recorder.callback(call.number, call.name, call.queue, reason, call.record_id, now)
        self.notify()

    def _close_callback(self, number: str, status: str, user_id: int | None) -> None:
        if self.callbacks.pop(number, None) is not None:
            self.recorder.callback_closed(number, status, user_id, self.timers.now())
            self.notify()

    # -- agent call control (TEL-3) -----------------------------------------------------------------------

    def _own_call(self, user_id: int) -> tuple[Agent, AcdCall]:
        agent = self._agent(user_id)
        call = agent.current
        if call is None or call.agent is not agent:
            raise ActionRefused("You have no call now.")
        return agent, call

    async def dial(self, user_id: int, number: str, *, campaign: str | None = None, card: CustomerCard | None = None,
                   caller_id: str | None = None, trunk: str | None = None) -> AcdCall:
        """Click-to-call: the agent's phone rings first; when they pick up, the number is dialled. A preview
        campaign's call says so (``campaign``, the contact's ``card``, the campaign's caller ID and trunk)."""
        agent = self._agent(user_id)
        number = re.sub(r"[\s()./-]", "", number)
        if not NUMBER_RE.match(number):
            raise ActionRefused("Enter a phone number (digits, optionally starting with +).")
        if not agent.logged_in:
            raise ActionRefused("Log in first.")
        if agent.calls or agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            raise ActionRefused("Finish the current call first.")
        if number == agent.extension:
            raise ActionRefused("That is your own extension.")
        session = self.sessions.of(agent)
        if session is not None and not session.up:
            raise ActionRefused("Your phone is being called for your session: answer it first.")
        now = self.timers.now()
        direction = Direction.OUTBOUND
        call = AcdCall(None, direction, None, number, self.callbacks.get(number, {}).get("name", ""),
                       entered_at=now, state=CallState.RINGING, state_since=now, campaign=campaign, card=card,
                       dial_caller_id=caller_id, trunk=trunk)
        if agent.state is AgentState.PAUSED:
            agent.resume_pause = agent.reason
        self.calls[call.record_id] = call
        self.recorder.call_started(call)
        channel_id = session.channel_id if session is not None else f"acd-{uuid.uuid4().hex[:20]}"
        attempt = Attempt(call.next_attempt_seq(), agent, channel_id, now, purpose="agent-leg")
        call.ringing[attempt.channel_id] = attempt
        call.agent = agent
        self.channels[attempt.channel_id] = _Channel("ring", call, attempt)
        agent.calls.append(call)
        self._set_state(agent, AgentState.ON_CALL, "outbound", f"calls {number}")
        self.recorder.attempt_started(call, attempt)
        if self.card_lookup is not None and card is None:
            asyncio.get_running_loop().create_task(self._load_card(call))
        if session is not None:  # the agent's line is open already: the number is dialled at once
            await self._agent_leg_answered(call, attempt)
            return call
        try:
            await self.control.originate(attempt.channel_id, f"PJSIP/{agent.extension}", _caller_id("", number),
                                         self.dial_timeout, [ACD_ARG, call.record_id])
        except AriError as exc:
            log.warning("click-to-call: ringing %s failed: %s", agent.extension, exc)
            self.channels.pop(attempt.channel_id, None)
            call.ringing.clear()
            agent.calls.remove(call)
            await self._end_call(call, outcome="failed", agent_left=True)
            self._settle(agent, "click-to-call failed")
            raise ActionRefused("Your phone could not be rung: is it registered?") from None
        self._set_timer("ring", attempt.channel_id, self.dial_timeout,
                        lambda: self._ring_timeout_over(attempt))
        return call

    async def _linked(self, call: AcdCall) -> None:
        """Waits (briefly) until a call being connected has both parties in its bridge."""
        if call.linking is not None and not call.linking.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.linking.wait(), 5)

    async def hold(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        await self._linked(call)
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONNECTED or call.channel_id is None or call.bridge_id is None:
            raise ActionRefused("Only a connected call can be held.")
        call.state, call.state_since = CallState.HELD, self.timers.now()
        await self.control.remove_from_bridge(call.bridge_id, call.channel_id)
        await self.control.start_moh(call.channel_id, "default")
        self.notify()

    async def unhold(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.HELD or call.channel_id is None or call.bridge_id is None:
            raise ActionRefused("The call is not on hold.")
        call.state, call.state_since = CallState.CONNECTED, self.timers.now()
        await self.control.stop_moh(call.channel_id)
        await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()

    async def hangup(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.channel_id:
            channel_id = call.channel_id
            self.channels.pop(channel_id, None)
            call.channel_id = None
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
        await self._end_call(call)

    async def transfer(self, user_id: int, mode: str, kind: str, target: str) -> None:
        _agent, call = self._own_call(user_id)
        await self._linked(call)
        agent, call = self._own_call(user_id)
        if call.state is not CallState.CONNECTED and not (call.state is CallState.HELD and mode == "blind"):
            raise ActionRefused("Only a connected call can be transferred.")
        if call.channel_id is None:
            raise ActionRefused("The customer has left.")
        if mode not in ("blind", "attended"):
            raise ActionRefused("Transfer mode is blind or attended.")
        if kind == "agent":
            other = self.agent_by_extension(target) or self.agents.get(int(target) if target.isdigit() else -1)
            if other is None or other is agent:
                raise ActionRefused(f"No other agent {target}.")
            if not self._available(other):
                raise ActionRefused(f"{other.name} is not available ({other.state.value.replace('_', ' ')}).")
            if mode == "attended":
                await self._consult(call, agent, other)
            else:
                await self._blind_to_agent(call, agent, other)
        elif mode == "attended":
            raise ActionRefused("Attended transfer goes to an agent; use blind for a queue or an IVR flow.")
        elif kind == "queue":
            if target not in self.queues:
                raise ActionRefused(f"No queue {target}.")
            await self._detach_agent(call, agent)
            await self._move_to_queue(call, target, "transferred")
        elif kind == "ivr":
            await self._detach_agent(call, agent)
            await self._to_ivr(call, target, "transferred")
        else:
            raise ActionRefused("Transfer to an agent, a queue or an IVR flow.")
        self.recorder.agent_state(agent, agent.state, self.timers.now(),
                                  f"transferred call {call.record_id} ({mode}) to {kind} {target}")

    async def _detach_agent(self, call: AcdCall, agent: Agent) -> None:
        """The transferring agent leaves the call (and wraps up); the customer stays with the ACD."""
        assert call.channel_id is not None
        if call.agent_channel:
            self.channels.pop(call.agent_channel, None)
            await self._let_go_leg(call.agent_channel)
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await self.control.destroy_bridge(call.bridge_id)
        if call.state is CallState.HELD:
            with contextlib.suppress(AriError):
                await self.control.stop_moh(call.channel_id)
        call.agent_channel = call.bridge_id = None
        call.agent = None
        if call in agent.calls:
            agent.calls.remove(call)
        self._start_wrapup(agent, call)

    async def _blind_to_agent(self, call: AcdCall, agent: Agent, other: Agent) -> None:
        await self._detach_agent(call, agent)
        call.state, call.state_since, call.target_agent = CallState.WAITING, self.timers.now(), other
        call.tried.clear()
        await self._park(call)
        await self.dispatch()

    async def _consult(self, call: AcdCall, agent: Agent, other: Agent) -> None:
        assert call.channel_id is not None and call.bridge_id is not None
        now = self.timers.now()
        call.state, call.state_since = CallState.CONSULTING, now
        await self.control.remove_from_bridge(call.bridge_id, call.channel_id)
        await self.control.start_moh(call.channel_id, "default")
        other_session = self.sessions.of(other)
        channel_id = other_session.channel_id if other_session is not None else f"acd-{uuid.uuid4().hex[:20]}"
        attempt = Attempt(call.next_attempt_seq(), other, channel_id, now, purpose="consult")
        call.consult = attempt
        self.channels[attempt.channel_id] = _Channel("ring", call, attempt)
        other.calls.append(call)
        self._set_state(other, AgentState.RINGING, "", f"consulted by {agent.extension}")
        self.recorder.attempt_started(call, attempt)
        if self.sessions.up(other):
            await self._consult_answered(call, attempt)
            return
        self._set_timer("ring", attempt.channel_id, self._ring_timeout(call),
                        lambda: self._ring_timeout_over(attempt))
        try:
            await self.control.originate(attempt.channel_id, f"PJSIP/{other.extension}",
                                         _caller_id(agent.name, agent.extension), self._ring_timeout(call) + 5,
                                         [ACD_ARG, call.record_id], originator=call.channel_id)
        except AriError:
            await self._attempt_over(attempt, "failed")
        self.notify()

    async def _consult_answered(self, call: AcdCall, attempt: Attempt) -> None:
        now = self.timers.now()
        if call.state is not CallState.CONSULTING or call.bridge_id is None:
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
            return
        self._take_answer(call, attempt, now, "consult")
        call.consult_channel = attempt.channel_id
        attempt.agent.calls_today += 1
        self._set_state(attempt.agent, AgentState.ON_CALL, "", f"consultation on call {call.record_id}")
        with contextlib.suppress(AriNotFound):
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
        self.notify()

    async def _consult_failed(self, call: AcdCall, attempt: Attempt) -> None:
        other = attempt.agent
        call.consult = None
        if other.state is AgentState.RINGING and not other.calls:
            self._settle(other, "consultation not answered")
        if call.agent is not None:
            self.messages[call.agent.user_id] = f"{other.name} did not answer; the customer is back with you."
        await self._back_from_consult(call)

    def _consult_agent_free(self, other: Agent) -> None:
        for held in list(other.calls):
            other.calls.remove(held)
        if other.state in (AgentState.RINGING, AgentState.ON_CALL):
            self._settle(other, "consultation over")

    async def _back_from_consult(self, call: AcdCall) -> None:
        if call.state is not CallState.CONSULTING or call.channel_id is None or call.bridge_id is None:
            return
        call.state, call.state_since = CallState.CONNECTED, self.timers.now()
        with contextlib.suppress(AriNotFound):
            await self.control.stop_moh(call.channel_id)
            await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()

    async def _consult_ended(self, call: AcdCall) -> None:
        """The consulted agent hung up: the customer returns to the first agent."""
        if call.consult_channel:
            self.channels.pop(call.consult_channel, None)
        call.consult_channel = None
        if call.consult is not None:
            self._consult_agent_free(call.consult.agent)
            call.consult = None
        await self._back_from_consult(call)

    async def transfer_cancel(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONSULTING or call.consult is None:
            raise ActionRefused("No transfer is in progress.")
        attempt = call.consult
        if call.consult_channel is None:
            await self._attempt_over(attempt, "cancelled", hang_up=True)
            return
        channel = call.consult_channel
        await self._consult_ended(call)
        await self._let_go_leg(channel)

    async def transfer_complete(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONSULTING or call.consult_channel is None:
            raise ActionRefused("The transfer target has not answered yet.")
        await self.transfer_complete_call(call)

    async def transfer_complete_call(self, call: AcdCall) -> None:
        assert call.consult is not None and call.consult_channel is not None and call.channel_id is not None
        agent, other = call.agent, call.consult.agent
        if call.agent_channel:
            channel = call.agent_channel
            self.channels.pop(channel, None)
            await self._let_go_leg(channel)
        now = self.timers.now()
        call.agent, call.agent_channel = other, call.consult_channel
        self.channels[call.consult_channel] = _Channel("agent", call)
        call.consult = None
        call.consult_channel = None
        call.state, call.state_since = CallState.CONNECTED, now
        self.recorder.call_updated(call.record_id, agent_id=other.user_id)
        self.recorder.destination(call, "U", other.extension, now)
        if agent is not None:
            if call in agent.calls:
                agent.calls.remove(call)
            self._start_wrapup(agent, call)
        with contextlib.suppress(AriNotFound):
            await self.control.stop_moh(call.channel_id)
            assert call.bridge_id is not None
            await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()

    async def callback_call(self, user_id: int, number: str) -> None:
        if number not in self.callbacks:
            raise ActionRefused("That callback is no longer on the list.", 404)
        await self.dial(user_id, number)

    async def callback_remove(self, user_id: int, number: str) -> None:
        if number not in self.callbacks:
            raise ActionRefused("That callback is no longer on the list.", 404)
        self._close_callback(number, "removed", user_id)

    # -- callbacks that kept their place ----------------------------------------------------------------

    # A CALLBACK_WAITING call is offered like any other; when the agent answers, _agent_leg_answered
    # dials the customer (Direction.CALLBACK), and the wait ends when the customer answers.

    # -- figures ----------------------------------------------------------------------------------------

    def _roll_day(self) -> None:
        today = start_of_day(self.timers.now())
        if today != self._day:
            self._day = today
            for runtime in self.queues.values():
                runtime.figures = DayFigures()
            for agent in self.agents.values():
                agent.calls_today = 0

    def queue_figures(self) -> list[dict[str, Any]]:
        self._roll_day()
        now = self.timers.now()
        out = []
        for name, runtime in sorted(self.queues.items()):
            f = runtime.figures
            waiting = [c for c in self.calls.values() if c.queue == name and c.waiting]
            oldest = min((c.entered_at for c in waiting if c.entered_at), default=None)
            left = f.answered + f.abandoned + f.overflowed
            out.append({
                "name": name, "waiting": len(waiting),
                "oldest_since": oldest.isoformat() if oldest else None,
                "longest_wait": round((now - oldest).total_seconds()) if oldest else 0,
                "service_level": round(100.0 * f.answered_in_sl / left, 1) if left else None,
                "service_level_seconds": runtime.spec.service_level,
                "offered": f.offered, "answered": f.answered, "abandoned": f.abandoned,
                "overflowed": f.overflowed,
                "avg_wait": round(f.wait_total / f.answered, 1) if f.answered else None,
                "avg_talk": round(f.talk_total / f.talked, 1) if f.talked else None,
            })
        return out


def _rank(call: AcdCall) -> tuple[int, datetime, int]:
    """Queue order: higher priority first, then who came first."""
    return (-call.priority, call.entered_at or datetime.min.replace(tzinfo=UTC), call.order)


def _caller_id(name: str, number: str) -> str:
    clean = name.replace('"', "'").replace("<", "").replace(">", "")
    return f'"{clean}" <{number}>' if clean else number
