"""What the ACD stores: agent states and the work log, queue calls with their ring attempts and
destinations, the callback list; and what it reads back at start (queues, agents, today's figures).

Writes go through a ``RecordWriter`` (in order, in the background, kept while the database is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from callcenter.acd.model import AcdCall, Agent, AgentState, Attempt, CustomerCard
from callcenter.acd.settings import QueueSpec
from callcenter.customers.fields import card_fields, profile_fields
from callcenter.customers.history import all_forms
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdAttempt,
    AcdDestination,
    AgentStatus,
    AgentWorkLog,
    Callback,
    Queue,
    QueueMember,
    Recording,
    User,
)
from callcenter.db.models import AcdCall as AcdCallRow
from callcenter.db.writer import RecordWriter
from callcenter.dialer.contacts import normalise_number
from callcenter.users.units import unit_when_written

log = logging.getLogger(__name__)


def start_of_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# -- set-up ---------------------------------------------------------------------------------------


def sync_queues(session: Session, specs: Mapping[str, QueueSpec]) -> list[str]:
    """Makes the configured queues and their members what the configuration says; returns problems
    (members that are no user)."""
    problems: list[str] = []
    users = {u.extension: u.id for u in session.scalars(select(User).where(User.extension.is_not(None)))}
    for spec in specs.values():
        queue = session.scalar(select(Queue).where(Queue.name == spec.name))
        if queue is None:
            queue = Queue(name=spec.name)
            session.add(queue)
        for attr in ("strategy", "ring_timeout", "wrapup", "max_wait", "service_level", "overflow",
                     "announce_every", "moh_class"):
            setattr(queue, attr, getattr(spec, attr))
        wanted: dict[int, int] = {}
        for extension, skill in spec.members.items():
            if extension not in users:
                problems.append(f"queue {spec.name}: member {extension} is no user")
                continue
            wanted[users[extension]] = skill
        for member in list(queue.members):
            if member.user_id not in wanted:
                queue.members.remove(member)
            else:
                member.skill = wanted.pop(member.user_id)
        for user_id, skill in wanted.items():
            queue.members.append(QueueMember(user_id=user_id, skill=skill))
    session.flush()
    return problems


def load_queues(session: Session) -> dict[str, QueueSpec]:
    queues: dict[str, QueueSpec] = {}
    for queue in session.scalars(select(Queue)):
        members = {m.user.extension: m.skill for m in queue.members if m.user.extension}
        queues[queue.name] = QueueSpec(
            name=queue.name, strategy=queue.strategy, members=members, ring_timeout=queue.ring_timeout,
            wrapup=queue.wrapup, max_wait=queue.max_wait, service_level=queue.service_level,
            overflow=queue.overflow, announce_every=queue.announce_every, moh_class=queue.moh_class)
    return queues


def load_agents(session: Session, queues: Mapping[str, QueueSpec], now: datetime) -> dict[int, Agent]:
    """Agents are users with the agent role and an extension. A restarted controller keeps who was
    logged in or paused; calls it lost are over, so ringing, on-call and wrap-up become ready."""
    agents: dict[int, Agent] = {}
    statuses = {s.user_id: s for s in session.scalars(select(AgentStatus))}
    today = start_of_day(now)
    calls_today = dict(session.execute(
        select(AcdCallRow.agent_id, func.count()).where(AcdCallRow.answered_at >= today)
        .group_by(AcdCallRow.agent_id)).all())
    for user in session.scalars(select(User).where(User.extension.is_not(None))):
        if "agent" not in user.role_list or not user.extension:
            continue
        agent = Agent(user.id, user.extension, user.name, since=now, idle_since=now)
        agent.skills = {name: q.members[user.extension] for name, q in queues.items() if user.extension in q.members}
        agent.calls_today = int(calls_today.get(user.id, 0))
        status = statuses.get(user.id)
        if status is not None:
            agent.capacity = status.capacity
            state = AgentState(status.state)
            if state in (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP):
                state = AgentState.READY
            agent.state, agent.reason = state, status.reason if state is AgentState.PAUSED else ""
            agent.since = status.since if state.value == status.state else now
        agents[user.id] = agent
    return agents


@dataclass
class DayFigures:
    """One queue's figures since midnight UTC (formulas in docs/wallboard.md)."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    overflowed: int = 0
    wait_total: float = 0.0
    talk_total: float = 0.0
    talked: int = 0


