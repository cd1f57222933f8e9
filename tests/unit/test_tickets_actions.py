"""What agents do with tickets (callcenter/tickets/actions.py, views.py) on a migrated SQLite database: a
ticket from a call (the customer found, or made from the number), the automatic ticket of the leg completed
instead of a second one, a call attached to an earlier ticket (the automatic one then removed), replies,
notes and changes, the call states of the timeline, and unit scopes that fail closed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.customers.fields import FieldInput, save_field
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.customers.services import CustomerInput, create_customer
from callcenter.db.engine import Database
from callcenter.db.models import AcdAttempt, Recording, User
from callcenter.db.models import AcdCall as AcdCallRow
from callcenter.errors import ActionRefused
from callcenter.tickets import actions, views
from callcenter.tickets.actions import TicketError
from callcenter.tickets.models import CLOSED, INBOUND, MISSED, OPEN, OUTBOUND, PENDING, Ticket, TicketEntry
from callcenter.tickets.store import TicketStore
from callcenter.users import units
from callcenter.users.services import add_user

REGION = "DE"
T0 = datetime(2030, 1, 5, 12, tzinfo=UTC)

# login -> (name, roles, unit): nadmin manages North, sadmin South, root every unit, the lost ones nothing.
USERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "root": ("Rita Root", ("admin",), None),
    "nadmin": ("Nora North", ("admin",), None),
    "sadmin": ("Sam South", ("admin",), None),
    "boss": ("Bea Boss", ("supervisor",), None),
    "lost": ("Lou Lost", ("admin",), None),
    "2001": ("Alice Agent", ("agent",), "North"),
    "2003": ("Carl Colleague", ("agent",), "North"),
    "2002": ("Bob Agent", ("agent",), "South"),
    "2009": ("Nia Nowhere", ("agent",), None),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tickets")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    with db.session() as session:
        units.save_unit(session, "North")
        units.save_unit(session, "South")
        for key, (name, roles, unit) in USERS.items():
            extension = key if key.isdigit() else None
            add_user(session, name=name, login=key, extension=extension, roles=roles, org_unit=unit,
                     panel_password=f"{key}-password")
        units.save_unit(session, "North", admins=["nadmin", "boss"])
        units.save_unit(session, "South", admins=["sadmin"])
        units.grant_all_units(session, "root", True)
    db.dispose()
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    yield database
    database.dispose()


STORE = TicketStore(REGION)


def uid(session: Session, key: str) -> int:
    found = session.scalar(select(User.id).where(User.login == key))
    assert found is not None
    return found


def call(session: Session, call_id: str, agent: str, number: str = "030 1234567", direction: str = "inbound",
         ended: bool = False, answered: bool = True) -> str:
    session.add(AcdCallRow(id=call_id, channel_id=f"ch-{call_id}", direction=direction, number=number,
                           entered_at=T0, answered_at=T0 if answered else None,
                           ended_at=T0 + timedelta(minutes=3) if ended else None, agent_id=uid(session, agent)))
    session.flush()
    return call_id


def automatic(session: Session, call_id: str, agent: str, origin: str = INBOUND, status: str = PENDING) -> Ticket:
    """What the rules make at the end of an agent's leg when the agent did nothing."""
    row = session.get(AcdCallRow, call_id)
    assert row is not None
    number = STORE.number(row.number)
    ticket = STORE.new_ticket(session, subject=f"Incoming call from {number}", origin=origin, number=number,
                              at=T0 + timedelta(minutes=3), status=status, assignee_id=uid(session, agent))
    STORE.add_entry(session, ticket, "call", T0 + timedelta(minutes=3), call_id=call_id)
    session.flush()
    return ticket


def tickets_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Ticket)) or 0


# --- a ticket from a call --------------------------------------------------------------------------------

