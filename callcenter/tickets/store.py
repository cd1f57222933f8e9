"""The changes every part of the tickets feature makes the same way: a new ticket, a timeline entry, a
status or assignee change. Each runs inside the caller's session (the rules' writer operation, a page's
transaction), and what it reports to integrations (``ticket.created``, ``ticket.status_changed``) goes to
``announce`` in that same transaction: the webhooks' outbox, wired by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.customers.models import Customer, CustomerPhone
from callcenter.customers.services import normalise_phones
from callcenter.db.models import User
from callcenter.tickets.models import CLOSED, MISSED, OPEN, STATUSES, Ticket, TicketEntry


class Announce(Protocol):
    """Writes what a ticket change reports, in the session of the change (the webhooks' ``announce``: it
    calls ``build`` for the payload only when someone takes the event)."""

    def __call__(self, session: Session, event: str, build: Callable[[], Mapping[str, Any]], *,
                 at: datetime) -> object: ...


def no_one(session: Session, event: str, build: Callable[[], Mapping[str, Any]], *, at: datetime) -> None:
    """Tells nobody (no webhooks wired: tests, tools)."""


@dataclass
class TicketStore:
    region: str
    announce: Announce = no_one

    def number(self, typed: str) -> str:
        """The number as tickets keep it: E.164 when it reads as a number of the region, else as given (an
        extension, a withheld number)."""
        try:
            numbers = normalise_phones([typed], self.region)
        except ValueError:
            return typed.strip()[:32]
        return numbers[0] if numbers else typed.strip()[:32]

    def customer_of(self, session: Session, number: str) -> int | None:
        if not number:
            return None
        return session.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.number == number))

    def new_ticket(self, session: Session, *, subject: str, origin: str, number: str, at: datetime,
                   status: str = OPEN, assignee_id: int | None = None, created_by: int | None = None,
                   customer_id: int | None = None, grouping: bool = False,
                   org_unit_id: int | None = None) -> Ticket:
        """A ticket in the unit of its assignee (else of its maker, else ``org_unit_id``)."""
        customer_id = customer_id if customer_id is not None else self.customer_of(session, number)
        ticket = Ticket(subject=subject[:200], status=status, origin=origin, number=number, customer_id=customer_id,
                        assignee_id=assignee_id,
                        org_unit_id=_unit_of(session, assignee_id or created_by) or org_unit_id,
                        created_by=created_by, created_at=at, updated_at=at,
                        closed_at=at if status == CLOSED else None, grouping=grouping,
                        missed_calls=1 if origin == MISSED else 0, answered_back=False, reopened=0)
        session.add(ticket)
        session.flush()
        self.announce(session, "ticket.created", lambda: ticket_payload(session, ticket), at=at)
        return ticket

    def add_entry(self, session: Session, ticket: Ticket, kind: str, at: datetime, **values: Any) -> TicketEntry:
        entry = TicketEntry(ticket_id=ticket.id, at=at, kind=kind, author_id=values.pop("author_id", None),
                            body=values.pop("body", ""), call_id=values.pop("call_id", None),
                            leg_id=values.pop("leg_id", None), in_progress=values.pop("in_progress", False),
                            old=values.pop("old", ""), new=values.pop("new", ""))
        if values:
            raise TypeError(f"unknown entry values: {sorted(values)}")
        session.add(entry)
        ticket.updated_at = max(ticket.updated_at, at) if ticket.updated_at else at
        return entry

    def set_status(self, session: Session, ticket: Ticket, status: str, at: datetime,
                   by: int | None = None) -> bool:
        """Changes the status (and says so on the timeline and to integrations); False when it already was."""
        if status not in STATUSES:
            raise ValueError(f"status is one of {', '.join(STATUSES)}")
        old = ticket.status
        if old == status:
            return False
        ticket.status = status
        if status == CLOSED:
            ticket.closed_at = at
            ticket.grouping = False
        elif old == CLOSED:
            ticket.closed_at = None
            ticket.reopened += 1
        self.add_entry(session, ticket, "status", at, author_id=by, old=old, new=status)
        session.flush()
        self.announce(session, "ticket.status_changed",
                      lambda: {**ticket_payload(session, ticket), "previous_status": old}, at=at)
        return True

    def close_missed(self, session: Session, number: str, at: datetime, keep: set[int]) -> None:
        """Closes the number's open missed-call tickets but ``keep``: a conversation took their question over
        (seed items 18a, 18d), whether the rules see it at the end of a leg or the agent acts after it."""
        if not number:
            return
        for missed in session.scalars(select(Ticket).where(Ticket.number == number, Ticket.origin == MISSED,
                                                           Ticket.status != CLOSED)):
            if missed.id not in keep:
                self.set_status(session, missed, CLOSED, at)

    def set_assignee(self, session: Session, ticket: Ticket, user_id: int | None, at: datetime,
                     by: int | None = None) -> None:
        if ticket.assignee_id == user_id:
            return
        old, ticket.assignee_id = ticket.assignee_id, user_id
        if ticket.org_unit_id is None and user_id is not None:
            ticket.org_unit_id = _unit_of(session, user_id)
        self.add_entry(session, ticket, "assignee", at, author_id=by, old=_user_name(session, old),
                       new=_user_name(session, user_id))


def _unit_of(session: Session, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.org_unit_id if user is not None else None


def _user_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id is not None else None
    return (user.name or user.login)[:200] if user is not None else ""


def ticket_payload(session: Session, ticket: Ticket) -> dict[str, Any]:
    """What integrations are told about a ticket (webhooks' ticket.* events, the REST API)."""
    assignee = session.get(User, ticket.assignee_id) if ticket.assignee_id is not None else None
    customer = session.get(Customer, ticket.customer_id) if ticket.customer_id is not None else None
    return {
        "ticket": {
            "id": ticket.id, "subject": ticket.subject, "status": ticket.status, "origin": ticket.origin,
            "number": ticket.number, "missed_calls": ticket.missed_calls, "answered_back": ticket.answered_back,
            "created_at": ticket.created_at.isoformat(), "updated_at": ticket.updated_at.isoformat(),
            "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        },
        "contact_info": {"contact_phone_number": ticket.number, "contact_id": ticket.customer_id,
                         "contact_full_name": customer.name if customer is not None else None},
        "employee_info": {"employee_id": ticket.assignee_id,
                          "employee_full_name": (assignee.name or assignee.login) if assignee else None},
    }
