"""The ticket report (seed items 19-24, docs/tickets.md "The report"): figures of the call tickets in the
user's scope over a range of UTC days, and the same per agent ("the best"). Only tickets made from calls
count (origins inbound, outbound, missed); an integration's tickets do not. The exact definitions are in
the docs and on each figure below."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from callcenter.db.models import OrgUnit, User
from callcenter.db.queries import day_start
from callcenter.tickets.actions import TicketError, in_scope, ticket_scope
from callcenter.tickets.models import CALL_ORIGINS, CLOSED, INBOUND, MISSED, Ticket, TicketEntry

# Entries that are an agent working on a ticket ("in progress"): what they wrote and what they changed.
WORK = ("reply", "note", "status", "assignee", "subject")
# Messages to the customer: a conversation (the call entry with its summary and recording) or a reply.
MESSAGES = ("call", "reply")
RANGE_MAX_DAYS = 366


@dataclass
class Figures:
    """One row of the report: the whole scope, or one agent."""

    new: set[int] = field(default_factory=set)
    new_customer: set[int] = field(default_factory=set)
    new_outbound: set[int] = field(default_factory=set)
    reopened: set[int] = field(default_factory=set)
    in_progress: set[int] = field(default_factory=set)
    with_reply: set[int] = field(default_factory=set)
    closed: set[int] = field(default_factory=set)
    replies: int = 0
    close_seconds: list[float] = field(default_factory=list)
    replies_to_close: list[int] = field(default_factory=list)
    breaches: int = 0

    @property
    def new_or_reopened(self) -> int:
        return len(self.new | self.reopened)

    @property
    def average_close_seconds(self) -> float | None:
        return sum(self.close_seconds) / len(self.close_seconds) if self.close_seconds else None

    @property
    def average_replies_to_close(self) -> float | None:
        return sum(self.replies_to_close) / len(self.replies_to_close) if self.replies_to_close else None

    def counts(self) -> dict[str, float | int | None]:
        return {"new": len(self.new), "new_customer": len(self.new_customer), "new_outbound": len(self.new_outbound),
                "reopened": len(self.reopened), "new_or_reopened": self.new_or_reopened,
                "in_progress": len(self.in_progress), "with_reply": len(self.with_reply), "closed": len(self.closed),
                "replies": self.replies, "average_close_seconds": self.average_close_seconds,
                "average_replies_to_close": self.average_replies_to_close, "close_breaches": self.breaches}


@dataclass(frozen=True)
class AgentFigures:
    user_id: int
    name: str
    figures: Figures


@dataclass(frozen=True)
class Report:
    day_from: date
    day_to: date
    unit_id: int | None
    close_target_hours: float
    total: Figures
    agents: tuple[AgentFigures, ...]


def _range(day_from: date, day_to: date) -> tuple[datetime, datetime]:
    if day_from > day_to:
        raise TicketError("from", "From is after To")
    if (day_to - day_from).days >= RANGE_MAX_DAYS:
        raise TicketError("to", f"at most {RANGE_MAX_DAYS} days at a time")
    return day_start(day_from), day_start(day_to) + timedelta(days=1)


def _where(session: Session, user_id: int, unit_id: int | None) -> list[ColumnElement[bool]]:
    scope = ticket_scope(session, user_id)
    conditions = [Ticket.origin.in_(CALL_ORIGINS), *in_scope(scope)]
    if unit_id is not None:
        if not scope.covers(unit_id) or session.get(OrgUnit, unit_id) is None:
            raise TicketError("unit", "No such unit in your scope", 404)
        conditions.append(Ticket.org_unit_id == unit_id)
    return conditions


def _add(rows: dict[int | None, Figures], who: Iterable[int | None]) -> list[Figures]:
    """The figures of the whole scope (key None) and of each agent in ``who``."""
    return [rows[None], *(rows[w] for w in set(who) if w is not None)]


def ticket_report(session: Session, user_id: int, day_from: date, day_to: date, unit_id: int | None = None,
                  close_target_hours: float = 24.0) -> Report:
    start, end = _range(day_from, day_to)
    where = _where(session, user_id, unit_id)
    rows: dict[int | None, Figures] = defaultdict(Figures)
    rows[None] = Figures()
    # New tickets: made in the range (an agent's by its assignee).
    for ticket_id, origin, assignee in session.execute(select(Ticket.id, Ticket.origin, Ticket.assignee_id).where(
            *where, Ticket.created_at >= start, Ticket.created_at < end)):
        for figures in _add(rows, [assignee]):
            figures.new.add(ticket_id)
            (figures.new_customer if origin in (INBOUND, MISSED) else figures.new_outbound).add(ticket_id)
    # What happened on the tickets in the range: reopenings, agents' work, conversations and replies.
    happened = session.execute(select(TicketEntry.ticket_id, TicketEntry.kind, TicketEntry.author_id, TicketEntry.old,
                                      TicketEntry.new, Ticket.assignee_id)
                               .join(Ticket, Ticket.id == TicketEntry.ticket_id)
                               .where(*where, TicketEntry.at >= start, TicketEntry.at < end))
    for ticket_id, kind, author, old, new, assignee in happened:
        if kind == "status" and old == CLOSED and new != CLOSED:
            for figures in _add(rows, [assignee]):
                figures.reopened.add(ticket_id)
        if kind in WORK and author is not None:
            for figures in _add(rows, [author]):
                figures.in_progress.add(ticket_id)
        if kind in MESSAGES:
            # A call entry of an automatic ticket has no author: it is the assignee's conversation.
            speaker = author if author is not None else assignee
            for figures in _add(rows, [speaker]):
                figures.replies += 1
                if kind == "call":
                    figures.with_reply.add(ticket_id)
    # Closed in the range (and still closed).
    closed = session.execute(select(Ticket.id, Ticket.created_at, Ticket.closed_at, Ticket.assignee_id).where(
        *where, Ticket.status == CLOSED, Ticket.closed_at >= start, Ticket.closed_at < end)).all()
    messages: dict[int, int] = defaultdict(int)
    conversations: set[int] = set()
    if closed:
        for ticket_id, kind in session.execute(select(TicketEntry.ticket_id, TicketEntry.kind).where(
                TicketEntry.ticket_id.in_([c.id for c in closed]), TicketEntry.kind.in_(MESSAGES))):
            messages[ticket_id] += 1
            if kind == "call":
                conversations.add(ticket_id)
    target = close_target_hours * 3600
    for ticket_id, created_at, closed_at, assignee in closed:
        took = (closed_at - created_at).total_seconds() if closed_at is not None else 0.0
        for figures in _add(rows, [assignee]):
            if ticket_id in conversations:
                figures.closed.add(ticket_id)
                figures.replies_to_close.append(messages[ticket_id])
            if took != 0:  # made closed (an automatic ticket nobody worked on) would pull the average to 0
                figures.close_seconds.append(took)
                if took > target:
                    figures.breaches += 1
    names = {i: n for i, n in session.execute(select(User.id, User.name).where(
        User.id.in_([k for k in rows if k is not None])))} if len(rows) > 1 else {}
    agents = sorted((AgentFigures(k, names.get(k, f"user #{k}"), v) for k, v in rows.items() if k is not None),
                    key=lambda a: (-len(a.figures.closed), -a.figures.replies, a.name.lower(), a.user_id))
    return Report(day_from, day_to, unit_id, close_target_hours, rows[None], tuple(agents))