def test_a_ticket_from_a_call_of_an_unknown_number_makes_the_customer_from_the_number(db: Database) -> None:
    with db.session() as s:
        # A required custom field does not stop the customer made from the number (completed later).
        save_field(s, FieldInput("tier", "Tier", "text", (), True, False, 0))
        call(s, "c1", "2001")
        ticket_id = actions.create_from_call(s, STORE, uid(s, "2001"), "c1", "Broken router", "Needs a new one", T0)
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        assert (ticket.subject, ticket.status, ticket.origin, ticket.number) == (
            "Broken router", OPEN, INBOUND, "+49301234567")
        assert ticket.assignee_id == ticket.created_by == uid(s, "2001")
        customer = s.get(Customer, ticket.customer_id)
        assert customer is not None and customer.name == "+49301234567"
        assert customer.org_unit_id == s.scalar(select(User.org_unit_id).where(User.login == "2001"))
        assert s.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.number == "+49301234567")) == customer.id
        entry = s.scalar(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id))
        assert entry is not None
        assert (entry.kind, entry.call_id, entry.author_id, entry.body, entry.in_progress) == (
            "call", "c1", uid(s, "2001"), "Needs a new one", True)


def test_a_ticket_from_an_outbound_call_of_a_known_customer_after_it_ended(db: Database) -> None:
    with db.session() as s:
        known = create_customer(s, uid(s, "2001"), CustomerInput("Ada", ["030 1234567"]), REGION)
        call(s, "c2", "2001", direction="callback", ended=True)
        ticket_id = actions.create_from_call(s, STORE, uid(s, "2001"), "c2", "Called back", "", T0)
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None and (ticket.origin, ticket.customer_id) == (OUTBOUND, known)
        assert s.scalar(select(func.count()).select_from(Customer)) == 1
        entry = s.scalar(select(TicketEntry).where(TicketEntry.ticket_id == ticket_id))
        assert entry is not None and entry.in_progress is False
        with pytest.raises(TicketError) as twice:
            actions.create_from_call(s, STORE, uid(s, "2001"), "c2", "Again", "", T0)
        assert twice.value.http_status == 409 and f"#{ticket_id}" in twice.value.message


def test_a_number_that_is_no_phone_number_gives_a_ticket_without_a_customer(db: Database) -> None:
    with db.session() as s:
        call(s, "c3", "2001", number="anonymous")
        ticket = s.get(Ticket, actions.create_from_call(s, STORE, uid(s, "2001"), "c3", "Withheld", "", T0))
        assert ticket is not None and ticket.customer_id is None and ticket.number == "anonymous"


@pytest.mark.parametrize(("who", "subject", "field", "status"), [
    ("2003", "Subject", "call", 404),   # not their call
    ("2001", "  ", "subject", 400),
    ("2001", "x" * 201, "subject", 400),
    ("2001", "line\nbreak", "subject", 400),
])
def test_refusals_name_the_field(db: Database, who: str, subject: str, field: str, status: int) -> None:
    with db.session() as s:
        call(s, "c4", "2001")
        with pytest.raises(TicketError) as refused:
            actions.create_from_call(s, STORE, uid(s, who), "c4", subject, "", T0)
        assert (refused.value.field, refused.value.http_status) == (field, status)
        assert tickets_count(s) == 0


def test_an_agent_who_answered_before_a_transfer_may_make_the_ticket_of_their_leg(db: Database) -> None:
    with db.session() as s:
        call(s, "c5", "2003")  # the call is now the colleague's
        s.add(AcdAttempt(call_id="c5", seq=1, user_id=uid(s, "2001"), extension="2001", started_at=T0,
                         outcome="answered"))
        s.flush()
        assert actions.create_from_call(s, STORE, uid(s, "2001"), "c5", "First leg", "", T0) > 0


def test_the_automatic_ticket_of_the_leg_is_completed_instead_of_a_second_one(db: Database) -> None:
    with db.session() as s:
        call(s, "c6", "2001", ended=True)
        auto = automatic(s, "c6", "2001", status=CLOSED)
        at = T0 + timedelta(minutes=5)
        ticket_id = actions.create_from_call(s, STORE, uid(s, "2001"), "c6", "Invoice question", "Sent a copy", at)
        assert ticket_id == auto.id and tickets_count(s) == 1
        s.refresh(auto)
        assert (auto.subject, auto.status, auto.created_by) == ("Invoice question", PENDING, uid(s, "2001"))
        entries = {e.kind: e for e in s.scalars(select(TicketEntry).where(TicketEntry.ticket_id == auto.id))}
        assert (entries["call"].body, entries["call"].author_id) == ("Sent a copy", uid(s, "2001"))
        assert (entries["subject"].old, entries["subject"].new) == ("Incoming call from +49301234567",
                                                                    "Invoice question")
        assert (entries["status"].old, entries["status"].new) == (CLOSED, PENDING)


