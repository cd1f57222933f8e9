"""The screen pop (TEL-4) and the agents' customer pages: the caller's card (acd/records.customer_card and
the panel's view of it: profile, on-card fields, last calls with their recordings, tickets; an unknown
number), the customer pages an agent opens in their unit, a recording of a customer's call, and "search
the customer database to link" (/customers/link: scope, a number that is another customer's, E.164)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.model import CustomerCard
from callcenter.acd.panel import customer_view, history_view
from callcenter.acd.records import customer_card
from callcenter.customers import admin_http as customers_admin_http
from callcenter.customers import http as customers_http
from callcenter.customers.fields import CustomerError, FieldInput, save_field
from callcenter.customers.models import CustomerPhone
from callcenter.customers.services import link_number
from callcenter.db.engine import Database
from callcenter.db.models import AcdCall, Recording, User
from callcenter.errors import ActionRefused
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import PanelUser
from callcenter.users.services import add_user
from callcenter.web import admin_pages
from tests.support.webapp import build_app
from tests.unit.test_customers import REGION, USERS, build_template, new, password, uid
from tests.unit.test_web import FakeBackend, login

Client = TestClient[web.Request, web.Application]
T0 = datetime(2030, 1, 5, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_template(tmp_path_factory.mktemp("screen-pop"))
    db = Database(f"sqlite:///{root / 'cc.db'}")
    with db.session() as session:
        add_user(session, name="Una Unitless", login="2009", extension="2009", roles=("agent",),
                 panel_password=password("2009"))
    db.dispose()
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Iterator[Database]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    yield database
    database.dispose()


def acd_row(s: Session, row_id: str, number: str, at: datetime, agent: str | None = "2001",
            outcome: str = "answered") -> None:
    s.add(AcdCall(id=row_id, channel_id=f"ch-{row_id}", direction="inbound", queue="sales", number=number,
                  entered_at=at, ended_at=at + timedelta(minutes=3), outcome=outcome,
                  agent_id=uid(s, agent) if agent else None))


def recording(s: Session, rec_id: str, call_id: str, user: str, at: datetime, status: str = "ready",
              path: str = "") -> None:
    user_row = s.get(User, uid(s, user))
    assert user_row is not None
    s.add(Recording(id=rec_id, linkedid=f"link-{call_id}", channel_id=f"ch-{call_id}", acd_call_id=call_id,
                    user_id=user_row.id, unit_id=user_row.org_unit_id, started_at=at, status=status, path=path))


# --- the card ----------------------------------------------------------------------------------------

def test_a_known_callers_card_has_the_profile_on_card_fields_last_calls_and_recordings(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("tier", "Tier", on_card=True, position=1))
        save_field(s, FieldInput("vat", "VAT id", position=2))
        cid = new(s, "nadmin", "Ada <Lovelace>", "+49301234567", "+4940123456", email="ada@example.org",
                  company="Engines", note="VIP", values={"tier": "gold", "vat": "DE1"})
        acd_row(s, "c1", "+49301234567", T0)
        acd_row(s, "c2", "040123456", T0 + timedelta(hours=1), outcome="abandoned", agent=None)
        acd_row(s, "c3", "+4999999999", T0 + timedelta(hours=2))  # someone else
        s.flush()
        recording(s, "rec-1", "c1", "2001", T0)
        recording(s, "rec-2", "c2", "2001", T0, status="recording")  # not ready: no link
    with db.session() as s:
        card = customer_card(s, "0301234567", region="DE")  # national, as a phone shows it
        assert card is not None and card.customer_id == cid
        assert (card.name, card.email, card.company, card.note) == ("Ada <Lovelace>", "ada@example.org", "Engines",
                                                                    "VIP")
        assert card.phones == ["+49301234567", "+4940123456"]
        assert card.fields == {"Tier": "gold"}  # on the card: only the marked fields
        assert card.profile == {"Tier": "gold", "VAT id": "DE1"}
        assert [(h["outcome"], h["agent"], h["queue"], h["recording"]) for h in card.history] == [
            ("abandoned", "", "sales", ""), ("answered", "Alice Agent", "sales", "rec-1")]
        assert card.tickets == []
        assert customer_card(s, "0301234567") is None  # without the region a national number finds nobody
    shown = customer_view(card)
    assert shown is not None and shown["id"] == cid and shown["profile"] == [["Tier", "gold"], ["VAT id", "DE1"]]
    assert [h["recording"] for h in history_view(card)] == ["", f"/customers/{cid}/recordings/rec-1"]


def test_an_unknown_number_has_no_customer_and_only_its_own_calls(db: Database) -> None:
    with db.session() as s:
        assert customer_card(s, "+4915550000", region="DE") is None  # never called, no customer
        acd_row(s, "u1", "+4915550000", T0)
        s.flush()
        recording(s, "rec-u", "u1", "2001", T0)
    with db.session() as s:
        card = customer_card(s, "+4915550000", region="DE")
        assert card is not None and card.customer_id is None and card.name == ""
        assert [h["recording"] for h in card.history] == ["rec-u"]
    assert customer_view(card) is None  # the page says "not in the customer database"
    assert [h["recording"] for h in history_view(card)] == [""]  # no customer page to play it from
    campaign = CustomerCard("Dora from the list", "", [], {"plan": "basic"})
    assert customer_view(campaign) == {"name": "Dora from the list", "note": ""}  # no id: not a customer


# --- linking a number --------------------------------------------------------------------------------

def test_link_number_normalises_refuses_another_customers_number_and_other_units(db: Database) -> None:
    with db.session() as s:
        ada = new(s, "nadmin", "Ada", "+49301234567")
        nina = new(s, "nadmin", "Nina", "+49305555555")
        sven = new(s, "sadmin", "Sven", "+49302222222")
    with db.session() as s:
        agent = uid(s, "2001")
        assert link_number(s, agent, ada, "040 / 12 34 56", REGION) == "+4940123456"
        assert link_number(s, agent, ada, "+49 40 123456", REGION) == "+4940123456"  # already its: no repeat
        with pytest.raises(CustomerError) as taken:
            link_number(s, agent, ada, "030 5555555", REGION)
        assert taken.value.http_status == 409
        assert taken.value.message == f"+49305555555 already belongs to Nina (#{nina})"
        with pytest.raises(CustomerError) as hidden:
            link_number(s, agent, ada, "030 2222222", REGION)
        assert hidden.value.message == "+49302222222 already belongs to another customer"
        with pytest.raises(CustomerError) as outside:
            link_number(s, agent, sven, "040 999999", REGION)
        assert outside.value.http_status == 404
        with pytest.raises(CustomerError, match="not a valid number"):
            link_number(s, agent, ada, "12", REGION)
        with pytest.raises(ActionRefused, match="no organisational unit"):
            link_number(s, uid(s, "2009"), ada, "040 888888", REGION)
    with db.session() as s:
        assert sorted(s.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == ada))) == [
            "+49301234567", "+4940123456"]


# --- pages -------------------------------------------------------------------------------------------

@dataclass
class World:
    db: Database
    client: Client
    files: Path

    async def login(self, key: str) -> str:
        self.client.session.cookie_jar.clear()
        return (await login(self.client, key, password(key))).csrf

    async def get(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return text

    async def post(self, path: str, data: dict[str, str], status: int = 303) -> tuple[str, str]:
        response = await self.client.post(path, data=data, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return response.headers.get("Location", ""), text


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    panel = FakeBackend()
    with db.session() as session:
        panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                       for u in session.scalars(select(User))}
    panel.passwords = {key: password(key) for key in [*USERS, "2009"]}
    app = build_app(panel)
    admin_pages.install(app, AdminScopes(db))
    customers_http.install(app, customers_http.CustomerPages(db, REGION, tmp_path / "files"))
    customers_admin_http.install(app)
    async with TestClient(TestServer(app)) as client:
        yield World(db, client, tmp_path / "files")


async def test_an_agent_searches_creates_edits_and_links_in_their_unit(world: World) -> None:
    with world.db.session() as s:
        ada = new(s, "nadmin", "Ada Lovelace", "+49301234567", company="Engines")
        nina = new(s, "nadmin", "Nina North", "+49305555555")
        sven = new(s, "sadmin", "Sven Engines", "+49302222222")
    csrf = await world.login("2001")
    listed = await world.get("/customers?q=engines")
    assert f'data-customer="{ada}"' in listed and f'data-customer="{sven}"' not in listed
    assert 'id="link-merge"' not in listed and 'id="link-import"' not in listed  # the admins' pages
    await world.get(f"/customers/{sven}", 404)
    created, _ = await world.post("/customers", {"csrf": csrf, "name": "<i>Carl</i>", "phones": "030 7777777"})
    assert "&lt;i&gt;Carl&lt;/i&gt;" in await world.get(created)
    await world.post(created, {"csrf": csrf, "name": "Carl", "phones": "030 7777777", "company": "Mine"})
    assert "Mine" in await world.get(created)

    page = await world.get("/customers/link?number=040%20123456&call=rec123&q=lovelace")
    assert f'data-customer="{ada}"' in page and 'name="number" value="040 123456"' in page
    assert 'name="call" value="rec123"' in page
    where, _ = await world.post("/customers/link", {"csrf": csrf, "customer": str(ada), "number": "040 123456",
                                                    "call": "rec123"})
    assert where == f"/customers/{ada}?linked=1"
    assert "+49301234567, +4940123456" in await world.get(where)
    _, refused = await world.post("/customers/link", {"csrf": csrf, "customer": str(nina), "number": "040 123456"},
                                  409)
    assert f"+4940123456 already belongs to Ada Lovelace (#{ada})" in refused
    _, outside = await world.post("/customers/link", {"csrf": csrf, "customer": str(sven), "number": "040 9999"}, 404)
    assert "No such customer" in outside
    no_csrf = await world.client.post("/customers/link", data={"customer": str(ada), "number": "040 1"},
                                      allow_redirects=False)
    assert no_csrf.status == 403
    await world.get("/customers/link?q=ada", 400)  # no number to link

    await world.login("2009")  # an agent of no unit: told why
    assert "no organisational unit" in await world.get("/customers", 403)
    await world.post("/customers/link", {"csrf": "x", "customer": str(ada), "number": "040 1"}, 403)


async def test_a_recording_of_the_customers_call_plays_in_scope_only(world: World) -> None:
    (world.files / "Recordings").mkdir(parents=True)
    (world.files / "Recordings" / "a.mp3").write_bytes(b"ID3 fake mp3")
    with world.db.session() as s:
        ada = new(s, "nadmin", "Ada", "+49301234567")
        other = new(s, "nadmin", "Otto", "+49306666666")
        acd_row(s, "c1", "+49301234567", T0)
        s.flush()
        recording(s, "rec1", "c1", "2001", T0, path="Recordings/a.mp3")
    await world.login("2001")
    await world.get(f"/customers/{ada}")
    audio = await world.client.get(f"/customers/{ada}/recordings/rec1")
    assert audio.status == 200 and await audio.read() == b"ID3 fake mp3"
    await world.get(f"/customers/{other}/recordings/rec1", 404)  # not this customer's call
    await world.get(f"/customers/{ada}/recordings/..%2F..%2Fcc.db", 404)
    await world.login("sadmin")
    await world.get(f"/customers/{ada}/recordings/rec1", 404)  # another unit's customer
    assert re.search("No such customer", await world.get(f"/customers/{ada}", 404))
