"""/api/v1/customers (customers/api_http.py) on the real token service and a migrated SQLite database with
units North and South (tests/unit/test_customers.py's users): search and lookup by number with pages, one
customer with numbers and custom fields, create and change with a message naming the refused field, and
unit isolation (another unit's customer is 404, an agent of no unit is refused)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.customers import api_http
from callcenter.customers.fields import FieldInput, save_field
from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.users.services import add_user
from callcenter.users.tokens import ApiTokens, create_token
from callcenter.web import api
from tests.support.webapp import build_app
from tests.unit.test_customers import REGION, build_template, new, password
from tests.unit.test_web import FakeBackend

Client = TestClient[web.Request, web.Application]
WHO = ("root", "nadmin", "sadmin", "2001", "2009")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_template(tmp_path_factory.mktemp("customers-api"))
    db = Database(f"sqlite:///{root / 'cc.db'}")
    with db.session() as session:
        add_user(session, name="Una Unitless", login="2009", extension="2009", roles=("agent",),
                 panel_password=password("2009"))
        save_field(session, FieldInput("tier", "Tier", "choice", ("gold", "silver"), required=True))
        save_field(session, FieldInput("since", "Customer since", "date"))
    db.dispose()
    return root


@dataclass
class World:
    db: Database
    client: Client
    secrets: dict[str, str]
    ids: dict[str, int]

    async def call(self, method: str, path: str, who: str, status: int, body: Any = None) -> Any:
        response = await self.client.request(method, path, json=body,
                                             headers={"Authorization": f"Bearer {self.secrets[who]}"})
        answer = await response.json()
        assert response.status == status, answer
        return answer


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> AsyncIterator[World]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    with db.session() as s:
        ids = {"ada": new(s, "nadmin", "Ada Lovelace", "+49301234567", "040 123456", email="ada@example.org",
                          values={"tier": "gold", "since": "2020-01-02"}),
               "nina": new(s, "nadmin", "Nina North", "+49305555555", values={"tier": "silver"}),
               "sven": new(s, "sadmin", "Sven South", "+49302222222", values={"tier": "gold"})}
        secrets = {key: create_token(s, name=f"{key} token", user=key, created_by="test")[1] for key in WHO}
        ids.update({u.login: u.id for u in s.scalars(select(User))})
    tokens = ApiTokens(db)
    app = build_app(FakeBackend())
    api.install(app, tokens)
    api_http.install(app, api_http.CustomerApi(db, REGION))
    async with TestClient(TestServer(app)) as client:
        yield World(db, client, secrets, ids)
    await tokens.settle()
    db.dispose()


async def test_list_searches_pages_and_finds_by_number_in_the_token_users_units(world: World) -> None:
    listed = await world.call("GET", "/api/v1/customers", "nadmin", 200)
    assert [c["name"] for c in listed["items"]] == ["Ada Lovelace", "Nina North"] and listed["total"] == 2
    first = await world.call("GET", "/api/v1/customers?per_page=1&page=2", "nadmin", 200)
    assert (first["page"], first["pages"], [c["name"] for c in first["items"]]) == (2, 2, ["Nina North"])
    assert (await world.call("GET", "/api/v1/customers?q=lovelace", "2001", 200))["total"] == 1  # an agent of North
    assert (await world.call("GET", "/api/v1/customers?q=south", "nadmin", 200))["total"] == 0
    assert (await world.call("GET", "/api/v1/customers", "root", 200))["total"] == 3
    found = await world.call("GET", "/api/v1/customers?phone=040%2012%2034%2056", "2001", 200)
    assert [c["id"] for c in found["items"]] == [world.ids["ada"]] and found["items"][0]["fields"]["tier"] == "gold"
    other = await world.call("GET", "/api/v1/customers?phone=%2B49302222222", "nadmin", 200)
    assert other["items"] == [] and other["total"] == 0  # South's number, not told
    bad = await world.call("GET", "/api/v1/customers?phone=12", "nadmin", 400)
    assert bad["field"] == "phone" and "not a valid number" in bad["error"]
    assert "per_page" in (await world.call("GET", "/api/v1/customers?per_page=0", "nadmin", 400))["error"]
    refused = await world.call("GET", "/api/v1/customers", "2009", 403)  # an agent of no unit: fail closed
    assert "no organisational unit" in refused["error"]


async def test_one_customer_with_numbers_and_fields_and_another_units_is_not_found(world: World) -> None:
    ada = await world.call("GET", f"/api/v1/customers/{world.ids['ada']}", "2001", 200)
    assert ada["phones"] == ["+49301234567", "+4940123456"] and ada["unit"] == "North"
    assert ada["fields"] == {"tier": "gold", "since": "2020-01-02"} and ada["email"] == "ada@example.org"
    hidden = await world.call("GET", f"/api/v1/customers/{world.ids['sven']}", "nadmin", 404)
    assert hidden["error_id"] == "invalid-customer"
    await world.call("GET", f"/api/v1/customers/{world.ids['sven']}", "2001", 404)
    await world.call("GET", "/api/v1/customers/99999", "root", 404)
    await world.call("GET", "/api/v1/customers/abc", "root", 400)
    response = await world.client.get(f"/api/v1/customers/{world.ids['ada']}")
    assert response.status == 401


async def test_create_and_change_check_every_field_and_name_the_refused_one(world: World) -> None:
    created = await world.call("POST", "/api/v1/customers", "2001", 201, {
        "name": "Carl", "phones": ["030 7777777"], "fields": {"tier": "silver"}})
    assert created["phones"] == ["+49307777777"] and created["unit"] == "North"
    assert created["fields"]["tier"] == "silver"
    for body, field, message in (
            ({"name": "Dora", "phones": ["030 8888888"]}, "tier", "Tier is required"),
            ({"name": "Dora", "phones": ["12"], "fields": {"tier": "gold"}}, "phones", "not a valid number"),
            ({"name": "", "fields": {"tier": "gold"}}, "name", "Name is required"),
            ({"name": "Dora", "fields": {"tier": "bronze"}}, "tier", "one of gold, silver"),
            ({"name": "Dora", "fields": {"tier": "gold", "shoe": "42"}}, "shoe", "no such custom field"),
            ({"name": "Dora", "phones": ["030 1234567"], "fields": {"tier": "gold"}}, "phones", "already belongs")):
        refused = await world.call("POST", "/api/v1/customers", "nadmin", 409 if field == "phones"
                                   and "belongs" in message else 400, body)
        assert refused["field"] == field and refused["error"].startswith(f"{field}: ") and message in refused["error"]
    for body, message in (([1], "JSON object"), ({"name": 3}, "name: a string"), ({"phones": "030"}, "phones: a list"),
                          ({"colour": "red"}, "colour: not a customer property")):
        assert message in (await world.call("POST", "/api/v1/customers", "nadmin", 400, body))["error"]

    path = f"/api/v1/customers/{world.ids['nina']}"
    changed = await world.call("PATCH", path, "2001", 200, {"company": "North Ltd", "fields": {"since": "2021-03-04"}})
    assert (changed["name"], changed["company"], changed["phones"]) == ("Nina North", "North Ltd", ["+49305555555"])
    assert changed["fields"] == {"tier": "silver", "since": "2021-03-04"}
    bad = await world.call("PATCH", path, "2001", 400, {"fields": {"since": "4 March"}})
    assert bad["field"] == "since" and "YYYY-MM-DD" in bad["error"]
    await world.call("PATCH", f"/api/v1/customers/{world.ids['sven']}", "nadmin", 404, {"company": "Mine"})
    assert (await world.call("GET", path, "nadmin", 200))["company"] == "North Ltd"
