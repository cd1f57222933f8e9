"""The automatic ticket rules (seed 001 items 1-18; docs/tickets.md "Automatic rules"), driven by the calls.

At the end of each agent's leg of a call (``AgentLegEnded``; a transferred call is one leg per agent):
- the tickets the agent made from the call or attached it to go to **pending** (items 2a, 15, 18b, 18e); a
  missed-call ticket among them whose call back the customer answered turns green (item 13); the number's
  other missed-call tickets are **closed**: the conversation took their question over (items 18a, 18d);
- else a call placed from a ticket, or calling back a missed call, goes on that ticket, which becomes
  **pending** (items 8, 18c);
- else an answered inbound call gets its ticket anyway: "Incoming call from N", **open**, assigned to the
  agent (item 2's note), **closed** when the agent passed the call on without a word (item 5); and the
  number's missed-call tickets are closed (the new ticket holds the customer's call now, 18a);
- else an outbound call of the agent's gets "Outgoing call to N", **closed**, assigned to the agent (item 10);
  so does one they dialled from their phone without the panel, seen in its CDR (``direct_call``).
A campaign's call (the dialer's) makes a ticket only when the agent makes or attaches one: its dispositions
record the rest. Any conversation ends the grouping of the number's missed calls (item 12).

When a customer's whole call is over (``CallFinished``):
- an inbound call no agent talked on is a missed call: it joins the number's missed-call ticket that is
  still grouping, else it opens "Missed call from N", **open**, assigned to the last agent it was offered
  to, unassigned when it reached none (items 11, 12, 16);
- a call placed from a ticket (or calling back a missed call) that the customer did not answer is noted on
  that ticket, whose status stays as it was (items 9, 17).

Each rule runs as one writer operation (in the transaction of the call's records where the ACD groups
them, docs/webhooks.md), reading what the agents did in the database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.acd.events import AgentLegEnded
from callcenter.acd.model import Direction
from callcenter.bus import Bus
from callcenter.calls.events import CallFinished, CallSummary, DirectCall
from callcenter.db.models import OrgUnit
from callcenter.db.writer import Operation
from callcenter.tickets.models import CLOSED, INBOUND, MISSED, OPEN, OUTBOUND, PENDING, Ticket, TicketEntry
from callcenter.tickets.store import TicketStore

log = logging.getLogger(__name__)


class Writer(Protocol):
    def add(self, item: Operation) -> None: ...


@dataclass(frozen=True)
class LegFacts:
    """What a rule needs of an agent's leg, copied off the live call (the operation runs later)."""

    call_id: str
    kind: str  # inbound, outbound, campaign
    number: str
    leg_id: str
    user_id: int
    how: str
    started_at: datetime
    ended_at: datetime
    ticket_id: int | None
    callback: bool


def _kind(direction: Direction, campaign: str | None) -> str:
    if direction is Direction.DIALER or campaign:
        return "campaign"
    return "inbound" if direction is Direction.INBOUND else "outbound"


