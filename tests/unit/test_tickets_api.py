"""/api/v1/tickets (callcenter/tickets/api_http.py) with real bearer tokens on a migrated SQLite database:
unit isolation (another unit's ticket is 404), fail closed for a token user of no unit, filters and
pagination, an integration's ticket, changes that are all or nothing, replies and notes, bad input answered
with a message naming the field, and every route in the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.tickets import actions, api_http
from callcenter.tickets.models import INTEGRATION, MISSED, Ticket
from callcenter.users.tokens import ApiTokens, create_token
from callcenter.web import api
from tests.support.webapp import build_app
from tests.unit.test_tickets_actions import STORE, T0, USERS, call, db, template, uid  # noqa: F401  (fixtures)
from tests.unit.test_web import FakeBackend

Client = TestClient[web.Request, web.Application]


@dataclass
class World:
    db: Database
    client: Client
    secrets: dict[str, str]
    north: int  # a ticket of North (agent 2001's)

    async def call(self, method: str, path: str, who: str | None, status: int = 200, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"} if who else {}
        response = await self.client.request(method, path, headers=headers, json=body)
        answer = await response.json()
        assert response.status == status, answer
        return answer


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:  # noqa: F811
    tokens = ApiTokens(db)
    with db.session() as s:
        secrets = {key: create_token(s, name=f"{key} token", user=key, created_by="test")[1] for key in USERS}
        call(s, "c1", "2001")
        north = actions.create_from_call(s, STORE, uid(s, "2001"), "c1", "North ticket", "Summary", T0)
    app = build_app(FakeBackend())
    api.install(app, tokens)
    api_http.install(app, api_http.TicketApi(db, STORE))
    async with TestClient(TestServer(app)) as client:
        yield World(db, client, secrets, north)
    await tokens.settle()


async def test_units_are_isolated_and_scopes_fail_closed(world: World) -> None:
    listed = await world.call("GET", "/api/v1/tickets", "2001")
    assert [t["id"] for t in listed["items"]] == [world.north] and listed["total"] == 1
    one = await world.call("GET", f"/api/v1/tickets/{world.north}", "nadmin")
    assert one["subject"] == "North ticket" and one["timeline"][0]["kind"] == "call"
    assert one["timeline"][0]["call_state"] == "in_progress" and one["timeline"][0]["body"] == "Summary"
    assert (await world.call("GET", "/api/v1/tickets", "2002"))["total"] == 0
    for who in ("2002", "sadmin"):
        refused = await world.call("GET", f"/api/v1/tickets/{world.north}", who, 404)
        assert refused["error_id"] == "invalid-ticket"
        await world.call("PATCH", f"/api/v1/tickets/{world.north}", who, 404, {"status": "closed"})
        await world.call("POST", f"/api/v1/tickets/{world.north}/entries", who, 404, {"kind": "note", "body": "x"})
    for who in ("2009", "lost"):
        assert (await world.call("GET", "/api/v1/tickets", who, 403))["error_id"] == "panel-action-refused"
    assert (await world.call("GET", "/api/v1/tickets", None, 401))["error_id"] == "unauthorized"
    assert (await world.call("GET", "/api/v1/tickets", "root"))["total"] == 1


async def test_filters_and_pages(world: World) -> None:
    with world.db.session() as s:
        for n in range(3):
            STORE.new_ticket(s, subject=f"Missed call {n}", origin=MISSED, number=f"+49301111{n}", at=T0,
                             assignee_id=uid(s, "2003"))
    page = await world.call("GET", "/api/v1/tickets?origin=missed&per_page=2&page=2", "2001")
    assert (page["total"], page["pages"], len(page["items"])) == (3, 2, 1)
    assert (await world.call("GET", "/api/v1/tickets?assignee=me", "2001"))["total"] == 1
    assert (await world.call("GET", "/api/v1/tickets?q=3011112", "2001"))["total"] == 1
    assert (await world.call("GET", "/api/v1/tickets?from=2030-01-06", "2001"))["total"] == 0
    for query, field in (("status=done", "status"), ("origin=fax", "origin"), ("assignee=bob", "assignee"),
                         ("from=5.1.2030", "from"), ("per_page=500", "per_page")):
        refused = await world.call("GET", f"/api/v1/tickets?{query}", "2001", 400)
        assert refused["error"].startswith(field), refused


async def test_an_integration_makes_and_changes_a_ticket(world: World) -> None:
    with world.db.session() as s:
        colleague, south_agent = uid(s, "2003"), uid(s, "2002")
    made = await world.call("POST", "/api/v1/tickets", "nadmin", 201, body={
        "subject": "From the CRM", "number": "030 7654321", "assignee_id": colleague})
    assert (made["origin"], made["number"], made["status"], made["assignee_id"]) == (
        INTEGRATION, "+49307654321", "open", colleague)
    ticket_id = made["id"]
    changed = await world.call("PATCH", f"/api/v1/tickets/{ticket_id}", "2001",
                               body={"status": "pending", "subject": "Renamed", "assignee_id": None})
    assert (changed["status"], changed["subject"], changed["assignee_id"]) == ("pending", "Renamed", None)
    assert [e["kind"] for e in changed["timeline"]] == ["subject", "assignee", "status"]
    # All or nothing: a bad status after a good subject changes neither.
    refused = await world.call("PATCH", f"/api/v1/tickets/{ticket_id}", "2001", 400,
                               body={"subject": "Not kept", "status": "solved"})
    assert refused["error"].startswith("status:")
    assert (await world.call("GET", f"/api/v1/tickets/{ticket_id}", "2001"))["subject"] == "Renamed"
    replied = await world.call("POST", f"/api/v1/tickets/{ticket_id}/entries", "2001",
                               body={"kind": "reply", "body": "Done"})
    assert replied["timeline"][-1]["kind"] == "reply" and replied["timeline"][-1]["author"] == "Alice Agent"
    with world.db.session() as s:
        stored = s.get(Ticket, ticket_id)
        assert stored is not None and stored.created_by == s.scalar(select(User.id).where(User.login == "nadmin"))
    for body, status, field in (
            ({}, 400, "subject"),
            ({"subject": " "}, 400, "subject"),
            ({"subject": "x", "status": "solved"}, 400, "status"),
            ({"subject": "x", "assignee_id": south_agent}, 400, "assignee_id"),
            ({"subject": "x", "assignee_id": "2003"}, 400, "assignee_id"),
            ({"subject": "x", "customer_id": 999}, 404, "customer_id"),
            ({"subject": "x", "colour": "red"}, 400, "colour"),
            ({"subject": 5}, 400, "subject")):
        refused = await world.call("POST", "/api/v1/tickets", "nadmin", status, body)
        assert refused["error"].startswith(field), (body, refused)
    for body, field in (({"kind": "email", "body": "x"}, "kind"), ({"kind": "note"}, "body"),
                        ({"kind": "note", "body": ""}, "body")):
        refused = await world.call("POST", f"/api/v1/tickets/{ticket_id}/entries", "2001", 400, body)
        assert refused["error"].startswith(field), (body, refused)
    response = await world.client.post(f"/api/v1/tickets/{ticket_id}/entries", data=b"not json",
                                       headers={"Authorization": f"Bearer {world.secrets['2001']}"})
    assert response.status == 400 and "JSON" in (await response.json())["error"]


async def test_every_ticket_route_is_in_the_openapi_document(world: World) -> None:
    document = await (await world.client.get("/api/docs")).json()
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert "201" in document["paths"]["/api/v1/tickets"]["post"]["responses"]
    routed = {(route.method, route.resource.canonical) for route in world.client.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
              and route.method != "HEAD"}
    assert routed == documented == {("GET", "/api/v1/tickets"), ("POST", "/api/v1/tickets"),
                                    ("GET", "/api/v1/tickets/{id}"), ("PATCH", "/api/v1/tickets/{id}"),
                                    ("POST", "/api/v1/tickets/{id}/entries")}
