"""The ACD's state: agents, queues and the calls they hold, as explicit state machines.

Plain data; ``services.py`` moves it through its transitions and ``records.py`` persists them.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


# Which agent transitions are allowed; anything else is a bug or a refused panel action.
AGENT_TRANSITIONS: dict[AgentState, set[AgentState]] = {
    AgentState.LOGGED_OUT: {AgentState.READY, AgentState.PAUSED, AgentState.ON_CALL},
    AgentState.READY: {AgentState.RINGING, AgentState.PAUSED, AgentState.LOGGED_OUT, AgentState.ON_CALL},
    AgentState.RINGING: {AgentState.ON_CALL, AgentState.READY, AgentState.PAUSED, AgentState.LOGGED_OUT},
    AgentState.ON_CALL: {AgentState.WRAP_UP, AgentState.READY, AgentState.PAUSED, AgentState.LOGGED_OUT},
    AgentState.WRAP_UP: {AgentState.READY, AgentState.PAUSED, AgentState.LOGGED_OUT, AgentState.ON_CALL,
                         AgentState.RINGING},
    AgentState.PAUSED: {AgentState.READY, AgentState.LOGGED_OUT, AgentState.ON_CALL, AgentState.PAUSED},
}


@dataclass
class Agent:
    user_id: int
    extension: str
    name: str
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: datetime | None = None
    capacity: int = 1
    # Queue name -> skill level (1-100).
    skills: dict[str, int] = field(default_factory=dict)
    # When the agent last became free: longest-idle picks the smallest.
    idle_since: datetime | None = None
    calls_today: int = 0
    missed_in_row: int = 0
    # A pause asked for during a call starts when the call and its wrap-up end.
    pending_pause: str | None = None
    # A pause reason that needs a supervisor's approval, asked for and not yet decided.
    awaiting_approval: str | None = None
    awaiting_since: datetime | None = None
    wrapup_deadline: datetime | None = None
    # What the agent returns to after an outbound call they made while paused.
    resume_pause: str | None = None
    # The interactions the agent holds now (offered or connected); capacity bounds them.
    calls: list[AcdCall] = field(default_factory=list)
    last_call: AcdCall | None = None

    @property
    def logged_in(self) -> bool:
        return self.state is not AgentState.LOGGED_OUT

    @property
    def free(self) -> bool:
        return self.state is AgentState.READY and len(self.calls) < self.capacity

    @property
    def current(self) -> AcdCall | None:
        return self.calls[0] if self.calls else None


class CallState(enum.StrEnum):
    WAITING = "waiting"            # in the holding bridge, hearing music
    RINGING = "ringing"            # offered: one or more agent phones ring
    CALLBACK_WAITING = "callback"  # the caller hung up after asking for a callback; keeps the place
    DIALING = "dialing"            # the agent answered; the customer is being called (outbound, callback)
    CONNECTED = "connected"
    HELD = "held"
    CONSULTING = "consulting"      # the customer is held while the agent talks to a transfer target
    ENDED = "ended"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    CALLBACK = "callback"
    DIALER = "dialer"  # placed by the outbound dialer; answered, it waits for an agent like an inbound call


@dataclass
class Attempt:
    """One offer to an agent's phone."""

    seq: int
    agent: Agent
    channel_id: str
    started_at: datetime
    purpose: str = "offer"  # offer, consult
    answered: bool = False
    outcome: str = ""


@dataclass
class AgentLeg:
    """One agent's part of a call: from when they talk with the customer (their answer, the customer's
    answer of their outbound call, an attended transfer handed to them) until they leave it (``how``:
    ``hangup`` or ``transferred``). A transferred call has one leg per agent who talked."""

    leg_id: str  # <call record id>-<offer number>
    agent: Agent
    started_at: datetime
    ended_at: datetime | None = None
    how: str = ""


