"""Customers (CRM-1, callcenter/customers/): create and change with validation, custom fields, search,
merge, the CSV import with its per-row report, history, unit scopes, and the admin pages on aiohttp's
test client (set up as tests/unit/test_web_admin.py does)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.records import customer_card
from callcenter.customers import admin_http as customers_admin_http
from callcenter.customers import http as customers_http
from callcenter.customers.fields import CustomerError, FieldInput, remove_field, save_field
from callcenter.customers.history import customer_history
from callcenter.customers.importer import CustomerImportError, import_customers
from callcenter.customers.models import Customer, CustomerFieldValue, CustomerPhone
from callcenter.customers.services import (
    CustomerInput,
    create_customer,
    get_customer,
    merge_customers,
    search_customers,
    update_customer,
)
from callcenter.db.engine import Database
from callcenter.db.models import Call, Callback, Cdr, CdrUser, Recording, User
from callcenter.errors import ActionRefused
from callcenter.users import units
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import PanelUser
from callcenter.users.services import add_user
from callcenter.web import admin_pages
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, login

Client = TestClient[web.Request, web.Application]
REGION = "DE"
NOW = datetime(2030, 1, 5, 12, tzinfo=UTC)

# login -> (name, roles, unit); nadmin manages North, sadmin South, root every unit, lost nothing.
USERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "root": ("Rita Root", ("admin",), None),
    "nadmin": ("Nora North", ("admin",), "North"),
    "sadmin": ("Sam South", ("admin",), "South"),
    "boss": ("Bea Boss", ("supervisor",), "North"),
    "lost": ("Lou Lost", ("admin",), None),
    "2001": ("Alice Agent", ("agent",), "North"),
}


def password(name: str) -> str:
    return f"{name}-password"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("customers"))


def build_template(root: Path) -> Path:
    """A migrated database with USERS in units North and South (root: every unit)."""
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    with db.session() as session:
        for key, (name, roles, unit) in USERS.items():
            add_user(session, name=name, login=key, roles=roles, org_unit=unit, panel_password=password(key))
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


def uid(session: Session, key: str) -> int:
    found = session.scalar(select(User.id).where(User.login == key))
    assert found is not None
    return found


def new(session: Session, key: str, name: str, *phones: str, **extra: object) -> int:
    return create_customer(session, uid(session, key), CustomerInput(name, phones, **extra), REGION)  # type: ignore[arg-type]


# --- services ----------------------------------------------------------------------------------------

def test_create_normalises_numbers_and_keeps_the_creators_unit(db: Database) -> None:
    with db.session() as s:
        cid = new(s, "nadmin", "Ada Lovelace", "030 1234567", "+49 (30) 1234567", "0049 40 123456",
                  email="ada@example.org", company="Engines")
        view = get_customer(s, uid(s, "nadmin"), cid)
        assert view.phones == ("+49301234567", "+4940123456")
        assert (view.email, view.company, view.unit) == ("ada@example.org", "Engines", "North")


@pytest.mark.parametrize(("data", "field", "message"), [
    (CustomerInput(""), "name", "Name is required"),
    (CustomerInput("A", email="not-an-address"), "email", "is not an e-mail address"),
    (CustomerInput("A", phones=["12"]), "phones", "'12' is not a valid number for DE"),
    (CustomerInput("A", phones=["call me"]), "phones", "is not a phone number"),
    (CustomerInput("A", company="x" * 201), "company", "at most 200"),
])
def test_bad_input_is_refused_with_a_message_per_field(db: Database, data: CustomerInput, field: str,
                                                       message: str) -> None:
    with db.session() as s, pytest.raises(CustomerError) as refused:
        create_customer(s, uid(s, "root"), data, REGION)
    assert refused.value.field == field and message in refused.value.message


def test_a_number_belongs_to_one_customer(db: Database) -> None:
    with db.session() as s:
        new(s, "nadmin", "Ada", "+49301234567")
    with db.session() as s, pytest.raises(CustomerError, match=r"already belongs to Ada \(#1\)"):
        new(s, "nadmin", "Bob", "030 1234567")
    with db.session() as s, pytest.raises(CustomerError, match="already belongs to another customer"):
        new(s, "sadmin", "Bob", "030 1234567")  # out of South's scope: not named


def test_custom_fields_are_required_and_checked_by_kind(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("tier", "Tier", "choice", ("gold", "silver"), required=True, on_card=True))
        save_field(s, FieldInput("since", "Customer since", "date"))
        save_field(s, FieldInput("credit", "Credit", "number"))
    with db.session() as s, pytest.raises(CustomerError, match="Tier is required"):
        new(s, "root", "Ada")
    for values, message in (({"tier": "bronze"}, "one of gold, silver"),
                            ({"tier": "gold", "since": "5.1.2030"}, "is not a date"),
                            ({"tier": "gold", "credit": "lots"}, "is not a number")):
        with db.session() as s, pytest.raises(CustomerError, match=message):
            new(s, "root", "Ada", values=values)
    with db.session() as s:
        cid = new(s, "root", "Ada", values={"tier": "gold", "since": "2030-01-05", "credit": "12,5"})
        view = get_customer(s, uid(s, "root"), cid)
        assert (view.value("tier"), view.value("since"), view.value("credit")) == ("gold", "2030-01-05", "12.5")
    with db.session() as s, pytest.raises(CustomerError, match="built-in field"):
        save_field(s, FieldInput("email", "E-mail"))
    with db.session() as s, pytest.raises(CustomerError, match="needs at least one choice"):
        save_field(s, FieldInput("colour", "Colour", "choice"))
    with db.session() as s:
        remove_field(s, "tier")
        assert [spec.name for spec, _ in get_customer(s, uid(s, "root"), cid).values] == ["credit", "since"]


def test_update_replaces_numbers_and_values(db: Database) -> None:
    with db.session() as s:
        cid = new(s, "nadmin", "Ada", "+49301234567", "+4940123456")
        update_customer(s, uid(s, "nadmin"), cid, CustomerInput("Ada L.", ["+4940123456", "089 123456"]), REGION)
        view = get_customer(s, uid(s, "nadmin"), cid)
        assert view.name == "Ada L." and view.phones == ("+4940123456", "+4989123456")


def test_search_by_any_field_paginated(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("contract", "Contract"))
        for i in range(7):
            new(s, "root", f"Person {i}", f"+4930100{i:04d}", email=f"p{i}@mail.example",
                company="Acme" if i % 2 else "Globex", values={"contract": f"K-{i}77"})
        root = uid(s, "root")
        assert search_customers(s, root, "", 1, 50).total == 7
        assert [r.name for r in search_customers(s, root, "acme", 1, 50).rows] == ["Person 1", "Person 3",
                                                                                   "Person 5"]
        assert [r.name for r in search_customers(s, root, "0005", 1, 50).rows] == ["Person 5"]
        assert [r.name for r in search_customers(s, root, "30 1000 006", 1, 50).rows] == ["Person 6"]
        assert [r.name for r in search_customers(s, root, "P2@MAIL", 1, 50).rows] == ["Person 2"]
        assert [r.name for r in search_customers(s, root, "k-477", 1, 50).rows] == ["Person 4"]
        assert search_customers(s, root, "50%", 1, 50).total == 0  # wildcards are text
        second = search_customers(s, root, "person", 2, 3)
        assert (second.page, second.pages, second.total) == (2, 3, 7)
        assert [r.name for r in second.rows] == ["Person 3", "Person 4", "Person 5"]


def test_units_see_only_their_customers_and_fail_closed(db: Database) -> None:
    with db.session() as s:
        north = new(s, "nadmin", "Nina North", "+49301111111")
        south = new(s, "sadmin", "Sven South", "+49302222222")
    with db.session() as s:
        assert [r.name for r in search_customers(s, uid(s, "nadmin"), "", 1, 50).rows] == ["Nina North"]
        assert [r.name for r in search_customers(s, uid(s, "boss"), "", 1, 50).rows] == ["Nina North"]
        assert [r.name for r in search_customers(s, uid(s, "sadmin"), "", 1, 50).rows] == ["Sven South"]
        assert search_customers(s, uid(s, "root"), "", 1, 50).total == 2
        with pytest.raises(CustomerError) as hidden:
            get_customer(s, uid(s, "nadmin"), south)
        assert hidden.value.http_status == 404
        with pytest.raises(CustomerError):
            update_customer(s, uid(s, "sadmin"), north, CustomerInput("Mine"), REGION)
        with pytest.raises(CustomerError):
            merge_customers(s, uid(s, "nadmin"), north, south)
        with pytest.raises(ActionRefused, match="no organisational unit"):
            search_customers(s, uid(s, "lost"), "", 1, 50)
        # an agent sees the customers of the unit they are in (North), and may not merge
        assert [r.name for r in search_customers(s, uid(s, "2001"), "", 1, 50).rows] == ["Nina North"]
        with pytest.raises(CustomerError) as hidden:
            get_customer(s, uid(s, "2001"), south)
        assert hidden.value.http_status == 404
        with pytest.raises(ActionRefused, match="admins and supervisors"):
            merge_customers(s, uid(s, "2001"), north, north + 1)
    with db.session() as s:  # the customer stays in North when its creator moves
        s.execute(User.__table__.update().where(User.login == "nadmin").values(
            org_unit_id=s.scalar(select(User.org_unit_id).where(User.login == "sadmin"))))
    with db.session() as s:
        assert get_customer(s, uid(s, "root"), north).unit == "North"


def test_merge_moves_numbers_values_and_history_and_keeps_the_kept_ones_values(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("tier", "Tier"))
        save_field(s, FieldInput("vat", "VAT id"))
        keep = new(s, "root", "Ada", "+49301234567", company="Engines", values={"tier": "gold"})
        other = new(s, "root", "Ada L.", "+4940123456", email="ada@example.org", company="Other",
                    values={"tier": "silver", "vat": "DE123"})
        s.add(Callback(number="+4940123456", reason="missed", first_at=NOW, last_at=NOW))
    with db.session() as s:
        merge_customers(s, uid(s, "root"), keep, other)
    with db.session() as s:
        view = get_customer(s, uid(s, "root"), keep)
        assert view.phones == ("+49301234567", "+4940123456")
        assert (view.email, view.company, view.value("tier"), view.value("vat")) == (
            "ada@example.org", "Engines", "gold", "DE123")
        assert s.get(Customer, other) is None
        assert s.scalars(select(CustomerFieldValue.customer_id).distinct()).all() == [keep]
        assert [h.kind for h in customer_history(s, uid(s, "root"), keep)] == ["callback"]
        with pytest.raises(CustomerError, match="two different"):
            merge_customers(s, uid(s, "root"), keep, keep)


def _call(s: Session, cdr_id: int, when: datetime, src: str, dst: str, user: str, recording: bool) -> None:
    call = Call(linkedid=f"link-{cdr_id}", started_at=when, state="done")
    s.add(call)
    s.flush()
    s.add(Cdr(id=cdr_id, call_id=call.id, linkedid=call.linkedid, calldate=when, src=src, dst=dst, duration=30,
              billsec=20, disposition="ANSWERED"))
    s.flush()
    user_id = uid(s, user)
    s.add(CdrUser(cdr_id=cdr_id, user_id=user_id, unit_id=s.get(User, user_id).org_unit_id))  # type: ignore[union-attr]
    if recording:
        s.add(Recording(id=f"rec-{cdr_id}", linkedid=call.linkedid, channel_id=f"c-{cdr_id}", started_at=when,
                        status="ready", unit_id=s.get(User, user_id).org_unit_id))  # type: ignore[union-attr]


def test_history_lists_calls_with_recordings_and_callbacks_newest_first_in_scope(db: Database) -> None:
    with db.session() as s:
        add_user(s, name="Sue", login="2002", extension="2002", roles=("agent",), org_unit="South",
                 panel_password="x")
        cid = new(s, "root", "Ada", "+49301234567")
        _call(s, 1, datetime(2030, 1, 1, tzinfo=UTC), "+49301234567", "600", "2001", True)
        _call(s, 2, datetime(2030, 1, 3, tzinfo=UTC), "2001", "0301234567", "2001", False)
        _call(s, 3, datetime(2030, 1, 4, tzinfo=UTC), "49301234567", "600", "2002", False)
        _call(s, 4, datetime(2030, 1, 6, tzinfo=UTC), "+4999999999", "600", "2001", False)
        s.add(Callback(number="+49301234567", reason="abandoned", first_at=NOW, last_at=NOW, queue="sales"))
    with db.session() as s:
        history = customer_history(s, uid(s, "root"), cid)
        assert [(h.kind, h.at.day) for h in history] == [("callback", 5), ("call", 4), ("call", 3), ("call", 1)]
        assert history[-1].recording_id == "rec-1" and "Inbound" in history[-1].summary
        assert "Outbound" in history[2].summary
        s.execute(Customer.__table__.update().values(org_unit_id=None))
        s.execute(Customer.__table__.update().where(Customer.id == cid).values(
            org_unit_id=s.scalar(select(User.org_unit_id).where(User.login == "nadmin"))))
    with db.session() as s:  # North's admin does not see South's call
        assert [h.at.day for h in customer_history(s, uid(s, "nadmin"), cid)] == [5, 3, 1]


def test_the_screen_pop_finds_the_customer_by_any_number(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("tier", "Tier", on_card=True, position=2))
        save_field(s, FieldInput("vat", "VAT id"))
        save_field(s, FieldInput("city", "City", on_card=True, position=1))
        new(s, "root", "Ada", "+49301234567", "+4940123456", note="VIP", values={"tier": "gold", "vat": "DE1"})
        card = customer_card(s, "+4940123456")
        assert card is not None and (card.name, card.note, card.fields) == ("Ada", "VIP", {"Tier": "gold"})
        assert customer_card(s, "4940123456") is not None
        assert customer_card(s, "+4999") is None


# --- import ------------------------------------------------------------------------------------------

CSV = """Name;Phone;E-mail;Company;Notes;Tier;Shoe size
Ada Lovelace;030 1234567; ada@example.org ;Engines;likes =SUM(1);gold;42
Bad Number;12345;;;;gold;
Bob;+4940123456;bob@;;;gold;
Carl;+4989123456;;;;bronze;
;030 1234567;;Engines Ltd;;;
"Dora, D.";"+4989999999 ; +49 30 5555555";;;;silver;

