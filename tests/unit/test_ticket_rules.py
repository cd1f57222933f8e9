"""The automatic ticket rules (tickets/rules.py, seed 001 items 1-18) and the journeys that end a customer's
call as one CallFinished (calls/journeys.py), driven by the ACD's events on a real bus and a real database.
The end-to-end test with real calls is tests/integration/test_tickets.py."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.events import (
    AgentLegEnded,
    AgentLegStarted,
    CallEnded,
    CallOffered,
    CallQueued,
    OutboundCallStarted,
)
from callcenter.acd.model import AcdCall, Agent, AgentLeg, Direction
from callcenter.bus import Bus
from callcenter.calls.events import CallFinished, CallSummary
from callcenter.calls.journeys import Journeys
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.engine import Database
from callcenter.db.models import OrgUnit, User
from callcenter.tickets.models import CLOSED, MISSED, OPEN, PENDING, Ticket, TicketEntry
from callcenter.tickets.rules import TicketRules
from callcenter.tickets.store import TicketStore
from callcenter.users import units
from callcenter.users.services import add_user

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CALLER = "+48601000001"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tickets")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    with db.session() as session:
        units.save_unit(session, "North")
        units.save_unit(session, "South")
        add_user(session, name="Ann", extension="2001", roles=("agent",), org_unit="North")
        add_user(session, name="Bob", extension="2002", roles=("agent",), org_unit="North")
    db.dispose()
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    yield database
    database.dispose()


class Writer:
    """Applies each operation at once, in its own transaction, as the records writer would in order."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, op: Any) -> None:
        with self.db.session() as session:
            op(session)

    def together(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class Floor:
    """The bus with the rules and the journeys on it, and the agents Ann (2001) and Bob (2002)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.bus = Bus()
        self.clock = T0
        writer = Writer(db)
        self.store = TicketStore("PL")
        self.journeys = Journeys(self.bus, writer.together, now=lambda: self.clock)
        self.rules = TicketRules(self.store, writer, self.bus, lambda queue: "North" if queue == "sales" else "",
                                 missed_calls_unit="South")
        with db.session() as session:
            ids = {u.extension: u.id for u in session.scalars(select(User))}
        self.ann = Agent(ids["2001"], "2001", "Ann")
        self.bob = Agent(ids["2002"], "2002", "Bob")

    def tick(self, seconds: float = 5) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    async def trunk_call(self, channel: str, number: str = CALLER) -> AcdCall:
        self.journeys.trunk_call(channel, number, "500")
        call = AcdCall(channel, Direction.INBOUND, "sales", number, did="500", entered_at=self.clock)
        await self.bus.publish(CallQueued(call))
        return call

    async def offer(self, call: AcdCall, agent: Agent) -> None:
        self.tick()
        await self.bus.publish(CallOffered(call, agent, f"ring-{agent.extension}"))

    async def talk(self, call: AcdCall, agent: Agent, seconds: float = 30, how: str = "hangup") -> AgentLeg:
        leg = AgentLeg(f"{call.record_id}-{len(call.legs) + 1}", agent, self.tick())
        call.legs.append(leg)
        await self.bus.publish(AgentLegStarted(call, leg))
        leg.ended_at, leg.how = self.tick(seconds), how
        await self.bus.publish(AgentLegEnded(call, leg))
        return leg

    async def hang_up(self, call: AcdCall) -> None:
        self.tick(1)
        await self.bus.publish(CallEnded(call, "answered" if call.legs else "abandoned"))
        assert call.channel_id is not None
        await self.journeys.channel_ended(call.channel_id)

    async def dial(self, agent: Agent, number: str = CALLER, ticket_id: int | None = None) -> AcdCall:
        call = AcdCall(None, Direction.OUTBOUND, None, number, entered_at=self.tick())
        if ticket_id is not None:
            call.extra["ticket_id"] = ticket_id
        await self.bus.publish(OutboundCallStarted(call, agent))
        return call

    async def dial_ended(self, call: AcdCall, outcome: str) -> None:
        self.tick(1)
        await self.bus.publish(CallEnded(call, outcome))

    def tickets(self) -> list[Ticket]:
        with self.db.session() as session:
            rows = list(session.scalars(select(Ticket).order_by(Ticket.id)))
            session.expunge_all()
            return rows

    def entries(self, ticket_id: int) -> list[TicketEntry]:
        with self.db.session() as session:
            rows = list(session.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id)
                                        .order_by(TicketEntry.id)))
            session.expunge_all()
            return rows

    def agent_makes_ticket(self, call: AcdCall, agent: Agent, subject: str) -> int:
        """What the create-from-call page writes while the call goes on (tickets/actions.py)."""
        with self.db.session() as session:
            ticket = self.store.new_ticket(session, subject=subject, origin="inbound", number=CALLER,
                                           at=self.clock, assignee_id=agent.user_id, created_by=agent.user_id)
            self.store.add_entry(session, ticket, "call", self.clock, author_id=agent.user_id,
                                 call_id=call.record_id, body="summary", in_progress=True)
            return ticket.id

    def agent_attaches(self, call: AcdCall, agent: Agent, ticket_id: int) -> None:
        with self.db.session() as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            self.store.add_entry(session, ticket, "call", self.clock, author_id=agent.user_id,
                                 call_id=call.record_id, body="same question", in_progress=True)


@pytest.fixture
def floor(db: Database) -> Floor:
    return Floor(db)


def by_subject(tickets: list[Ticket]) -> dict[str, Ticket]:
    return {t.subject: t for t in tickets}


async def test_an_answered_call_the_agent_did_nothing_with_gets_an_open_ticket_at_hang_up(floor: Floor) -> None:
    call = await floor.trunk_call("c1")
    await floor.offer(call, floor.ann)
    await floor.talk(call, floor.ann)
    [ticket] = floor.tickets()
    assert (ticket.subject, ticket.status, ticket.origin) == (f"Incoming call from {CALLER}", OPEN, "inbound")
    assert ticket.assignee_id == floor.ann.user_id
    [entry] = floor.entries(ticket.id)
    assert (entry.kind, entry.call_id, entry.in_progress) == ("call", call.record_id, False)
    await floor.hang_up(call)
    assert len(floor.tickets()) == 1  # an answered call is no missed call


async def test_the_ticket_an_agent_makes_during_the_call_is_pending_at_hang_up_and_no_second_one(
        floor: Floor) -> None:
    call = await floor.trunk_call("c1")
    await floor.offer(call, floor.ann)
    ticket_id = floor.agent_makes_ticket(call, floor.ann, "Invoice question")
    await floor.talk(call, floor.ann)
    await floor.hang_up(call)
    [ticket] = floor.tickets()
    assert (ticket.id, ticket.subject, ticket.status) == (ticket_id, "Invoice question", PENDING)
    call_entry = next(e for e in floor.entries(ticket_id) if e.kind == "call")
    assert not call_entry.in_progress and call_entry.leg_id == f"{call.record_id}-1"


async def test_a_transferred_call_gives_one_ticket_per_agent_who_talked(floor: Floor) -> None:
    call = await floor.trunk_call("c1")
    await floor.offer(call, floor.ann)
    await floor.talk(call, floor.ann, how="transferred")
    await floor.offer(call, floor.bob)
    await floor.talk(call, floor.bob)
    await floor.hang_up(call)
    first, second = floor.tickets()
    # The first agent passed it on without a word: closed (item 5); the second's is an ordinary one.
    assert (first.assignee_id, first.status) == (floor.ann.user_id, CLOSED)
    assert (second.assignee_id, second.status) == (floor.bob.user_id, OPEN)


async def test_missed_calls_group_until_a_conversation_then_the_next_opens_a_new_ticket(floor: Floor) -> None:
    for n in range(3):
        call = await floor.trunk_call(f"m{n}")
        await floor.offer(call, floor.ann if n < 2 else floor.bob)
        await floor.hang_up(call)
    [missed] = floor.tickets()
    assert (missed.subject, missed.origin, missed.status) == (f"Missed call from {CALLER}", MISSED, OPEN)
    assert missed.missed_calls == 3
    assert missed.assignee_id == floor.ann.user_id  # the last agent the first call was offered to
    assert [e.kind for e in floor.entries(missed.id)] == ["missed", "missed", "missed"]

    talk = await floor.trunk_call("t1")
    await floor.offer(talk, floor.bob)
    ticket_id = floor.agent_makes_ticket(talk, floor.bob, "Finally reached us")
    await floor.talk(talk, floor.bob)
    await floor.hang_up(talk)
    tickets = {t.id: t for t in floor.tickets()}
    assert tickets[missed.id].status == CLOSED  # item 18a
    assert tickets[ticket_id].status == PENDING

    again = await floor.trunk_call("m9")
    await floor.hang_up(again)
    newest = floor.tickets()[-1]
    assert newest.id not in tickets and newest.origin == MISSED
    assert newest.assignee_id is None  # hung up before any agent was offered the call (item 11)


async def test_attaching_the_call_to_the_missed_call_ticket_makes_it_pending(floor: Floor) -> None:
    first = await floor.trunk_call("m1")
    await floor.hang_up(first)
    [missed] = floor.tickets()
    call = await floor.trunk_call("c2")
    await floor.offer(call, floor.ann)
    floor.agent_attaches(call, floor.ann, missed.id)
    await floor.talk(call, floor.ann)
    await floor.hang_up(call)
    [ticket] = floor.tickets()
    assert (ticket.id, ticket.status, ticket.answered_back) == (missed.id, PENDING, False)  # item 18b


async def test_a_call_from_the_missed_call_ticket_unanswered_then_answered(floor: Floor) -> None:
    first = await floor.trunk_call("m1")
    await floor.offer(first, floor.ann)
    await floor.hang_up(first)
    [missed] = floor.tickets()
    unanswered = await floor.dial(floor.ann, ticket_id=missed.id)
    await floor.dial_ended(unanswered, "no_answer")
    [ticket] = floor.tickets()
    assert ticket.status == OPEN and not ticket.answered_back  # item 17
    attempt = floor.entries(missed.id)[-1]
    assert (attempt.kind, attempt.author_id) == ("attempt", floor.ann.user_id)
    assert "not answered (no answer)" in attempt.body

    answered = await floor.dial(floor.ann, ticket_id=missed.id)
    await floor.talk(answered, floor.ann)
    await floor.dial_ended(answered, "answered")
    [ticket] = floor.tickets()
    assert (ticket.status, ticket.answered_back) == (PENDING, True)  # items 13, 18c
    assert floor.entries(missed.id)[-2].kind == "call"


async def test_an_outbound_call_the_agent_did_nothing_with_gets_a_closed_ticket(floor: Floor) -> None:
    call = await floor.dial(floor.bob, "+48601000002")
    await floor.talk(call, floor.bob)
    await floor.dial_ended(call, "answered")
    [ticket] = floor.tickets()
    assert (ticket.subject, ticket.status, ticket.assignee_id) == ("Outgoing call to +48601000002", CLOSED,
                                                                    floor.bob.user_id)  # item 10
    unanswered = await floor.dial(floor.bob, "+48601000003")
    await floor.dial_ended(unanswered, "no_answer")
    assert len(floor.tickets()) == 1  # nothing happened, nothing to follow up


async def test_a_call_moved_to_another_queue_is_one_journey(floor: Floor) -> None:
    finished: list[CallSummary] = []
    floor.bus.subscribe(CallFinished, lambda event: finished.append(event.summary))
    call = await floor.trunk_call("c1")
    await floor.offer(call, floor.ann)
    await floor.bus.publish(CallEnded(call, "overflow", continues=True))
    moved = AcdCall("c1", Direction.INBOUND, "support", CALLER, did="500", entered_at=floor.tick(),
                    parent_id=call.record_id, session_id=call.session_id)
    await floor.bus.publish(CallQueued(moved))
    await floor.offer(moved, floor.bob)
    assert finished == []
    await floor.hang_up(moved)
    [summary] = finished
    assert summary.record_ids == (call.record_id, moved.record_id)
    assert summary.queues == ("sales", "support")
    assert (summary.outcome, summary.last_offered, summary.is_lost) == ("missed", floor.bob.user_id, True)
    assert summary.session_id == "c1" and summary.did == "500"


def test_numbers_are_kept_in_e164_so_national_and_international_forms_group_together(db: Database) -> None:
    store = TicketStore("PL")
    assert store.number("601 000 001") == store.number("+48601000001") == "+48601000001"
    assert store.number("anonymous") == "anonymous"
    with db.session() as session:
        ticket = store.new_ticket(session, subject="x", origin="inbound", number="+48601000001", at=T0)
        _status_round_trip(store, session, ticket)


def _status_round_trip(store: TicketStore, session: Session, ticket: Ticket) -> None:
    announced: list[tuple[str, dict[str, Any]]] = []
    def announce(_session: Session, event: str, build: Any, *, at: datetime) -> None:
        announced.append((event, build()))
    store.announce = announce
    assert store.set_status(session, ticket, CLOSED, T0 + timedelta(hours=1))
    assert not store.set_status(session, ticket, CLOSED, T0 + timedelta(hours=2))
    assert store.set_status(session, ticket, OPEN, T0 + timedelta(hours=3))
    assert ticket.reopened == 1 and ticket.closed_at is None
    assert [(e, p["previous_status"], p["ticket"]["status"]) for e, p in announced] == [
        ("ticket.status_changed", "open", "closed"), ("ticket.status_changed", "closed", "open")]


async def test_a_call_dialled_from_the_phone_gets_a_closed_ticket_and_ends_the_grouping(floor: Floor) -> None:
    from callcenter.calls.events import DirectCall
    missed = await floor.trunk_call("m1")
    await floor.hang_up(missed)
    for answered in (False, True):
        call = DirectCall("dc", floor.bob.user_id, "2002", "601000001", T0, T0 + timedelta(seconds=40), answered,
                          30 if answered else 0)
        with floor.db.session() as session:
            floor.rules.direct_call(session, call)
    missed_ticket, outgoing = floor.tickets()
    assert (outgoing.subject, outgoing.status, outgoing.assignee_id) == (f"Outgoing call to {CALLER}", CLOSED,
                                                                         floor.bob.user_id)
    # Not closed (the agent did not take the missed call's question over), but no longer grouping.
    assert (missed_ticket.status, missed_ticket.grouping) == (OPEN, False)


async def test_a_missed_call_no_agent_was_offered_keeps_its_queues_unit_else_the_configured_one(
        floor: Floor) -> None:
    queued = await floor.trunk_call("q1", "+48601000002")  # waited in "sales" (North), no agent free
    await floor.hang_up(queued)
    floor.journeys.trunk_call("i1", "+48601000003", "500", flow="main")  # hung up in the IVR
    await floor.journeys.channel_ended("i1")
    with floor.db.session() as session:
        names = {u.id: u.name for u in session.scalars(select(OrgUnit))}
    in_queue, in_ivr = floor.tickets()
    assert (names[in_queue.org_unit_id or 0], in_queue.assignee_id) == ("North", None)
    assert names[in_ivr.org_unit_id or 0] == "South"
    assert "in IVR main" in floor.entries(in_ivr.id)[0].body


async def test_the_customers_history_lists_their_tickets_of_the_readers_units(floor: Floor) -> None:
    from callcenter.tickets.views import customer_history
    from callcenter.users.units import Scope, UnitRef
    with floor.db.session() as session:
        customer = Customer(name="Known", created_at=T0, updated_at=T0)
        session.add(customer)
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, number=CALLER))
        customer_id = customer.id
        units_by_name = {u.name: u.id for u in session.scalars(select(OrgUnit))}
    call = await floor.trunk_call("c1")
    await floor.offer(call, floor.ann)
    await floor.talk(call, floor.ann)  # Ann is in North: her ticket is North's
    north = Scope("n", False, (UnitRef(units_by_name["North"], "North"),))
    south = Scope("s", False, (UnitRef(units_by_name["South"], "South"),))
    with floor.db.session() as session:
        [item] = customer_history(session, north, customer_id, 10)
        assert (item.kind, item.link) == ("ticket", f"/tickets/{floor.tickets()[0].id}")
        assert f"Incoming call from {CALLER} (open)" in item.summary
        assert customer_history(session, south, customer_id, 10) == []
        assert len(customer_history(session, Scope("top", True), customer_id, 10)) == 1


async def test_the_records_writer_says_when_what_was_queued_before_is_stored(db: Database) -> None:
    from callcenter.db.writer import RecordWriter
    writer = RecordWriter(db, "test records")
    assert await writer.caught_up(0.1)  # nothing queued
    written: list[int] = []
    writer.add(lambda _session: written.append(1))
    assert not await writer.caught_up(0.05)  # nobody writes: it says so instead of waiting for ever
    task = asyncio.get_running_loop().create_task(writer.run())
    try:
        writer.add(lambda _session: written.append(2))
        assert await writer.caught_up(3.0) and written == [1, 2]
    finally:
        task.cancel()