class TicketRules:
    def __init__(self, store: TicketStore, writer: Writer, bus: Bus,
                 queue_unit: Callable[[str], str] = lambda _queue: "", missed_calls_unit: str = "") -> None:
        """``queue_unit``: the organisational unit (name) of a queue; ``missed_calls_unit``: the unit of a
        missed call that reached no queue ([tickets] missed_calls_unit)."""
        self.store = store
        self.writer = writer
        self.queue_unit = queue_unit
        self.missed_calls_unit = missed_calls_unit
        bus.subscribe(AgentLegEnded, self._leg_ended)
        bus.subscribe(CallFinished, self._call_finished)

    def _leg_ended(self, event: AgentLegEnded) -> None:
        call, leg = event.call, event.leg
        ticket_id = call.extra.get("ticket_id")
        facts = LegFacts(call.record_id, _kind(call.direction, call.campaign), call.number, leg.leg_id,
                         leg.agent.user_id, leg.how, leg.started_at, leg.ended_at or leg.started_at,
                         int(ticket_id) if ticket_id is not None else None,
                         call.source == "callback")
        self.writer.add(lambda session: self.leg_ended(session, facts))

    def _call_finished(self, event: CallFinished) -> None:
        summary = event.summary
        if summary.direction == "inbound" and summary.is_lost:
            self.writer.add(lambda session: self.missed_call(session, summary))
        elif summary.direction == "outbound" and summary.is_lost and (summary.ticket_id or summary.callback):
            self.writer.add(lambda session: self.call_back_unanswered(session, summary))

    # -- the rules, each inside the writer's transaction ------------------------------------------------

    def leg_ended(self, session: Session, leg: LegFacts) -> None:
        store, at = self.store, leg.ended_at
        number = store.number(leg.number)
        entries = list(session.scalars(select(TicketEntry).where(
            TicketEntry.call_id == leg.call_id, TicketEntry.author_id == leg.user_id, TicketEntry.kind == "call")))
        if entries:
            chosen = self._agent_chose(session, leg, entries)
            self.store.close_missed(session, number, at, keep={t.id for t in chosen})
        elif leg.kind != "campaign":
            context = self._context(session, leg.ticket_id, leg.callback, number)
            if context is not None and leg.kind == "outbound":
                store.add_entry(session, context, "call", at, author_id=leg.user_id, call_id=leg.call_id,
                                leg_id=leg.leg_id)
                if context.origin == MISSED:
                    context.answered_back = True
                store.set_status(session, context, PENDING, at)
            elif leg.kind == "inbound":
                status = CLOSED if leg.how == "transferred" else OPEN
                ticket = store.new_ticket(session, subject=f"Incoming call from {number or 'an unknown number'}",
                                          origin=INBOUND, number=number, at=leg.started_at, status=status,
                                          assignee_id=leg.user_id)
                store.add_entry(session, ticket, "call", at, call_id=leg.call_id, leg_id=leg.leg_id)
                self.store.close_missed(session, number, at, keep=set())
            else:
                ticket = store.new_ticket(session, subject=f"Outgoing call to {number}", origin=OUTBOUND,
                                          number=number, at=leg.started_at, status=CLOSED, assignee_id=leg.user_id)
                store.add_entry(session, ticket, "call", at, call_id=leg.call_id, leg_id=leg.leg_id)
        self._end_grouping(session, number)

    def _agent_chose(self, session: Session, leg: LegFacts, entries: list[TicketEntry]) -> list[Ticket]:
        """The tickets the agent made from the call or attached it to: pending now that they talked."""
        tickets: list[Ticket] = []
        for entry in entries:
            entry.in_progress = False
            entry.leg_id = entry.leg_id or leg.leg_id
            ticket = session.get(Ticket, entry.ticket_id)
            if ticket is None or ticket in tickets:
                continue
            tickets.append(ticket)
            if ticket.origin == MISSED and leg.kind != "inbound":
                ticket.answered_back = True
            self.store.set_status(session, ticket, PENDING, leg.ended_at)
        return tickets

    def _context(self, session: Session, ticket_id: int | None, callback: bool, number: str) -> Ticket | None:
        """The ticket a call to the customer was placed for: the ticket it was placed from, else for a call
        back the number's open missed-call ticket."""
        if ticket_id is not None:
            return session.get(Ticket, ticket_id)
        if callback and number:
            return self._open_missed(session, number)
        return None

    def _open_missed(self, session: Session, number: str, grouping: bool = False) -> Ticket | None:
        query = select(Ticket).where(Ticket.number == number, Ticket.origin == MISSED, Ticket.status != CLOSED)
        if grouping:
            query = query.where(Ticket.grouping.is_(True))
        return session.scalar(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(1))

    def _end_grouping(self, session: Session, number: str) -> None:
        if number:
            session.execute(update(Ticket).where(Ticket.number == number, Ticket.origin == MISSED,
                                                 Ticket.grouping.is_(True)).values(grouping=False))

    def missed_call(self, session: Session, call: CallSummary) -> None:
        store, at = self.store, call.ended_at
        number = store.number(call.number)
        where = f"in {', '.join(call.queues)}" if call.queues else (f"in IVR {call.flow}" if call.flow else "")
        body = f"Missed call: waited {call.wait_seconds:g} s{(' ' + where) if where else ''}"
        ticket = self._open_missed(session, number, grouping=True) if number else None
        if ticket is None:
            unit = next((self.queue_unit(q) for q in reversed(call.queues) if self.queue_unit(q)),
                        self.missed_calls_unit)
            unit_id = session.scalar(select(OrgUnit.id).where(OrgUnit.name == unit)) if unit else None
            ticket = store.new_ticket(session, subject=f"Missed call from {number or 'an unknown number'}",
                                      origin=MISSED, number=number, at=call.started_at, status=OPEN,
                                      assignee_id=call.last_offered, grouping=bool(number), org_unit_id=unit_id)
        else:
            ticket.missed_calls += 1
            if ticket.assignee_id is None and call.last_offered is not None:
                store.set_assignee(session, ticket, call.last_offered, at)
        store.add_entry(session, ticket, "missed", at, call_id=call.record_ids[-1] if call.record_ids else None,
                        body=body)

    def direct_call(self, session: Session, call: DirectCall) -> None:
        """A call the agent dialled from their phone, seen in its CDR (the ledger's hook, in its transaction):
        answered, it gets "Outgoing call to N", closed, assigned to them (item 10); it ends the grouping."""
        if not call.answered:
            return
        number = self.store.number(call.number)
        ticket = self.store.new_ticket(session, subject=f"Outgoing call to {number}", origin=OUTBOUND, number=number,
                                       at=call.started_at, status=CLOSED, assignee_id=call.user_id)
        self.store.add_entry(session, ticket, "call", call.ended_at, author_id=call.user_id,
                             body=f"Dialled from the phone; talked {call.talk_seconds} s")
        self._end_grouping(session, number)

    def call_back_unanswered(self, session: Session, call: CallSummary) -> None:
        number = self.store.number(call.number)
        ticket = self._context(session, call.ticket_id, call.callback, number)
        if ticket is None:
            return
        self.store.add_entry(session, ticket, "attempt", call.ended_at,
                             author_id=call.offered[0] if call.offered else None,
                             call_id=call.record_ids[-1] if call.record_ids else None,
                             body=f"Call to {number} not answered ({call.outcome.replace('_', ' ')})")