def test_another_agents_automatic_ticket_is_not_taken(db: Database) -> None:
    with db.session() as s:
        call(s, "c7", "2003", ended=True)
        s.add(AcdAttempt(call_id="c7", seq=1, user_id=uid(s, "2001"), extension="2001", started_at=T0,
                         outcome="answered"))
        theirs = automatic(s, "c7", "2003")
        mine = actions.create_from_call(s, STORE, uid(s, "2001"), "c7", "Mine", "", T0)
        assert mine != theirs.id and tickets_count(s) == 2


# --- attach a call ---------------------------------------------------------------------------------------

def test_a_call_attached_during_the_call_is_in_progress_on_the_earlier_ticket(db: Database) -> None:
    with db.session() as s:
        call(s, "c0", "2001", ended=True)
        earlier = actions.create_from_call(s, STORE, uid(s, "2001"), "c0", "Earlier", "", T0)
        call(s, "c8", "2001")
        actions.attach_call(s, STORE, uid(s, "2001"), earlier, "c8", "Follow-up", T0 + timedelta(hours=1))
        entry = s.scalar(select(TicketEntry).where(TicketEntry.call_id == "c8"))
        assert entry is not None and (entry.ticket_id, entry.in_progress, entry.body) == (earlier, True, "Follow-up")
        ticket = s.get(Ticket, earlier)
        assert ticket is not None and ticket.status == OPEN  # the rules set pending when the leg ends
        with pytest.raises(TicketError) as again:
            actions.attach_call(s, STORE, uid(s, "2001"), earlier, "c8", "", T0)
        assert again.value.http_status == 409 and "this ticket" in again.value.message
        view = views.get_ticket(s, uid(s, "2001"), earlier)
        assert view.call_in_progress and view.waiting


def test_attaching_after_the_leg_removes_the_automatic_ticket_and_gives_pending(db: Database) -> None:
    with db.session() as s:
        agent = uid(s, "2001")
        missed = STORE.new_ticket(s, subject="Missed call from +49301234567", origin=MISSED, number="+49301234567",
                                  at=T0, assignee_id=agent, grouping=True)
        STORE.set_status(s, missed, CLOSED, T0 + timedelta(minutes=1))
        call(s, "c9", "2001", direction="outbound", ended=True)
        auto = automatic(s, "c9", "2001", origin=OUTBOUND, status=CLOSED)
        auto_id = auto.id
        actions.attach_call(s, STORE, agent, missed.id, "c9", "Called back", T0 + timedelta(minutes=9))
        assert s.get(Ticket, auto_id) is None
        assert s.scalar(select(func.count()).select_from(TicketEntry).where(TicketEntry.ticket_id == auto_id)) == 0
        s.refresh(missed)
        assert (missed.status, missed.reopened, missed.grouping, missed.answered_back) == (PENDING, 1, False, True)
        entry = s.scalar(select(TicketEntry).where(TicketEntry.call_id == "c9"))
        assert entry is not None and (entry.ticket_id, entry.in_progress) == (missed.id, False)


def test_an_automatic_ticket_someone_wrote_on_is_kept(db: Database) -> None:
    with db.session() as s:
        call(s, "c0", "2001", ended=True)
        earlier = actions.create_from_call(s, STORE, uid(s, "2001"), "c0", "Earlier", "", T0)
        call(s, "c10", "2001", ended=True)
        auto = automatic(s, "c10", "2001")
        actions.add_message(s, STORE, uid(s, "2003"), auto.id, "note", "Customer sounded upset", T0)
        actions.attach_call(s, STORE, uid(s, "2001"), earlier, "c10", "", T0)
        assert s.get(Ticket, auto.id) is not None


