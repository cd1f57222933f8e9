"""What the ACD tells the rest of the controller (domain events on the bus) and what it does for other
features when asked (requests). Subscribers import these types, never the ACD's services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcenter.acd.model import AcdCall, Agent, AgentState

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
class CallEnding:
    """A call that reached an agent (or was dialled for one) is ending: published before its channels are
    hung up and its bridge destroyed (recording stops here)."""

    call: AcdCall


@dataclass(frozen=True)
class CallEnded:
    """A call is over: its record is written and its agent, if any, is wrapping up. Also published for a
    caller who hung up while waiting (``outcome`` abandoned)."""

    call: AcdCall
    outcome: str
    campaign: str | None = None


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