def load_figures(session: Session, queues: Mapping[str, QueueSpec], now: datetime) -> dict[str, DayFigures]:
    figures = {name: DayFigures() for name in queues}
    rows = session.execute(select(AcdCallRow.queue, AcdCallRow.outcome, AcdCallRow.wait_seconds,
                                  AcdCallRow.talk_seconds, AcdCallRow.answered_at)
                           .where(AcdCallRow.entered_at >= start_of_day(now), AcdCallRow.queue.is_not(None),
                                  AcdCallRow.direction != "outbound"))
    for queue, outcome, wait, talk, answered_at in rows:
        if queue not in figures:
            continue
        f = figures[queue]
        f.offered += 1
        if answered_at is not None:
            f.answered += 1
            f.wait_total += float(wait or 0)
            if float(wait or 0) <= queues[queue].service_level:
                f.answered_in_sl += 1
            if talk is not None:
                f.talk_total += float(talk)
                f.talked += 1
        elif outcome == "abandoned":
            f.abandoned += 1
        elif outcome in ("overflow", "callback_requested", "transferred"):
            f.overflowed += 1
    return figures


def recent_handle_times(session: Session, queue: str, count: int) -> list[float]:
    rows = session.scalars(select(AcdCallRow.talk_seconds).where(
        AcdCallRow.queue == queue, AcdCallRow.talk_seconds.is_not(None))
        .order_by(AcdCallRow.ended_at.desc()).limit(count))
    return [float(r) for r in rows if r is not None]


# The customer's open tickets for the card: (session, customer id or None, number) -> [{id, subject, status,
# updated_at, unit_id}] (the tickets feature's, wired by the composition root).
CardTickets = Callable[[Session, int | None, str], list[dict[str, Any]]]


def customer_card(session: Session, number: str, limit: int = 5, region: str = "",
                  tickets: CardTickets | None = None) -> CustomerCard | None:
    """The screen pop: the customer with this number (as given, with a +, or brought to E.164 with the
    customers' ``region``), its profile and on-card fields, and the last calls by any of its numbers
    (each with its ready recording's id); for a number no customer has, the last calls of that number."""
    if not number:
        return None
    typed = {number, "+" + number.lstrip("+")}
    if region:
        with contextlib.suppress(ValueError):
            typed.add(normalise_number(number, region))
    customer = session.scalar(select(Customer).join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                              .where(CustomerPhone.number.in_(sorted(typed))).limit(1))
    phones = list(session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer.id)
                                  .order_by(CustomerPhone.id))) if customer is not None else []
    forms = set(all_forms(phones or [n for n in typed if n.startswith("+") and n[1:].isdigit()])) | {number}
    rows = list(session.scalars(select(AcdCallRow).where(AcdCallRow.number.in_(sorted(forms)),
                                                         AcdCallRow.ended_at.is_not(None))
                                .order_by(AcdCallRow.entered_at.desc()).limit(limit)))
    agent_ids = sorted({row.agent_id for row in rows if row.agent_id is not None})
    names = {user_id: name for user_id, name in session.execute(
        select(User.id, User.name).where(User.id.in_(agent_ids)))} if agent_ids else {}
    recordings = {call_id: recording_id for call_id, recording_id in session.execute(
        select(Recording.acd_call_id, Recording.id).where(Recording.acd_call_id.in_([row.id for row in rows]),
                                                          Recording.status == "ready"))}
    history = [{"at": row.entered_at.isoformat(), "queue": row.queue, "direction": row.direction,
                "outcome": row.outcome, "agent": names.get(row.agent_id or 0, ""),
                "wrapup_code": row.wrapup_code, "note": row.note, "recording": recordings.get(row.id, "")}
               for row in rows]
    e164 = sorted(n for n in typed if n.startswith("+"))
    open_tickets = tickets(session, customer.id if customer is not None else None,
                           e164[0] if e164 else number) if tickets is not None else []
    if customer is None and not history and not open_tickets:
        return None
    if customer is None:
        return CustomerCard("", "", history, tickets=open_tickets)
    return CustomerCard(customer.name, customer.note, history, card_fields(session, customer.id),
                        customer_id=customer.id, email=customer.email, company=customer.company, phones=phones,
                        profile=profile_fields(session, customer.id), tickets=open_tickets)