# --- replies, notes, changes ---------------------------------------------------------------------------

def test_replies_notes_and_changes_go_on_the_timeline(db: Database) -> None:
    with db.session() as s:
        call(s, "c11", "2001", ended=True)
        ticket_id = actions.create_from_call(s, STORE, uid(s, "2001"), "c11", "Subject", "", T0)
        me, colleague = uid(s, "2001"), uid(s, "2003")
        actions.add_message(s, STORE, me, ticket_id, "reply", "We sent it", T0)
        actions.add_message(s, STORE, me, ticket_id, "note", "Internal", T0)
        assert actions.change_status(s, STORE, me, ticket_id, CLOSED, T0) is True
        assert actions.change_status(s, STORE, me, ticket_id, CLOSED, T0) is False
        actions.change_assignee(s, STORE, me, ticket_id, colleague, T0)
        actions.change_subject(s, STORE, me, ticket_id, "New subject", T0)
        kinds = [e.kind for e in views.get_ticket(s, me, ticket_id).entries]
        assert kinds == ["call", "reply", "note", "status", "assignee", "subject"]
        with pytest.raises(TicketError) as bad:
            actions.change_status(s, STORE, me, ticket_id, "solved", T0)
        assert bad.value.field == "status"
        with pytest.raises(TicketError) as foreign:
            actions.change_assignee(s, STORE, me, ticket_id, uid(s, "2002"), T0)  # South
        assert foreign.value.field == "assignee"
        with pytest.raises(TicketError):
            actions.add_message(s, STORE, me, ticket_id, "reply", "   ", T0)


def test_call_states_of_the_timeline(db: Database) -> None:
    with db.session() as s:
        agent = uid(s, "2001")
        ids = {}
        for call_id, status in (("r1", "ready"), ("r2", "recording"), ("r3", "failed"), ("r4", None)):
            call(s, call_id, "2001", ended=True)
            if status is not None:
                s.add(Recording(id=f"rec-{call_id}", linkedid="l", channel_id="ch", acd_call_id=call_id, user_id=agent,
                                started_at=T0, status=status, path="Recordings/x.mp3" if status == "ready" else ""))
            ids[call_id] = actions.create_from_call(s, STORE, agent, call_id, "S", "", T0)
        s.flush()
        states = {c: views.get_ticket(s, agent, t).entries[0] for c, t in ids.items()}
        assert (states["r1"].call, states["r1"].recording_id) == (views.READY, "rec-r1")
        assert [states[c].call for c in ("r2", "r3", "r4")] == [views.PREPARING, views.FAILED, views.NONE]
        assert views.ticket_recording(s, agent, ids["r1"], "rec-r1") == "Recordings/x.mp3"
        assert views.ticket_recording(s, agent, ids["r2"], "rec-r1") is None  # not a call of that ticket
        state = views.ticket_state(s, agent, ids["r2"])
        assert state["waiting"] is True and state["call_in_progress"] is False


# --- scopes ----------------------------------------------------------------------------------------------

def test_units_see_only_their_tickets_and_top_admins_all(db: Database) -> None:
    with db.session() as s:
        call(s, "n1", "2001")
        north = actions.create_from_call(s, STORE, uid(s, "2001"), "n1", "North ticket", "", T0)
        call(s, "s1", "2002", number="040 123456")
        south = actions.create_from_call(s, STORE, uid(s, "2002"), "s1", "South ticket", "", T0)
        nobody = STORE.new_ticket(s, subject="Missed call from +4930999", origin=MISSED, number="+4930999", at=T0)
        everything = views.TicketFilters()

        def seen(key: str) -> set[int]:
            return {r.id for r in views.list_tickets(s, uid(s, key), everything, 1, 50).rows}

        assert seen("2001") == seen("2003") == seen("nadmin") == seen("boss") == {north}
        assert seen("2002") == seen("sadmin") == {south}
        assert seen("root") == {north, south, nobody.id}
        for key, ticket_id in (("2002", north), ("sadmin", north), ("2001", south), ("nadmin", nobody.id)):
            with pytest.raises(TicketError) as hidden:
                views.get_ticket(s, uid(s, key), ticket_id)
            assert hidden.value.http_status == 404
        with pytest.raises(TicketError):
            actions.add_message(s, STORE, uid(s, "2002"), north, "note", "sneaky", T0)
        with pytest.raises(TicketError):
            actions.attach_call(s, STORE, uid(s, "2002"), north, "s1", "", T0)
        assert views.get_ticket(s, uid(s, "root"), nobody.id).row.unit == ""


