"""What people do with tickets (CRM-2, docs/tickets.md), each inside the caller's session and through the
``TicketStore`` (so integrations hear of every change): make a ticket from the call they are on or just
finished (``create_from_call``), attach that call to one of the customer's earlier tickets (``attach_call``),
reply, write an internal note, change the status, the assignee or the subject; and an integration's ticket
(``create_ticket``, the REST API).

Scope (``ticket_scope``): a user sees a ticket when its unit is in their scope: an agent the unit they are
in, an admin or supervisor the units they manage, a top manager every ticket, those of no unit included.
It fails closed: an agent of no unit, or a manager with no unit and no grant, sees nothing (403 saying
why). A ticket outside the scope is "not found" (404), never "forbidden"."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, or_, select
from sqlalchemy.orm import Session

from callcenter.customers.fields import CustomerError
from callcenter.customers.models import Customer
from callcenter.customers.services import CustomerInput, create_customer
from callcenter.db.models import AcdAttempt, OrgUnit, User
from callcenter.db.models import AcdCall as AcdCallRow
from callcenter.errors import ActionRefused, CallcenterError
from callcenter.tickets.models import (
    INBOUND,
    INTEGRATION,
    MISSED,
    OPEN,
    OUTBOUND,
    PENDING,
    STATUSES,
    Ticket,
    TicketEntry,
)
from callcenter.tickets.store import TicketStore
from callcenter.users.units import NO_SCOPE, Scope, UnitRef, is_manager, supervisor_scope

SUBJECT_MAX = 200
BODY_MAX = 10_000
NOT_FOUND = "No such ticket (or not in your units)"
NO_CALL = "No such call of yours: open this page from a call you took or placed"
NO_AGENT_UNIT = ("You are in no organisational unit, so there are no tickets to show; an admin can put you in "
                 "one (Users page)")
NOT_FOR_YOU = "Tickets are for agents, supervisors and admins"
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The entries an automatic ticket may hold besides its call and still be replaced by an attached ticket.
_BOOKKEEPING = ("status", "assignee")


class TicketError(CallcenterError, ValueError):
    """A ticket request refused: ``field`` names the form or JSON field, ``message`` says why."""

    error_id = "invalid-ticket"
    http_status = 400

    def __init__(self, field: str, message: str, http_status: int = 400) -> None:
        self.field = field
        self.message = message
        self.http_status = http_status
        super().__init__(f"{field}: {message}")


# --- scope -------------------------------------------------------------------------------------------

def ticket_scope(session: Session, user_id: int) -> Scope:
    """The tickets a user may see and change (the same rule as customers/services.py ``customer_scope``):
    ActionRefused (403) for anyone else and for an empty scope."""
    user = session.get(User, user_id)
    if user is None or user.disabled or not ("agent" in user.role_list or is_manager(user)):
        raise ActionRefused(NOT_FOR_YOU, 403)
    if is_manager(user):
        scope = supervisor_scope(session, user)
        if scope is None or scope.empty:
            raise ActionRefused(NO_SCOPE, 403)
        return scope
    unit = session.get(OrgUnit, user.org_unit_id) if user.org_unit_id is not None else None
    if unit is None:
        raise ActionRefused(NO_AGENT_UNIT, 403)
    return Scope(user.login, top=False, units=(UnitRef(unit.id, unit.name),))


def in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    return [] if scope.top else [Ticket.org_unit_id.in_(sorted(scope.unit_ids))]


def ticket_in_scope(session: Session, scope: Scope, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not scope.covers(ticket.org_unit_id):
        raise TicketError("id", NOT_FOUND, 404)
    return ticket


# --- input -------------------------------------------------------------------------------------------

def check_subject(typed: str, field: str = "subject") -> str:
    subject = typed.strip()
    if not subject:
        raise TicketError(field, "Subject is required")
    if len(subject) > SUBJECT_MAX:
        raise TicketError(field, f"Subject: at most {SUBJECT_MAX} characters")
    if _LINE_CONTROL.search(subject):
        raise TicketError(field, "Subject: control characters are not allowed")
    return subject


def check_body(typed: str, field: str, label: str, required: bool = True) -> str:
    body = typed.strip()
    if required and not body:
        raise TicketError(field, f"{label} is required")
    if len(body) > BODY_MAX:
        raise TicketError(field, f"{label}: at most {BODY_MAX} characters")
    if _CONTROL.search(body):
        raise TicketError(field, f"{label}: control characters are not allowed")
    return body


def check_status(typed: str, field: str = "status") -> str:
    if typed not in STATUSES:
        raise TicketError(field, f"Status is one of {', '.join(STATUSES)}")
    return typed


def origin_of(direction: str) -> str:
    """A ticket's origin from its call's direction: the customer's call is inbound, every call to the
    customer (click-to-call, callback, dialer) outbound."""
    return INBOUND if direction == "inbound" else OUTBOUND


# --- the call an agent is on ---------------------------------------------------------------------------

def own_call(session: Session, user_id: int, call_id: str) -> AcdCallRow:
    """The ACD call record the user took part in (its agent, or an agent who answered an offer of it before
    a transfer); TicketError 404 otherwise."""
    row = session.get(AcdCallRow, call_id[:32]) if call_id else None
    if row is None:
        raise TicketError("call", NO_CALL, 404)
    if row.agent_id != user_id and not session.scalar(select(exists().where(
            AcdAttempt.call_id == row.id, AcdAttempt.user_id == user_id, AcdAttempt.outcome == "answered"))):
        raise TicketError("call", NO_CALL, 404)
    return row


def call_entry_of(session: Session, user_id: int, call_id: str) -> TicketEntry | None:
    """The call entry the user already put on a ticket for this call, if any."""
    return session.scalar(select(TicketEntry).where(TicketEntry.kind == "call", TicketEntry.call_id == call_id,
                                                    TicketEntry.author_id == user_id).limit(1))


def automatic_ticket(session: Session, user_id: int, call_id: str) -> Ticket | None:
    """The ticket the rules made at the end of this agent's leg of the call (no maker, the agent assigned, a
    call entry of this call written by no one), when it holds nothing but that call and bookkeeping."""
    found = session.scalars(select(Ticket).where(
        Ticket.created_by.is_(None), Ticket.assignee_id == user_id, Ticket.origin.in_((INBOUND, OUTBOUND)),
        exists().where(TicketEntry.ticket_id == Ticket.id, TicketEntry.kind == "call",
                       TicketEntry.call_id == call_id, TicketEntry.author_id.is_(None))).order_by(Ticket.id))
    for ticket in found:
        others = session.scalar(select(exists().where(
            TicketEntry.ticket_id == ticket.id, TicketEntry.kind.not_in(_BOOKKEEPING),
            or_(TicketEntry.kind != "call", TicketEntry.call_id != call_id))))
        if not others:
            return ticket
    return None


def _leg_entry(session: Session, ticket: Ticket, call_id: str) -> TicketEntry:
    entry = session.scalar(select(TicketEntry).where(TicketEntry.ticket_id == ticket.id, TicketEntry.kind == "call",
                                                     TicketEntry.call_id == call_id, TicketEntry.author_id.is_(None)))
    assert entry is not None  # automatic_ticket found it
    return entry


def _auto_customer(session: Session, store: TicketStore, user_id: int, number: str, at: datetime) -> int | None:
    """A customer made from the number (its name is the number) in the agent's unit, the agent to complete it
    from its profile; None when the number is not a phone number (an extension, a withheld number)."""
    try:
        return create_customer(session, user_id, CustomerInput(number, [number]), store.region, now=at,
                               all_given=False)
    except CustomerError:
        return None


def create_from_call(session: Session, store: TicketStore, user_id: int, call_id: str, subject: str,
                     summary: str, at: datetime) -> int:
    """A ticket from the call the agent is on (or has just finished): origin from the call's direction, the
    agent its maker and assignee, status open (the rules set pending when the agent's leg ends), the customer
    with the call's number (made from the number when there is none), and a ``call`` entry with the summary.
    When the rules already made the automatic ticket of this leg, that ticket is completed instead (subject,
    summary) and goes to pending, since the call is over. The ticket's id."""
    ticket_scope(session, user_id)
    subject = check_subject(subject)
    summary = check_body(summary, "summary", "Call summary", required=False)
    row = own_call(session, user_id, call_id)
    done = call_entry_of(session, user_id, row.id)
    if done is not None:
        raise TicketError("call", f"This call is already on ticket #{done.ticket_id}", 409)
    auto = automatic_ticket(session, user_id, row.id)
    if auto is not None:
        _change_subject(session, store, auto, subject, at, user_id)
        entry = _leg_entry(session, auto, row.id)
        entry.body, entry.author_id, entry.in_progress = summary, user_id, False
        auto.created_by = user_id
        store.set_status(session, auto, PENDING, at, by=user_id)
        store.close_missed(session, auto.number, at, keep={auto.id})
        session.flush()
        return auto.id
    number = store.number(row.number)
    customer_id = store.customer_of(session, number)
    if customer_id is None and number:
        customer_id = _auto_customer(session, store, user_id, number, at)
    ticket = store.new_ticket(session, subject=subject, origin=origin_of(row.direction), number=number, at=at,
                              status=OPEN, assignee_id=user_id, created_by=user_id, customer_id=customer_id)
    store.add_entry(session, ticket, "call", at, author_id=user_id, body=summary, call_id=row.id,
                    in_progress=row.ended_at is None)
    session.flush()
    return ticket.id


def attach_call(session: Session, store: TicketStore, user_id: int, ticket_id: int, call_id: str, summary: str,
                at: datetime) -> None:
    """Puts the call the agent is on (or has just finished) on one of the customer's earlier tickets. When
    the rules already made this leg's automatic ticket (the call is over), that ticket goes (it held
    nothing else) and the attached ticket gets what the end of the leg gives: pending, no more grouping
    of missed calls, and for a missed-call ticket answered by a call back, the green handset."""
    scope = ticket_scope(session, user_id)
    summary = check_body(summary, "summary", "Call summary", required=False)
    ticket = ticket_in_scope(session, scope, ticket_id)
    row = own_call(session, user_id, call_id)
    done = call_entry_of(session, user_id, row.id)
    if done is not None:
        where = "this ticket" if done.ticket_id == ticket.id else f"ticket #{done.ticket_id}"
        raise TicketError("call", f"This call is already on {where}", 409)
    auto = automatic_ticket(session, user_id, row.id)
    if auto is not None and auto.id == ticket.id:
        raise TicketError("call", "This call is already on this ticket", 409)
    leg_id = _leg_entry(session, auto, row.id).leg_id if auto is not None else None
    store.add_entry(session, ticket, "call", at, author_id=user_id, body=summary, call_id=row.id, leg_id=leg_id,
                    in_progress=auto is None and row.ended_at is None)
    if auto is None:
        session.flush()
        return
    session.execute(delete(TicketEntry).where(TicketEntry.ticket_id == auto.id))
    session.delete(auto)
    ticket.grouping = False
    if ticket.origin == MISSED and row.direction != "inbound" and row.answered_at is not None:
        ticket.answered_back = True
    store.set_status(session, ticket, PENDING, at, by=user_id)
    store.close_missed(session, ticket.number, at, keep={ticket.id})
    session.flush()


# --- what anyone in scope does on a ticket ---------------------------------------------------------------

def add_message(session: Session, store: TicketStore, user_id: int, ticket_id: int, kind: str, body: str,
                at: datetime) -> int:
    """A reply (``reply``) or an internal note (``note``) by the user; the entry's id."""
    if kind not in ("reply", "note"):
        raise TicketError("kind", "kind is reply or note")
    ticket = ticket_in_scope(session, ticket_scope(session, user_id), ticket_id)
    text = check_body(body, "body", "Reply" if kind == "reply" else "Note")
    entry = store.add_entry(session, ticket, kind, at, author_id=user_id, body=text)
    session.flush()
    return entry.id


def change_status(session: Session, store: TicketStore, user_id: int, ticket_id: int, status: str,
                  at: datetime) -> bool:
    ticket = ticket_in_scope(session, ticket_scope(session, user_id), ticket_id)
    changed = store.set_status(session, ticket, check_status(status), at, by=user_id)
    session.flush()
    return changed


def assignable(session: Session, scope: Scope) -> list[tuple[int, str]]:
    """(id, "Name (extension)") of the enabled users a ticket in this scope may be given to: agents, admins
    and supervisors of the scope's units (every unit for a top scope)."""
    query = select(User).where(User.disabled.is_(False)).order_by(User.name, User.id)
    if not scope.top:
        query = query.where(User.org_unit_id.in_(sorted(scope.unit_ids)))
    return [(u.id, f"{u.name} ({u.extension})" if u.extension else u.name) for u in session.scalars(query)
            if "agent" in u.role_list or is_manager(u)]


def check_assignee(session: Session, scope: Scope, assignee_id: int | None, field: str = "assignee") -> int | None:
    if assignee_id is None:
        return None
    if assignee_id not in {user_id for user_id, _ in assignable(session, scope)}:
        raise TicketError(field, "No such user in your units to assign the ticket to")
    return assignee_id


def change_assignee(session: Session, store: TicketStore, user_id: int, ticket_id: int, assignee_id: int | None,
                    at: datetime) -> None:
    """Gives the ticket to a user of the scope's units (None: unassigned)."""
    scope = ticket_scope(session, user_id)
    ticket = ticket_in_scope(session, scope, ticket_id)
    store.set_assignee(session, ticket, check_assignee(session, scope, assignee_id), at, by=user_id)
    session.flush()


def _change_subject(session: Session, store: TicketStore, ticket: Ticket, subject: str, at: datetime,
                    by: int) -> None:
    if ticket.subject == subject:
        return
    store.add_entry(session, ticket, "subject", at, author_id=by, old=ticket.subject[:200], new=subject[:200])
    ticket.subject = subject


def change_subject(session: Session, store: TicketStore, user_id: int, ticket_id: int, subject: str,
                   at: datetime) -> None:
    ticket = ticket_in_scope(session, ticket_scope(session, user_id), ticket_id)
    _change_subject(session, store, ticket, check_subject(subject), at, user_id)
    session.flush()


def create_ticket(session: Session, store: TicketStore, user_id: int, *, subject: str, number: str, at: datetime,
                  customer_id: int | None = None, assignee_id: int | None = None, status: str = OPEN) -> int:
    """A ticket an integration makes (the REST API): origin ``integration``, the user its maker; the customer
    given (in scope) or the one with the number."""
    scope = ticket_scope(session, user_id)
    subject = check_subject(subject)
    status = check_status(status)
    typed = number.strip()
    if len(typed) > 40 or _LINE_CONTROL.search(typed):
        raise TicketError("number", "number: at most 40 characters, no control characters")
    stored = store.number(typed) if typed else ""
    if customer_id is not None:
        customer = session.get(Customer, customer_id)
        if customer is None or not scope.covers(customer.org_unit_id):
            raise TicketError("customer_id", "No such customer (or not in your units)", 404)
    assignee = check_assignee(session, scope, assignee_id, "assignee_id")
    ticket = store.new_ticket(session, subject=subject, origin=INTEGRATION, number=stored, at=at, status=status,
                              assignee_id=assignee, created_by=user_id, customer_id=customer_id)
    if not scope.top and not scope.covers(ticket.org_unit_id):
        # Made by a manager whose own unit is not one they manage: keep it where they can see it.
        ticket.org_unit_id = scope.units[0].id
    session.flush()
    return ticket.id
