"""What the ticket pages and the REST API read (docs/tickets.md): the list with its filters, one ticket with
its timeline (each call with its state: in progress, its recording ready, being prepared, failed, or none),
the small state a page polls while a call is in progress, a recording of a call on a ticket, and a
customer's earlier call tickets. Every function reads the user's scope (actions.py ``ticket_scope``)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from callcenter.customers.history import HistoryItem
from callcenter.customers.models import Customer
from callcenter.db.models import AcdCall as AcdCallRow
from callcenter.db.models import OrgUnit, Recording, User
from callcenter.db.queries import ResultPage, day_conditions, paging
from callcenter.tickets.actions import TicketError, in_scope, ticket_in_scope, ticket_scope
from callcenter.tickets.models import CALL_ORIGINS, CLOSED, ORIGINS, STATUSES, Ticket, TicketEntry
from callcenter.users.units import Scope

SEARCH_MAX = 100
# What a call entry's recording is: the call is still going on, the MP3 is ready, being prepared, failed, none.
IN_PROGRESS, READY, PREPARING, FAILED, NONE = "in_progress", "ready", "preparing", "failed", "none"


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""
    origin: str = ""
    assignee: str = ""  # "", "me", "unassigned" or a user's id
    text: str = ""  # part of the number (digits) or of the customer's name
    day_from: date | None = None  # created on or after (UTC day)
    day_to: date | None = None


@dataclass(frozen=True)
class TicketRow:
    id: int
    subject: str
    status: str
    origin: str
    number: str
    customer_id: int | None
    customer: str
    assignee_id: int | None
    assignee: str
    unit: str
    missed_calls: int
    answered_back: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class EntryView:
    id: int
    at: datetime
    kind: str
    author: str
    body: str
    call_id: str | None
    old: str
    new: str
    call: str = ""  # a call entry's state (IN_PROGRESS, READY...)
    recording_id: str = ""


@dataclass(frozen=True)
class TicketView:
    row: TicketRow
    entries: tuple[EntryView, ...]

    @property
    def call_in_progress(self) -> bool:
        return any(e.call == IN_PROGRESS for e in self.entries)

    @property
    def stamp(self) -> str:
        """Changes whenever the page would show something else (what a waiting page polls for)."""
        seen = "|".join(f"{e.id}:{e.call}:{e.recording_id}" for e in self.entries)
        text = f"{self.row.updated_at.isoformat()}|{self.row.status}|{self.row.subject}|{self.row.assignee_id}|{seen}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def waiting(self) -> bool:
        """Something the page waits for: a call in progress or a recording being prepared."""
        return any(e.call in (IN_PROGRESS, PREPARING) for e in self.entries)


def check_filters(filters: TicketFilters) -> TicketFilters:
    if filters.status and filters.status not in STATUSES:
        raise TicketError("status", f"Status is one of {', '.join(STATUSES)}")
    if filters.origin and filters.origin not in ORIGINS:
        raise TicketError("origin", f"Origin is one of {', '.join(ORIGINS)}")
    if filters.assignee not in ("", "me", "unassigned") and not (
            filters.assignee.isascii() and filters.assignee.isdigit() and len(filters.assignee) <= 12):
        raise TicketError("assignee", "Assignee is me, unassigned or a user's number")
    if len(filters.text) > SEARCH_MAX:
        raise TicketError("q", f"Search: at most {SEARCH_MAX} characters")
    if filters.day_from and filters.day_to and filters.day_from > filters.day_to:
        raise TicketError("from", "From is after To")
    return filters


def _conditions(user_id: int, filters: TicketFilters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.status:
        found.append(Ticket.status == filters.status)
    if filters.origin:
        found.append(Ticket.origin == filters.origin)
    if filters.assignee == "me":
        found.append(Ticket.assignee_id == user_id)
    elif filters.assignee == "unassigned":
        found.append(Ticket.assignee_id.is_(None))
    elif filters.assignee:
        found.append(Ticket.assignee_id == int(filters.assignee))
    typed = filters.text.strip().lower()
    if typed:
        either: list[ColumnElement[bool]] = [
            Ticket.customer_id.in_(select(Customer.id).where(func.lower(Customer.name).contains(typed,
                                                                                               autoescape=True))),
            func.lower(Ticket.subject).contains(typed, autoescape=True)]
        digits = re.sub(r"\D", "", typed)
        if digits:
            either.append(Ticket.number.contains(digits, autoescape=True))
        found.append(or_(*either))
    found.extend(day_conditions(Ticket.created_at, filters.day_from, filters.day_to))
    return found


def _names(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(model.id, model.name).where(model.id.in_(sorted(ids))))}


def _rows(session: Session, tickets: list[Ticket]) -> list[TicketRow]:
    customers = _names(session, Customer, {t.customer_id for t in tickets if t.customer_id is not None})
    users = _names(session, User, {t.assignee_id for t in tickets if t.assignee_id is not None})
    units = _names(session, OrgUnit, {t.org_unit_id for t in tickets if t.org_unit_id is not None})
    return [TicketRow(t.id, t.subject, t.status, t.origin, t.number, t.customer_id,
                      customers.get(t.customer_id or 0, ""), t.assignee_id, users.get(t.assignee_id or 0, ""),
                      units.get(t.org_unit_id or 0, ""), t.missed_calls, t.answered_back, t.created_at,
                      t.updated_at, t.closed_at) for t in tickets]


def list_tickets(session: Session, user_id: int, filters: TicketFilters, page: int, per_page: int
                 ) -> ResultPage[TicketRow]:
    """The tickets in the user's scope that match, the most recently changed first."""
    scope = ticket_scope(session, user_id)
    conditions = [*in_scope(scope), *_conditions(user_id, check_filters(filters))]
    total = session.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
    pages, offset = paging(page, per_page, total)
    newest = (Ticket.updated_at.desc(), Ticket.id.desc())
    tickets = list(session.scalars(select(Ticket).where(*conditions).order_by(*newest).offset(offset)
                                   .limit(per_page)))
    return ResultPage(tuple(_rows(session, tickets)), page, pages, total,
                      ("Ticket", "Subject", "Status", "Customer", "Number", "Assignee", "Changed"))