@pytest.mark.parametrize("who", ["2009", "lost"])
def test_a_user_of_no_unit_sees_nothing(db: Database, who: str) -> None:
    with db.session() as s:
        call(s, "x1", "2001")
        ticket_id = actions.create_from_call(s, STORE, uid(s, "2001"), "x1", "North", "", T0)
        for attempt in (lambda: views.list_tickets(s, uid(s, who), views.TicketFilters(), 1, 50),
                        lambda: views.get_ticket(s, uid(s, who), ticket_id),
                        lambda: actions.change_status(s, STORE, uid(s, who), ticket_id, CLOSED, T0)):
            with pytest.raises(ActionRefused) as refused:
                attempt()
            assert refused.value.http_status == 403


def test_filters(db: Database) -> None:
    with db.session() as s:
        me = uid(s, "2001")
        create_customer(s, me, CustomerInput("Zed Zebra", ["030 7654321"]), REGION)
        call(s, "f1", "2001", number="030 7654321")
        zed = actions.create_from_call(s, STORE, me, "f1", "Zed's ticket", "", T0)
        call(s, "f2", "2001", direction="outbound")
        other = actions.create_from_call(s, STORE, me, "f2", "Other", "", T0 + timedelta(days=2))
        actions.change_assignee(s, STORE, me, other, None, T0)

        def found(**given: object) -> list[int]:
            return [r.id for r in views.list_tickets(s, me, views.TicketFilters(**given), 1, 50).rows]  # type: ignore[arg-type]

        assert found(text="zebra") == found(text="7654") == found(origin=INBOUND) == [zed]
        assert found(assignee="unassigned") == found(origin=OUTBOUND) == [other]
        assert found(assignee="me") == [zed]
        assert found(day_from=(T0 + timedelta(days=1)).date()) == [other]
        with pytest.raises(TicketError) as bad:
            found(status="done")
        assert bad.value.field == "status"


def test_a_ticket_made_after_an_outbound_leg_closes_the_numbers_missed_call_ticket(db: Database) -> None:
    with db.session() as s:
        missed = STORE.new_ticket(s, subject="Missed call from +49301234567", origin=MISSED, number="+49301234567",
                                  at=T0, grouping=True)
        call(s, "o1", "2001", direction="outbound", ended=True)
        auto = automatic(s, "o1", "2001", origin=OUTBOUND, status=CLOSED)  # item 10: nobody wrote anything
        actions.create_from_call(s, STORE, uid(s, "2001"), "o1", "Called the customer", "", T0 + timedelta(hours=1))
        s.refresh(missed)
        s.refresh(auto)
        assert (missed.status, auto.status) == (CLOSED, PENDING)  # item 18d


def test_the_screen_pops_open_tickets_carry_their_unit(db: Database) -> None:
    with db.session() as s:
        call(s, "p1", "2001")
        mine = actions.create_from_call(s, STORE, uid(s, "2001"), "p1", "Open one", "", T0)
        call(s, "p2", "2001", ended=True)
        done = actions.create_from_call(s, STORE, uid(s, "2001"), "p2", "Closed one", "", T0)
        actions.change_status(s, STORE, uid(s, "2001"), done, CLOSED, T0)
        customer = s.get(Ticket, mine)
        assert customer is not None
        north = s.scalar(select(User.org_unit_id).where(User.login == "2001"))
        found = views.card_tickets(s, customer.customer_id, "+49301234567")
        assert [t["id"] for t in found] == [mine] and found[0]["subject"] == "Open one"
        assert found[0]["unit_id"] == north  # the agent page shows an agent those of their unit only
        assert views.card_tickets(s, None, "+49301234567")[0]["id"] == mine
        assert views.card_tickets(s, None, "") == []