def open_callbacks(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    return [{"id": c.number, "number": c.number, "name": c.name, "queue": c.queue, "reason": c.reason,
             "count": c.count, "last_at": c.last_at.isoformat()}
            for c in session.scalars(select(Callback).where(Callback.status == "open")
                                     .order_by(Callback.last_at.desc()).limit(limit))]


# -- writes ---------------------------------------------------------------------------------------


class AcdRecorder:
    """Turns ACD transitions into rows, through the writer."""

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer

    def agent_state(self, agent: Agent, previous: AgentState, at: datetime, detail: str = "") -> None:
        user_id, state, reason, capacity = agent.user_id, agent.state.value, agent.reason, agent.capacity

        def write(session: Session) -> None:
            status = session.get(AgentStatus, user_id)
            if status is None:
                session.add(AgentStatus(user_id=user_id, state=state, reason=reason, since=at, capacity=capacity))
            else:
                status.state, status.reason, status.since = state, reason, at
            session.add(AgentWorkLog(user_id=user_id, at=at, state=state, previous=previous.value,
                                     reason=reason, detail=detail[:200]))
        self.writer.add(write)

    def call_started(self, call: AcdCall) -> None:
        row = {"id": call.record_id, "parent_id": call.parent_id, "channel_id": call.channel_id or "",
               "direction": call.direction.value, "queue": call.queue, "did": call.did, "number": call.number,
               "name": call.name, "priority": call.priority, "entered_at": call.entered_at, "outcome": "",
               "callers": call.queue_callers, "agents": call.queue_agents}
        self.writer.add(lambda session: session.add(AcdCallRow(**row)))

    def call_updated(self, record_id: str, **values: Any) -> None:
        if values.get("agent_id") is not None:
            values["agent_unit_id"] = unit_when_written(values["agent_id"])
        self.writer.add(lambda session: session.execute(
            update(AcdCallRow).where(AcdCallRow.id == record_id).values(**values)))

    def attempt_started(self, call: AcdCall, attempt: Attempt) -> None:
        row = {"call_id": call.record_id, "seq": attempt.seq, "user_id": attempt.agent.user_id,
               "unit_id": unit_when_written(attempt.agent.user_id), "extension": attempt.agent.extension,
               "queue": call.queue, "started_at": attempt.started_at,
               "outcome": ""}
        self.writer.add(lambda session: session.add(AcdAttempt(**row)))

    def attempt_ended(self, call: AcdCall, attempt: Attempt, at: datetime) -> None:
        record_id, seq, outcome = call.record_id, attempt.seq, attempt.outcome
        ring = round((at - attempt.started_at).total_seconds(), 2)
        self.writer.add(lambda session: session.execute(
            update(AcdAttempt).where(AcdAttempt.call_id == record_id, AcdAttempt.seq == seq)
            .values(outcome=outcome, ring_seconds=ring)))

    def destination(self, call: AcdCall, kind: str, target: str, at: datetime) -> None:
        row = {"call_id": call.record_id, "seq": call.next_destination_seq(), "at": at, "kind": kind,
               "target": target}
        self.writer.add(lambda session: session.add(AcdDestination(**row)))

    def callback(self, number: str, name: str, queue: str | None, reason: str, call_id: str | None,
                 at: datetime) -> None:
        """Adds the number to the callback list, or counts one more miss on its open entry."""
        def write(session: Session) -> None:
            entry = session.scalar(select(Callback).where(Callback.number == number))
            if entry is None:
                session.add(Callback(number=number, name=name, queue=queue, reason=reason, count=1, first_at=at,
                                     last_at=at, status="open", last_call_id=call_id))
                return
            if entry.status != "open":
                entry.status, entry.count, entry.first_at = "open", 0, at
            entry.count += 1
            entry.last_at, entry.reason, entry.last_call_id = at, reason, call_id
            entry.name = name or entry.name
            entry.queue = queue or entry.queue
        self.writer.add(write)

    def callback_closed(self, number: str, status: str, user_id: int | None, at: datetime) -> None:
        self.writer.add(lambda session: session.execute(
            update(Callback).where(Callback.number == number, Callback.status == "open")
            .values(status=status, done_at=at, done_by=user_id)))


def today_window(now: datetime) -> tuple[datetime, datetime]:
    start = start_of_day(now)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class LoadedState:
    """Everything the ACD starts from: the queues, their agents, today's figures, recent handle times and
    the open callbacks (``AcdService.load``)."""

    queues: dict[str, QueueSpec]
    agents: dict[int, Agent]
    figures: dict[str, DayFigures]
    handle_times: dict[str, list[float]]
    callbacks: list[dict[str, Any]]


def load_state(db: Database, specs: Mapping[str, QueueSpec], estimate_calls: int, now: datetime) -> LoadedState:
    """The configured queues into the database (problems logged), then the ACD's state from it. Blocking:
    run it in a thread."""
    with db.session() as session:
        for problem in sync_queues(session, specs):
            log.warning("%s", problem)
    with db.session() as session:
        queues = load_queues(session)
        return LoadedState(queues, load_agents(session, queues, now), load_figures(session, queues, now),
                           {name: recent_handle_times(session, name, estimate_calls) for name in queues},
                           open_callbacks(session, limit=10_000))


def card_lookup(db: Database, region: str = "",
                tickets: CardTickets | None = None) -> Callable[[str], Awaitable[CustomerCard | None]]:
    """The caller's card for an offer (name, last calls...), read off the event loop; ``region``: the
    customers' default region, for numbers dialled or shown without + or 00."""
    async def lookup(number: str) -> CustomerCard | None:
        def read() -> CustomerCard | None:
            with db.session() as session:
                return customer_card(session, number, region=region, tickets=tickets)
        return await asyncio.to_thread(read)
    return lookup