@dataclass
class CustomerCard:
    name: str
    note: str
    history: list[dict[str, Any]]
    # A dialer contact's list columns, shown to the agent as they are; a customer's custom fields marked
    # "on the card" (label -> value).
    fields: dict[str, str] = field(default_factory=dict)
    # The customer's row (None: the number is not in the customer database) and its profile for the pane
    # the agent page opens on answer: numbers, e-mail, company, every non-empty custom field.
    customer_id: int | None = None
    email: str = ""
    company: str = ""
    phones: list[str] = field(default_factory=list)
    profile: dict[str, str] = field(default_factory=dict)
    # The customer's open tickets: {id, subject, status, updated_at} (filled by the tickets feature).
    tickets: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AcdCall:
    """A customer's interaction while the ACD owns it. A move to another queue starts a new record
    (``record_id``) so that each queue counts its own calls; ``parent_id`` links them."""

    channel_id: str | None
    direction: Direction
    queue: str | None
    number: str
    name: str = ""
    did: str = ""
    priority: int = 0
    entered_at: datetime | None = None
    state: CallState = CallState.WAITING
    # Arrival order, for callers who entered in the same instant.
    order: int = 0
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    parent_id: str | None = None
    # Ring attempts now in progress, by the agent channel's id.
    ringing: dict[str, Attempt] = field(default_factory=dict)
    attempt_seq: int = 0
    destination_seq: int = 0
    # Agents who did not take this call: tried again only when every other agent was.
    tried: set[int] = field(default_factory=set)
    agent: Agent | None = None
    agent_channel: str | None = None
    bridge_id: str | None = None
    answered_at: datetime | None = None
    state_since: datetime | None = None
    # A transfer to one agent: only that agent is offered the call.
    target_agent: Agent | None = None
    # Attended transfer in progress: the attempt to the target, then the target's channel.
    consult: Attempt | None = None
    consult_channel: str | None = None
    card: CustomerCard | None = None
    # The customer is in the queue's holding bridge (or hears music alone).
    parked: bool = False
    playback_id: str | None = None
    wrapup_code: str = ""
    note: str = ""
    # Callers in the queue (this one included) and agents logged in to it when this call entered.
    queue_callers: int | None = None
    queue_agents: int | None = None
    # The dialer campaign that placed this call (its recording policy applies too), the caller ID and
    # trunk its customer leg uses, and how the call ended (for the dialer's retry rules).
    campaign: str | None = None
    dial_caller_id: str | None = None
    trunk: str | None = None
    outcome: str = ""
    # A dialer's person must be talking to an agent by then (else the dialer withdraws the call), and
    # whether only agents with a kept line may take them (the campaign's session mode).
    connect_by: datetime | None = None
    session_only: bool = False
    # What the dialer keeps with the call: the contact, a callback the agent asked for at wrap-up.
    extra: dict[str, Any] = field(default_factory=dict)
    # Set while the customer and the agent are being put in the call's bridge: the call already counts as
    # connected, but hold and transfer must wait for the bridge to hold both (else ARI answers 422).
    linking: asyncio.Event | None = None
    # The customer's whole call: their channel's id for a caller (through an IVR and back, moved between
    # queues), else the first record's id; the agent talking now and every agent leg so far.
    session_id: str = ""
    leg: AgentLeg | None = None
    legs: list[AgentLeg] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session_id = self.session_id or self.record_id

    @property
    def answered_like_inbound(self) -> bool:
        """The customer was there first and waits for an agent's phone to answer (queue or dialer)."""
        return self.direction in (Direction.INBOUND, Direction.DIALER)

    @property
    def source(self) -> str:
        """How the call came about, as integrations are told (``call_source``): a caller on a DID, the dialer,
        a call back of a missed call (the callback list, a callback the caller asked for), an agent's call."""
        if self.direction is Direction.DIALER or self.campaign:
            return "dialer"
        if self.direction is Direction.CALLBACK or self.extra.get("callback"):
            return "callback"
        return "did" if self.direction is Direction.INBOUND else "click_to_call"

    @property
    def waiting(self) -> bool:
        return self.state in (CallState.WAITING, CallState.RINGING, CallState.CALLBACK_WAITING)

    def next_attempt_seq(self) -> int:
        self.attempt_seq += 1
        return self.attempt_seq

    def next_destination_seq(self) -> int:
        self.destination_seq += 1
        return self.destination_seq
