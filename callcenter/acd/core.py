"""What every part of the ACD shares: its state, the Asterisk calls it makes (``AcdControl``), its timers
and the steps one part asks of another.

``AcdService`` (services.py) is one object composed of a class per responsibility (agents.py,
delivery.py, connection.py, transfers.py, overflow.py, figures.py); each of them is an ``AcdCore``:
it sees the state declared here and calls the others through the steps declared at the end of
``AcdCore`` (abstract here, each implemented by the one module named beside it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from callcenter.acd.model import AcdCall, Agent, AgentState, Attempt, CustomerCard
from callcenter.acd.records import AcdRecorder, DayFigures
from callcenter.acd.sessions import AgentSessions, SessionControl
from callcenter.acd.settings import AcdSettings, PauseReason, QueueSpec
from callcenter.bus import Bus, ChannelClaims
from callcenter.errors import ActionRefused
from callcenter.timers import Timers

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


class PromptMedia(Protocol):
    def media(self, name: str, lang: str = "en") -> str: ...


CardLookup = Callable[[str], Awaitable[CustomerCard | None]]


@dataclass
class Channel:
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


class AcdCore(ABC):
    # -- the state every part shares (made by AcdService.__init__) ----------------------------------------

    control: AcdControl
    recorder: AcdRecorder
    bus: Bus
    claims: ChannelClaims
    settings: AcdSettings
    pause_reasons: dict[str, PauseReason]
    wrapup_codes: dict[str, str]
    prompts: PromptMedia
    timers: Timers
    dial_timeout: int
    default_wrapup: int
    extensions: Callable[[], set[str]]
    card_lookup: CardLookup | None
    phone_state: Callable[[str], str] | None
    queues: dict[str, QueueRuntime]
    agents: dict[int, Agent]
    calls: dict[str, AcdCall]  # by record id
    channels: dict[str, Channel]
    callbacks: dict[str, dict[str, Any]]  # open callback-list entries by number
    last_offered: dict[str, int]
    version: int
    messages: dict[int, str]  # a note for an agent's panel (a failed transfer...)
    sessions: AgentSessions
    _timers: dict[tuple[str, str], Callable[[], None]]
    _day: datetime
    _changed: asyncio.Event
    _order: Iterator[int]
    _goodbyes: dict[str, str]  # playback id -> channel to hang up when it ends
    # Agents whose session line dropped: logged out as soon as their call and wrap-up are over.
    _line_lost: dict[int, str]

    # -- set-up ---------------------------------------------------------------------------------------

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

    # -- channels and calls -----------------------------------------------------------------------------

    def _track(self, channel_id: str, role: str, call: AcdCall | None = None, attempt: Attempt | None = None) -> None:
        """The ACD handles this channel from now on (as ``role`` in ``call``): every channel the ACD
        takes comes through here, an agent's kept session line too (``role`` "session", no call: the
        sessions keep it)."""
        self.claims.take(channel_id)  # its keys, playbacks and end come to the ACD (ari/routing.py)
        if call is not None:
            self.channels[channel_id] = Channel(role, call, attempt)

    def _forget(self, call: AcdCall) -> None:
        self._cancel_call_timers(call)
        self.calls.pop(call.record_id, None)
        for channel_id in [cid for cid, entry in self.channels.items() if entry.call is call]:
            self.channels.pop(channel_id, None)
        self.notify()

    # -- agents -------------------------------------------------------------------------------------------

    def agent_by_extension(self, extension: str) -> Agent | None:
        return next((a for a in self.agents.values() if a.extension == extension), None)

    def _agent(self, user_id: int) -> Agent:
        agent = self.agents.get(user_id)
        if agent is None:
            raise ActionRefused("You are not an agent with an extension; ask an admin.", 403)
        return agent

    def _own_call(self, user_id: int) -> tuple[Agent, AcdCall]:
        agent = self._agent(user_id)
        call = agent.current
        if call is None or call.agent is not agent:
            raise ActionRefused("You have no call now.")
        return agent, call

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

    # -- the steps one part asks of another -------------------------------------------------------------

    # agents.py: an agent's states

    @abstractmethod
    def _set_state(self, agent: Agent, state: AgentState, reason: str = "", detail: str = "") -> None: ...

    @abstractmethod
    def _settle(self, agent: Agent, detail: str = "") -> None: ...

    @abstractmethod
    def _start_wrapup(self, agent: Agent, call: AcdCall) -> None: ...

    # delivery.py: queueing and offers

    @abstractmethod
    async def enqueue(self, channel_id: str, queue: str, number: str, name: str = "", did: str = "",
                      priority: int = 0, answered: bool = False, parent: AcdCall | None = None,
                      campaign: str | None = None, card: CustomerCard | None = None,
                      connect_by: datetime | None = None, session_only: bool = False) -> AcdCall | None: ...

    @abstractmethod
    async def _load_card(self, call: AcdCall) -> None: ...

    @abstractmethod
    def _staffed(self, queue: str) -> bool: ...

    @abstractmethod
    async def _park(self, call: AcdCall) -> None: ...

    @abstractmethod
    async def _unpark(self, call: AcdCall) -> None: ...

    @abstractmethod
    def _available(self, agent: Agent) -> bool: ...

    @abstractmethod
    async def dispatch(self) -> None: ...

    @abstractmethod
    def _ring_timeout(self, call: AcdCall) -> int: ...

    @abstractmethod
    async def _ring_timeout_over(self, attempt: Attempt) -> None: ...

    @abstractmethod
    async def _attempt_over(self, attempt: Attempt, outcome: str, hang_up: bool = False) -> None: ...

    # connection.py: bridging and ending calls

    @abstractmethod
    async def _let_go_leg(self, channel_id: str) -> None: ...

    @abstractmethod
    async def _bridge_agent_leg(self, bridge_id: str, channel_id: str) -> None: ...

    @abstractmethod
    async def _connect(self, call: AcdCall, attempt: Attempt) -> None: ...

    @abstractmethod
    def _take_answer(self, call: AcdCall, attempt: Attempt, now: datetime, role: str) -> None: ...

    @abstractmethod
    async def _begin_leg(self, call: AcdCall, agent: Agent, leg_id: str, now: datetime) -> None: ...

    @abstractmethod
    async def _finish_leg(self, call: AcdCall, how: str) -> None: ...

    @abstractmethod
    async def _agent_leg_answered(self, call: AcdCall, attempt: Attempt) -> None: ...

    @abstractmethod
    async def customer_gone(self, channel_id: str) -> None: ...

    @abstractmethod
    async def _end_call(self, call: AcdCall, outcome: str | None = None, agent_left: bool = False) -> None: ...

    # transfers.py: call control

    @abstractmethod
    async def dial(self, user_id: int, number: str, *, campaign: str | None = None, card: CustomerCard | None = None,
                   caller_id: str | None = None, trunk: str | None = None, ticket_id: int | None = None,
                   external_id: str | None = None) -> AcdCall: ...

    @abstractmethod
    async def _consult_failed(self, call: AcdCall, attempt: Attempt) -> None: ...

    @abstractmethod
    def _consult_agent_free(self, other: Agent) -> None: ...

    @abstractmethod
    async def transfer_complete_call(self, call: AcdCall) -> None: ...

    # overflow.py: overflow and callbacks

    @abstractmethod
    async def _max_wait(self, call: AcdCall) -> None: ...

    @abstractmethod
    async def _overflow_unstaffed(self) -> None: ...

    @abstractmethod
    async def _overflow(self, call: AcdCall, why: str) -> None: ...

    @abstractmethod
    async def _move_to_queue(self, call: AcdCall, queue: str, outcome: str) -> None: ...

    @abstractmethod
    async def _to_voicemail(self, call: AcdCall, mailbox: str) -> None: ...

    @abstractmethod
    async def _to_ivr(self, call: AcdCall, flow: str, outcome: str) -> None: ...

    @abstractmethod
    def _add_callback(self, call: AcdCall, reason: str) -> None: ...

    @abstractmethod
    def _close_callback(self, number: str, status: str, user_id: int | None) -> None: ...

    # figures.py: figures

    @abstractmethod
    def _roll_day(self) -> None: ...

    @abstractmethod
    def position(self, call: AcdCall) -> int: ...

    @abstractmethod
    def estimated_wait(self, queue: str, position: int) -> float | None: ...

    @abstractmethod
    def _count_answer(self, call: AcdCall, wait: float) -> None: ...


def queue_rank(call: AcdCall) -> tuple[int, datetime, int]:
    """Queue order: higher priority first, then who came first."""
    return (-call.priority, call.entered_at or datetime.min.replace(tzinfo=UTC), call.order)


def format_caller_id(name: str, number: str) -> str:
    clean = name.replace('"', "'").replace("<", "").replace(">", "")
    return f'"{clean}" <{number}>' if clean else number