Eve;"unclosed
"""


def test_import_keeps_good_rows_reports_bad_ones_and_updates_by_number(db: Database) -> None:
    with db.session() as s:
        save_field(s, FieldInput("tier", "Tier", "choice", ("gold", "silver")))
        existing = new(s, "nadmin", "Old Dora", "+4930555 5555")
    with db.session() as s:
        report = import_customers(s, uid(s, "nadmin"), CSV, REGION)
    assert [(p.line, p.reason) for p in report.problems] == [
        (1, "column 'Shoe size' is not a customer field: ignored"),
        (3, "'12345' is not a valid number for DE"),
        (4, "E-mail: 'bob@' is not an e-mail address"),
        (5, "Tier: one of gold, silver"),
        (9, "a quote opened here is never closed: lines 9-9 were not read"),
    ]
    assert report.summary() == "1 created, 2 updated, 5 problems"
    with db.session() as s:
        nadmin = uid(s, "nadmin")
        ada = get_customer(s, nadmin, report.created[0])
        assert (ada.name, ada.email, ada.note, ada.company, ada.value("tier")) == (
            "Ada Lovelace", "ada@example.org", "likes =SUM(1)", "Engines Ltd", "gold")  # line 6 updated it
        dora = get_customer(s, nadmin, existing)
        assert dora.name == "Dora, D." and dora.phones == ("+49305555555", "+4989999999")
        assert dora.value("tier") == "silver" and dora.unit == "North"
        assert s.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.number == "+49301234567")) == ada.id


def test_import_refuses_whole_files_it_cannot_read_and_other_units_numbers(db: Database) -> None:
    with db.session() as s:
        new(s, "sadmin", "Sven", "+49302222222")
    with db.session() as s:
        for text, message in (("", "empty"), ("colour\nred\n", "needs a name or a phone column"),
                              ("name,phone,phones\n", "two columns mean the same field")):
            with pytest.raises(CustomerImportError, match=message):
                import_customers(s, uid(s, "nadmin"), text, REGION)
        with pytest.raises(CustomerImportError, match="more than 2 rows"):
            import_customers(s, uid(s, "nadmin"), "name\na\nb\nc\n", REGION, max_rows=2)
        report = import_customers(s, uid(s, "nadmin"), "name,phone\nMine,+49302222222\n", REGION)
        assert [p.reason for p in report.problems] == ["the number belongs to a customer outside your units"]


# --- pages -------------------------------------------------------------------------------------------

@dataclass
class World:
    db: Database
    client: Client

    async def login(self, key: str) -> str:
        self.client.session.cookie_jar.clear()
        return (await login(self.client, key, password(key))).csrf

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return text

    async def post(self, path: str, data: dict[str, str] | FormData, status: int = 303) -> web.StreamResponse:
        response = await self.client.post(path, data=data, allow_redirects=False)
        assert response.status == status, await response.text()
        return response  # type: ignore[return-value]


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    panel = FakeBackend()
    with db.session() as session:
        panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                       for u in session.scalars(select(User))}
    panel.passwords = {key: password(key) for key in USERS}
    app = build_app(panel)
    admin_pages.install(app, AdminScopes(db))
    customers_http.install(app, customers_http.CustomerPages(db, REGION))
    customers_admin_http.install(app)
    async with TestClient(TestServer(app)) as client:
        yield World(db, client)


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="error-{name}" role="alert">([^<]*)<', html)
    assert found, html
    return found.group(1)


async def test_pages_create_show_edit_and_escape(world: World) -> None:
    csrf = await world.login("nadmin")
    html = await world.page("/customers")
    assert 'id="nav-customers"' in html and "No customers match." in html
    assert 'id="nav-customer-fields"' not in html  # top admins only
    created = await world.post("/customers", {"csrf": csrf, "name": "<b>Ada</b>", "phones": "030 1234567",
                                                     "email": "", "company": "", "note": ""})
    location = created.headers["Location"]
    assert re.fullmatch(r"/customers/\d+", location)
    html = await world.page(location)
    assert "&lt;b&gt;Ada&lt;/b&gt;" in html and "<b>Ada</b>" not in html and "+49301234567" in html
    refused = await world.post(location, {"csrf": csrf, "name": "Ada", "phones": "12", "email": ""}, 400)
    assert "not a valid number" in field_error(await refused.text(), "phones")  # type: ignore[attr-defined]
    await world.post(location, {"csrf": csrf, "name": "Ada", "phones": "030 1234567\n040 123456"})
    assert "+4940123456" in await world.page(location + "?saved=1")
    listed = await world.page("/customers?q=4012")
    assert 'id="result-count">1 customer<' in listed
    missing_csrf = await world.client.post("/customers", data={"name": "X"}, allow_redirects=False)
    assert missing_csrf.status == 403
    await world.login("sadmin")
    await world.page(location, 404)  # another unit's customer is not found


async def test_pages_refuse_agents_the_admin_pages_and_admins_with_no_unit(world: World) -> None:
    await world.login("2001")
    await world.page("/admin/customers/merge", 403)
    await world.page("/admin/customers/import", 403)
    await world.page("/admin/customer-fields", 403)
    await world.login("lost")
    assert "no organisational unit" in await world.page("/customers", 403)
    await world.login("nadmin")
    await world.page("/admin/customer-fields", 403)


async def test_fields_merge_and_import_pages(world: World) -> None:
    csrf = await world.login("root")
    await world.post("/admin/customer-fields", {"csrf": csrf, "name": "tier", "label": "Tier", "kind": "choice",
                                                "choices": "gold\nsilver", "position": "1", "required": "on"})
    bad = await world.post("/admin/customer-fields", {"csrf": csrf, "name": "Bad Name!", "kind": "text"}, 400)
    assert "lower-case letters" in field_error(await bad.text(), "name")  # type: ignore[attr-defined]
    assert 'data-field="tier"' in await world.page("/admin/customer-fields")
    refused = await world.post("/customers", {"csrf": csrf, "name": "Ada", "phones": ""}, 400)
    assert field_error(await refused.text(), "f_tier") == "Tier is required"  # type: ignore[attr-defined]
    form = FormData({"csrf": csrf})
    form.add_field("file", b"name,phone,tier\nAda,030 1234567,gold\nBob,12,gold\nAda,030 1234567,silver\n",
                   filename="people.csv", content_type="text/csv")
    imported = await world.post("/admin/customers/import", form, 200)
    text = await imported.text()  # type: ignore[attr-defined]
    assert "1 created, 1 updated, 1 problem" in text and "<td>3</td>" in text
    with world.db.session() as s:
        ada = s.scalar(select(Customer.id).where(Customer.name == "Ada"))
    second = await world.post("/customers", {"csrf": csrf, "name": "Ada 2", "phones": "040 123456",
                                                   "f_tier": "silver"})
    other = second.headers["Location"].rsplit("/", 1)[1]
    nothing = await world.post("/admin/customers/merge", {"csrf": csrf, "keep": str(ada), "other": "x"}, 400)
    assert "the number of a customer" in field_error(await nothing.text(), "other")  # type: ignore[attr-defined]
    merged = await world.post("/admin/customers/merge", {"csrf": csrf, "keep": str(ada), "other": other})
    assert merged.headers["Location"] == f"/customers/{ada}?merged=1"
    html = await world.page(merged.headers["Location"])
    assert "+49301234567, +4940123456" in html and "Merged" in html
    await world.page(f"/customers/{other}", 404)
