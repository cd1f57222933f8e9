"""Picking the contacts to dial: calling windows in each contact's zones, the do-not-call list added after
an import, callbacks first, agents' own callbacks apart; crash recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import DialerAttempt, DialerContact
from callcenter.dialer import store
from callcenter.dialer.contacts import ColumnMap
from callcenter.dialer.rules import CallingWindow
from callcenter.users import services as users

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 13:00 in Warsaw, 07:00 in New York, 21:00 in Tokyo
CSV = """phone,name,tz
+48221110001,Warsaw Day,Europe/Warsaw
+12125550101,New York Early,America/New_York
+48221110002,Tokyo Night,Asia/Tokyo
+48221110003,Later Blocked,Europe/Warsaw
+48221110004,Warsaw Too,Europe/Warsaw
"""


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'd.db'}")
    database.migrate()
    with database.session() as session:
        done = store.import_list(session, "spring", "list.csv", CSV.splitlines(keepends=True),
                                 ColumnMap(number="phone", name="name", timezone="tz"), region="PL",
                                 timezone=None, by="test", now=NOW)
        assert len(done.result.contacts) == 5
    return database


def test_only_contacts_inside_their_window_are_taken_the_others_wait_for_its_opening(db: Database) -> None:
    with db.session() as session:
        store.add_dnc(session, ["+48221110003"], "spring", "agent 2001", NOW)
    with db.session() as session:
        taken = store.take_due(session, "spring", CallingWindow(), NOW, 10)
    assert [c.name for c in taken] == ["Warsaw Day", "Warsaw Too"]
    with db.session() as session:
        rows = {c.name: c for c in session.scalars(select(DialerContact))}
    assert rows["Warsaw Day"].status == "dialing" and rows["Warsaw Day"].attempts == 1
    assert rows["Later Blocked"].status == "dnc"
    # 08:00 in New York is 13:00 UTC; 08:00 tomorrow in Tokyo is 23:00 UTC today.
    assert rows["New York Early"].status == "pending"
    assert rows["New York Early"].not_before == NOW + timedelta(hours=1)
    assert rows["Tokyo Night"].not_before == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    with db.session() as session:
        assert store.take_due(session, "spring", CallingWindow(), NOW + timedelta(minutes=59), 10) == []
        later = store.take_due(session, "spring", CallingWindow(), NOW + timedelta(hours=1), 10)
    assert [c.name for c in later] == ["New York Early"]


def test_callbacks_come_first_and_an_agents_own_wait_for_that_agent(db: Database) -> None:
    with db.session() as session:
        users.seed_demo(session)
    with db.session() as session:
        bob, carol = (users.find_user(session, ext).id for ext in ("2002", "2003"))
        ids = {c.name: c.id for c in session.scalars(select(DialerContact))}
        store.contact_done(session, ids["Warsaw Too"], "callback", NOW - timedelta(minutes=1), "call me", "")
        store.contact_done(session, ids["Warsaw Day"], "callback", NOW - timedelta(minutes=1), "only Bob", "",
                           callback_agent_id=bob)
    with db.session() as session:
        assert store.agents_with_due_callbacks(session, "spring", [bob, carol], NOW) == [bob]
        assert store.agents_with_due_callbacks(session, "spring", [bob], NOW - timedelta(minutes=2)) == []
        first = store.take_due(session, "spring", CallingWindow(), NOW, 1)
        mine = store.take_due(session, "spring", CallingWindow(), NOW, 5, agent_id=bob)
        nobody = store.take_due(session, "spring", CallingWindow(), NOW, 5, agent_id=carol)
    assert [c.name for c in first] == ["Warsaw Too"]
    assert [c.name for c in mine] == ["Warsaw Day"] and nobody == []


def test_a_restart_frees_the_contacts_of_calls_it_lost(db: Database) -> None:
    with db.session() as session:
        (taken,) = store.take_due(session, "spring", CallingWindow(), NOW, 1)
        session.add(DialerAttempt(id="a1", campaign="spring", contact_id=taken.id, number=taken.number,
                                  mode="predictive", placed_at=NOW, outcome=""))
    with db.session() as session:
        assert store.recover(session, NOW + timedelta(minutes=1)) == 1
    with db.session() as session:
        attempt = session.get(DialerAttempt, "a1")
        contact = session.get(DialerContact, taken.id)
        assert attempt is not None and contact is not None
        assert (attempt.outcome, contact.status) == ("lost", "pending")


def test_a_number_spanning_many_zones_keeps_the_earliest_and_the_latest() -> None:
    zones = ("America/New_York", "Pacific/Honolulu", "America/Chicago", "America/Los_Angeles")
    assert store.bounding_zones(zones, NOW) == ("Pacific/Honolulu", "America/New_York")
    assert store.bounding_zones(("Europe/Warsaw",), NOW) == ("Europe/Warsaw",)
