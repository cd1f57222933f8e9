"""Call-based tickets driven by real calls (seed 001 items 1-18; tickets/rules.py): sipp callers through the
IVR and the queues, registered sipp agent phones, agents acting through the panel's pages and API, the
"PSTN" behind the trunk answering or busy; asserted on the tickets and their timelines in the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.models import User
from callcenter.tickets.models import CLOSED, MISSED, OPEN, PENDING, Ticket, TicketEntry
from tests.integration.conftest import AgentFactory
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System, wait_for

pytestmark = pytest.mark.integration

def user_id(system: System, extension: str) -> int:
    with system.db.session() as session:
        found = session.scalar(select(User.id).where(User.extension == extension))
    assert found is not None
    return found


def tickets_of(system: System, number: str) -> list[Ticket]:
    with system.db.session() as session:
        rows = list(session.scalars(select(Ticket).where(Ticket.number == number).order_by(Ticket.id)))
        session.expunge_all()
        return rows


def entries_of(system: System, ticket_id: int) -> list[TicketEntry]:
    with system.db.session() as session:
        rows = list(session.scalars(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id)
                                    .order_by(TicketEntry.id)))
        session.expunge_all()
        return rows


async def tickets_when(system: System, number: str, done: Any, what: str, timeout: float = 20) -> list[Ticket]:
    return await wait_for(lambda: (lambda found: found if done(found) else None)(tickets_of(system, number)),
                          timeout, what, detail=lambda: repr([(t.id, t.subject, t.status) for t in
                                                              tickets_of(system, number)]))


def caller(system: System, did: str, number: str, **kwargs: Any) -> sipp.Sipp:
    return sipp.caller(system.sip_port, did, caller=number, caller_name="", **kwargs)


def e164(national: str) -> str:
    return "+48" + national


async def connected(client: PanelClient, what: str) -> dict[str, Any]:
    view = await client.wait_view(lambda v: (v["call"] or {}).get("state") == "connected", 15, what)
    return dict(view["call"])


async def test_answered_calls_get_tickets_with_and_without_the_agent(fresh_system: System,
                                                                     agent: AgentFactory) -> None:
    known, unknown = "601100011", "601100012"
    with fresh_system.db.session() as session:
        customer = Customer(name="Known Customer", created_at=datetime.now(UTC), updated_at=datetime.now(UTC))
        session.add(customer)
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, number=e164(known)))
        customer_id = customer.id
    alice = await agent("2001")

    # A known caller the agent does nothing for: a ticket anyway, open, with the customer (item 2's note).
    first = caller(fresh_system, "1200", known, hangup_after_ms=2500)
    await first.start()
    call = await connected(alice, "Alice on the known caller's call")
    assert (await first.wait(30)).ok
    [ticket] = await tickets_when(fresh_system, e164(known), lambda found: len(found) == 1, "the automatic ticket")
    assert (ticket.subject, ticket.status, ticket.origin) == (f"Incoming call from {e164(known)}", OPEN, "inbound")
    assert (ticket.customer_id, ticket.assignee_id) == (customer_id, user_id(fresh_system, "2001"))
    [entry] = entries_of(fresh_system, ticket.id)
    assert (entry.kind, entry.call_id, entry.in_progress) == ("call", call["id"], False)

    # An unknown caller: the agent makes a ticket during the call; the customer is made from the number;
    # at hang-up the ticket is pending and there is no second one (items 2a, 4b, 15).
    await alice.wait_view(lambda v: v["call"] is None and v["agent"]["state"] == "ready", 10, "Alice free")
    second = caller(fresh_system, "1200", unknown, hangup_after_ms=4000)
    await second.start()
    call = await connected(alice, "Alice on the unknown caller's call")
    status, path, page = await alice.submit("/tickets/new", {"call": call["id"], "subject": "Router <b>broken</b>",
                                                              "summary": "Lights blink red"})
    assert status == 200 and re.fullmatch(r"/tickets/\d+", path), (status, path, page[:300])
    assert "Router &lt;b&gt;broken&lt;/b&gt;" in page
    made = int(path.rsplit("/", 1)[1])
    assert (await second.wait(30)).ok
    [ticket] = await tickets_when(fresh_system, e164(unknown), lambda found: found and found[0].status == PENDING,
                                  "the agent's ticket pending")
    assert (ticket.id, ticket.subject, ticket.assignee_id) == (made, "Router <b>broken</b>",
                                                               user_id(fresh_system, "2001"))
    with fresh_system.db.session() as session:
        made_customer = session.scalar(select(Customer).join(CustomerPhone).where(
            CustomerPhone.number == e164(unknown)))
        assert made_customer is not None and ticket.customer_id == made_customer.id
    call_entry = next(e for e in entries_of(fresh_system, made) if e.kind == "call")
    assert (call_entry.body, call_entry.in_progress, call_entry.call_id) == ("Lights blink red", False, call["id"])


async def test_missed_calls_in_the_ivr_and_the_queue_group_until_a_conversation(fresh_system: System,
                                                                                agent: AgentFactory) -> None:
    in_ivr, in_queue = "601100021", "601100022"
    # Hung up in the IVR, before any agent: a missed-call ticket nobody is assigned (item 11).
    result = await caller(fresh_system, "1100", in_ivr, hangup_after_ms=1500).run(20)
    assert result.ok, result.output
    [ticket] = await tickets_when(fresh_system, e164(in_ivr), lambda found: len(found) == 1, "the IVR's missed call")
    assert (ticket.subject, ticket.origin, ticket.status, ticket.assignee_id) == (
        f"Missed call from {e164(in_ivr)}", MISSED, OPEN, None)

    # Offered to Bob, whose phone rings on: three missed calls, one ticket, assigned to him (items 11, 12).
    bob = await agent("2002", mode="ring")
    for count in (1, 2, 3):
        result = await caller(fresh_system, "1200", in_queue, hangup_after_ms=2000).run(20)
        assert result.ok, result.output
        await tickets_when(fresh_system, e164(in_queue), lambda found, n=count: found and found[0].missed_calls == n,
                           f"{count} missed calls grouped")
    [missed] = tickets_of(fresh_system, e164(in_queue))
    assert missed.assignee_id == user_id(fresh_system, "2002") and missed.grouping
    await bob.act("pause", reason="break")

    # A conversation: the missed-call ticket is closed, the call has its own (item 18a)...
    alice = await agent("2003")
    talk = caller(fresh_system, "1200", in_queue, hangup_after_ms=2500)
    await talk.start()
    await connected(alice, "Alice answering the insistent caller")
    assert (await talk.wait(30)).ok
    closed, answered = await tickets_when(fresh_system, e164(in_queue), lambda found: len(found) == 2,
                                          "the conversation's ticket")
    assert (closed.id, closed.status, closed.grouping) == (missed.id, CLOSED, False)
    assert (answered.origin, answered.assignee_id) == ("inbound", user_id(fresh_system, "2003"))
    # ...and the next missed call opens a new ticket (nobody free: no offer, so unassigned).
    await alice.wait_view(lambda v: v["call"] is None, 10, "Alice free")
    await alice.act("pause", reason="break")
    result = await caller(fresh_system, "1200", in_queue, hangup_after_ms=1500).run(20)
    assert result.ok, result.output
    *_, newest = await tickets_when(fresh_system, e164(in_queue), lambda found: len(found) == 3, "a new missed call")
    assert (newest.origin, newest.status, newest.assignee_id, newest.missed_calls) == (MISSED, OPEN, None, 1)


async def test_calls_back_from_a_missed_call_ticket(fresh_system: System, agent: AgentFactory) -> None:
    busy, answers = "601100032", "601100041"  # the PSTN: a number ending in 2 is busy, in 1 answers
    for number in (busy, answers):
        result = await caller(fresh_system, "1100", number, hangup_after_ms=1500).run(20)
        assert result.ok, result.output
    busy_ticket = (await tickets_when(fresh_system, e164(busy), lambda found: len(found) == 1, "missed"))[0]
    answer_ticket = (await tickets_when(fresh_system, e164(answers), lambda found: len(found) == 1, "missed"))[0]
    pstn = sipp.pstn_mix(fresh_system.sip_port, fresh_system.settings.sip.trunk_port, sipp.AUDIO_PCAP,
                         sipp.AUDIO_PCAP)
    await pstn.start()
    try:
        alice = await agent("2001")
        await alice.act("pause", reason="break")
        # Not answered (busy): the attempt is on the ticket, which stays open (items 9, 17).
        status, path, _page = await alice.submit(f"/tickets/{busy_ticket.id}/call", {})
        assert (status, path) == (200, f"/tickets/{busy_ticket.id}")
        await wait_for(lambda: [e for e in entries_of(fresh_system, busy_ticket.id) if e.kind == "attempt"], 20,
                       "the unanswered attempt on the ticket")
        assert tickets_of(fresh_system, e164(busy))[0].status == OPEN
        await alice.wait_view(lambda v: v["call"] is None, 10, "Alice free")
        # Answered: pending, and its handset turns green (items 13, 18c).
        status, path, _page = await alice.submit(f"/tickets/{answer_ticket.id}/call", {})
        assert (status, path) == (200, f"/tickets/{answer_ticket.id}")
        await connected(alice, "the customer answering the call back")
        await alice.act("hangup")
        [ticket] = await tickets_when(fresh_system, e164(answers), lambda found: found[0].status == PENDING,
                                      "the called-back ticket pending")
        assert ticket.answered_back
        assert [e.kind for e in entries_of(fresh_system, ticket.id)][-2:] == ["call", "status"]
    finally:
        await pstn.stop()


async def test_a_transferred_call_gives_one_ticket_per_agent(fresh_system: System, agent: AgentFactory) -> None:
    number = "601100051"
    alice = await agent("2001")
    await alice.wait_view(lambda v: v["agent"]["state"] == "ready", 10, "Alice ready")
    bob = await agent("2002")  # idle for less time than Alice: the call goes to her
    since = datetime.now(UTC)
    customer = caller(fresh_system, "1200", number, hangup_after_ms=7000)
    await customer.start()
    await connected(alice, "Alice connected")
    await alice.act("transfer", mode="blind", kind="agent", target="2002")
    await connected(bob, "Bob connected")
    assert (await customer.wait(30)).ok
    first, second = await tickets_when(fresh_system, e164(number), lambda found: len(found) == 2, "two tickets")
    # Alice passed the call on without a word: closed (item 5); Bob's is an ordinary answered call's.
    assert (first.assignee_id, first.status) == (user_id(fresh_system, "2001"), CLOSED)
    assert (second.assignee_id, second.status) == (user_id(fresh_system, "2002"), OPEN)
    assert first.created_at >= since and {e.leg_id for e in entries_of(fresh_system, first.id)} != {
        e.leg_id for e in entries_of(fresh_system, second.id)}
