"""What the calls feature tells the rest of the controller: a customer's call is over, as a whole.

The ACD publishes each of its records and agent legs; a customer's call may be several records (moved
between queues, through an IVR, transferred) or none (hung up in the IVR). ``CallFinished`` is the one
event for the whole call, with the figures integrations and tickets need (journeys.py builds it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class CallLeg:
    """One agent's part of the call (acd.model.AgentLeg, ended)."""

    leg_id: str
    user_id: int
    extension: str
    agent_name: str
    started_at: datetime
    ended_at: datetime
    how: str  # hangup, transferred

    @property
    def seconds(self) -> float:
        return round((self.ended_at - self.started_at).total_seconds(), 2)


@dataclass(frozen=True)
class CallSummary:
    """A customer's whole call. ``session_id``: for a call from the trunk, its channel's id; for a call the
    ACD placed, its first record's id. ``source``: did, click_to_call, callback, dialer."""

    session_id: str
    direction: str  # inbound, outbound
    source: str
    number: str  # the customer's
    did: str  # the number the customer called (inbound)
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    legs: tuple[CallLeg, ...]
    offered: tuple[int, ...]  # agents it was offered to, in order (repeats kept); an outbound call: its agent
    record_ids: tuple[str, ...]  # the ACD's records of the call, in order
    queues: tuple[str, ...]
    flow: str  # the IVR flow the DID led to, if any
    outcome: str  # answered, missed (offered, nobody took it), abandoned (before any offer), or the
    # outbound call's end (no_answer, busy, failed...)
    campaign: str | None = None
    # A call placed from a ticket (its call button), and whether it calls back a missed call (the
    # callback list, a callback the caller asked for).
    ticket_id: int | None = None
    callback: bool = False
    # An integration's own id of a call it placed (the API's click-to-call ``external_id``).
    external_id: str | None = None

    @property
    def is_lost(self) -> bool:
        return not self.legs

    @property
    def last_offered(self) -> int | None:
        return self.offered[-1] if self.offered else None

    @property
    def wait_seconds(self) -> float:
        until = self.answered_at or self.ended_at
        return round(max(0.0, (until - self.started_at).total_seconds()), 2)

    @property
    def talk_seconds(self) -> float:
        return round(sum(leg.seconds for leg in self.legs), 2)

    @property
    def total_seconds(self) -> float:
        return round(max(0.0, (self.ended_at - self.started_at).total_seconds()), 2)


@dataclass(frozen=True)
class DirectCall:
    """A call a user dialled from their own phone out through the trunk, without the controller (the
    dialplan connects it), as its CDR tells once it is over: what the ACD never sees (seed 001 item 10)."""

    linkedid: str
    user_id: int
    extension: str
    number: str
    started_at: datetime
    ended_at: datetime
    answered: bool
    talk_seconds: int


# Called inside the ledger's transaction, with the CDR: what a hook writes lands with it or not at all.
DirectCallHook = Callable[[Session, DirectCall], None]


@dataclass(frozen=True)
class CallFinished:
    """A customer's call is over (every record of it written). Published inside the records writer's
    ``together()``: what subscribers write (tickets, the webhooks' outbox) lands in one transaction."""

    summary: CallSummary