def customer_call_tickets(session: Session, user_id: int, customer_id: int | None, number: str,
                          limit: int = 20) -> list[TicketRow]:
    """The customer's earlier call tickets in scope (by the customer, else by the number), newest first: what
    an agent may attach a call to."""
    scope = ticket_scope(session, user_id)
    if customer_id is not None:
        whose: ColumnElement[bool] = Ticket.customer_id == customer_id
    elif number:
        whose = Ticket.number == number
    else:
        return []
    tickets = list(session.scalars(select(Ticket).where(whose, Ticket.origin.in_(CALL_ORIGINS), *in_scope(scope))
                                   .order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit)))
    return _rows(session, tickets)


def card_tickets(session: Session, customer_id: int | None, number: str, limit: int = 10) -> list[dict[str, Any]]:
    """The customer's open and pending tickets for the screen pop, each with its ``unit_id``: the card is read
    before an agent is chosen, and the agent page shows an agent only those of their unit."""
    if customer_id is None and not number:
        return []
    whose = Ticket.customer_id == customer_id if customer_id is not None else Ticket.number == number
    tickets = session.scalars(select(Ticket).where(whose, Ticket.status != CLOSED)
                              .order_by(Ticket.updated_at.desc(), Ticket.id.desc()).limit(limit))
    return [{"id": t.id, "subject": t.subject, "status": t.status, "updated_at": t.updated_at.isoformat(),
             "unit_id": t.org_unit_id} for t in tickets]


