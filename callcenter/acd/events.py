"""What the ACD tells the rest of the controller (domain events on the bus) and what it does for other
features when asked (requests). Subscribers import these types, never the ACD's services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcenter.acd.model import AcdCall, Agent, AgentLeg, AgentState

# -- requests the ACD serves ------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterQueue:
    """Put a caller in a queue (a DID routed to a queue, an IVR's queue node). Answer: True when queued,
    False when there is no such queue."""

    channel_id: str
    queue: str
    caller: str
    caller_name: str = ""
    did: str = ""
    answered: bool = True
    priority: int = 0


@dataclass(frozen=True)
class ToggleAgentLogin:
    """An agent dialled the login feature code. Answer: the prompt to play, None when no agent has this
    extension."""

    extension: str


@dataclass(frozen=True)
class PlaceCall:
    """An agent's click-to-call from another feature's page (a ticket's call button). The agent's phone rings
    first, then the number is dialled (as the agent page's click-to-call). Answer: the ACD call's record id;
    ``errors.ActionRefused`` when the agent cannot call now. ``ticket_id``: the ticket the call is made from
    (the tickets feature puts the call on it)."""

    user_id: int
    number: str
    ticket_id: int | None = None


# -- domain events the ACD publishes ------------------------------------------------------------------
#
# A call event carries the ACD's live ``AcdCall`` (read it while handling the event; do not change it).
# ``campaign`` names the campaign whose dialer counts the event: set for a person the dialer handed over
# and for a call the ACD dialled for a campaign (a preview), None for queue calls.


@dataclass(frozen=True)
class CallQueued:
    """A caller waits in a queue (a DID, an IVR, a transfer or an overflow put them there, or the dialer)."""

    call: AcdCall


@dataclass(frozen=True)
class CallOffered:
    """A waiting call is offered to an agent: their phone rings, or their kept session line takes it."""

    call: AcdCall
    agent: Agent
    channel_id: str  # the agent's side


@dataclass(frozen=True)
class CallConnected:
    """An agent took the call and the ACD put both parties in the call's bridge. ``bridged`` is False when
    a party hung up while being bridged (its own hang-up ends the call next). Published before a hold or a
    transfer the agent clicked meanwhile goes ahead (recording starts here)."""

    call: AcdCall
    bridged: bool
    campaign: str | None = None


@dataclass(frozen=True)
class AgentLegStarted:
    """An agent started talking with the customer (``leg``, also ``call.leg``): they answered an offer, the
    customer answered their outbound call, or an attended transfer handed the customer to them."""

    call: AcdCall
    leg: AgentLeg


@dataclass(frozen=True)
class AgentLegEnded:
    """An agent left the call (``leg.how``: ``hangup`` when the call ended, ``transferred`` when they passed
    the customer on). Published before the call's ``CallEnded`` when the call ends with the leg."""

    call: AcdCall
    leg: AgentLeg


@dataclass(frozen=True)
class OutboundCallStarted:
    """An agent's outbound call started (click-to-call, a callback, a preview): their phone rings first."""

    call: AcdCall
    agent: Agent


@dataclass(frozen=True)
class OutboundLegDialled:
    """The agent took their phone: the customer's number of the outbound call is being dialled."""

    call: AcdCall
    agent: Agent
    leg_id: str


@dataclass(frozen=True)
class CallEnding:
    """A call that reached an agent (or was dialled for one) is ending: published before its channels are
    hung up and its bridge destroyed (recording stops here)."""

    call: AcdCall


@dataclass(frozen=True)
class CallEnded:
    """A call record is over: written, and its agent, if any, is wrapping up. Also published for a caller who
    hung up while waiting (``outcome`` abandoned), a caller the dialer took back (abandoned), and a record
    closed because the caller moved on: to another queue (``transferred``, ``overflow``; a new record
    follows, with the same ``call.session_id``), an IVR flow, voicemail or the callback list."""

    call: AcdCall
    outcome: str
    campaign: str | None = None
    # The caller goes on under a new record of the same session (moved to another queue).
    continues: bool = False


@dataclass(frozen=True)
class CallWrappedUp:
    """The agent gave the call a wrap-up code (and note)."""

    call: AcdCall
    code: str
    campaign: str | None = None


@dataclass(frozen=True)
class AgentStateChanged:
    """An agent's state (or pause reason) changed. Published from a task of its own, in order, after the
    step that changed it (the ACD changes state synchronously)."""

    agent: Agent
    previous: AgentState
    state: AgentState
    reason: str
    detail: str
    at: datetime


class CampaignCallEvent(Protocol):
    @property
    def call(self) -> AcdCall: ...
    @property
    def campaign(self) -> str | None: ...


def campaign_calls(
        handler: Callable[[AcdCall], Awaitable[None]]) -> Callable[[CampaignCallEvent], Awaitable[None] | None]:
    """A subscriber that hands ``handler`` the call of the events a campaign counts (the dialer's)."""
    def deliver(event: CampaignCallEvent) -> Awaitable[None] | None:
        return handler(event.call) if event.campaign else None
    return deliver