def _call_states(session: Session, ticket: Ticket, entries: list[TicketEntry]) -> dict[int, tuple[str, str]]:
    """entry id -> (state, ready recording id) of each call entry."""
    call_ids = sorted({e.call_id for e in entries if e.kind == "call" and e.call_id})
    if not call_ids:
        return {}
    ended = {i: e for i, e in session.execute(select(AcdCallRow.id, AcdCallRow.ended_at)
                                              .where(AcdCallRow.id.in_(call_ids)))}
    recordings: dict[str, list[Recording]] = {}
    for recording in session.scalars(select(Recording).where(Recording.acd_call_id.in_(call_ids))
                                     .order_by(Recording.started_at)):
        recordings.setdefault(recording.acd_call_id or "", []).append(recording)
    states: dict[int, tuple[str, str]] = {}
    for entry in entries:
        if entry.kind != "call" or not entry.call_id:
            continue
        if entry.in_progress or (entry.call_id in ended and ended[entry.call_id] is None):
            states[entry.id] = (IN_PROGRESS, "")
            continue
        # The recording of this agent's leg (a transferred call has one per agent), else any of the call.
        who = entry.author_id if entry.author_id is not None else ticket.assignee_id
        found = recordings.get(entry.call_id, [])
        mine = [r for r in found if r.user_id == who] or found
        ready = next((r for r in mine if r.status == "ready" and r.path), None)
        if ready is not None:
            states[entry.id] = (READY, ready.id)
        elif any(r.status == "recording" for r in mine):
            states[entry.id] = (PREPARING, "")
        elif mine:
            states[entry.id] = (FAILED, "")
        else:
            states[entry.id] = (NONE, "")
    return states


def get_ticket(session: Session, user_id: int, ticket_id: int) -> TicketView:
    """The ticket with its timeline, oldest first."""
    ticket = ticket_in_scope(session, ticket_scope(session, user_id), ticket_id)
    entries = list(session.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket.id)
                                   .order_by(TicketEntry.at, TicketEntry.id)))
    authors = _names(session, User, {e.author_id for e in entries if e.author_id is not None})
    states = _call_states(session, ticket, entries)
    views = tuple(EntryView(e.id, e.at, e.kind, authors.get(e.author_id or 0, ""), e.body, e.call_id, e.old,
                            e.new, *states.get(e.id, ("", ""))) for e in entries)
    return TicketView(_rows(session, [ticket])[0], views)


def placing(session: Session, user_id: int, call_id: str) -> bool:
    """Whether the call the user placed from a ticket (click-to-call: its record id) is still going on: its
    record not written yet or not ended. False for a call that is not the user's."""
    if not call_id:
        return False
    row = session.get(AcdCallRow, call_id[:32])
    return row is None or (row.agent_id == user_id and row.ended_at is None)


def ticket_state(session: Session, user_id: int, ticket_id: int, call_id: str = "") -> dict[str, Any]:
    """What a ticket page polls while it waits: whether a call is in progress (on the ticket, or ``call_id``
    the user placed from it) or a recording being prepared, and a stamp that changes whenever the page
    would show something else."""
    view = get_ticket(session, user_id, ticket_id)
    placed = placing(session, user_id, call_id)
    stamp = view.stamp if not call_id else f"{view.stamp[:12]}{'live' if placed else 'over'}"
    return {"call_in_progress": view.call_in_progress or placed, "waiting": view.waiting or placed, "stamp": stamp}


def ticket_recording(session: Session, user_id: int, ticket_id: int, recording_id: str) -> str | None:
    """The path (under the files directory) of a ready recording of a call on this ticket, when the user may
    see the ticket; None otherwise."""
    ticket = ticket_in_scope(session, ticket_scope(session, user_id), ticket_id)
    recording = session.get(Recording, recording_id)
    if recording is None or recording.status != "ready" or not recording.path or not recording.acd_call_id:
        return None
    on_ticket = session.scalar(select(TicketEntry.id).where(
        TicketEntry.ticket_id == ticket.id, TicketEntry.kind == "call",
        TicketEntry.call_id == recording.acd_call_id).limit(1))
    return recording.path if on_ticket is not None else None


def customer_history(session: Session, scope: Scope, customer_id: int, limit: int) -> list[HistoryItem]:
    """The customer's tickets for the history on their page (customers/history.py), of the reader's scope."""
    query = select(Ticket).where(Ticket.customer_id == customer_id)
    if not scope.top:
        query = query.where(Ticket.org_unit_id.in_(sorted(scope.unit_ids)))
    return [HistoryItem(t.created_at, "ticket", t.number, f"Ticket #{t.id}: {t.subject} ({t.status})",
                        link=f"/tickets/{t.id}")
            for t in session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))]
