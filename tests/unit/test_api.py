"""The REST API (web/api.py and the features' api_http.py, docs/api.md) on the real token, CDR and recording
services and a migrated, seeded SQLite database (test_web_admin's seed): tokens (shown once, hashed at rest,
revoked and expired refused, never logged), roles, unit isolation, pagination, bad input, the recording
download, click-to-call in and out of scope, the admin page, and the OpenAPI document against the router."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.acd import api_http as acd_api
from callcenter.acd.scope import WallboardFilter
from callcenter.cdr import api_http as cdr_api
from callcenter.cdr.queries import CdrQueries
from callcenter.customers import api_http as customers_api
from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.errors import ActionRefused
from callcenter.recording import api_http as recording_api
from callcenter.recording.queries import RecordingQueries
from callcenter.users import tokens_http
from callcenter.users.accounts import PanelUser
from callcenter.users.token_models import ApiToken
from callcenter.users.tokens import ApiTokens, create_token, list_tokens, revoke_token
from callcenter.users.tokens_cli import register
from callcenter.web import api
from tests.support.admin import admin_features, install_admin
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, login
from tests.unit.test_web_admin import AUDIO, USERS, password, seed

Client = TestClient[web.Request, web.Application]


@dataclass
class FakePanel:
    """The wallboard of two agents in two units; ``scopes``: which extensions each viewer may see."""

    scopes: dict[int, set[str]] = field(default_factory=dict)
    dialled: list[tuple[int, str, str]] = field(default_factory=list)

    def wallboard(self) -> dict[str, Any]:
        return {"queues": [{"name": "sales", "waiting": 1}, {"name": "support", "waiting": 0}],
                "agents": [{"id": 11, "name": "Alice", "extension": "2001", "state": "ready", "reason": None,
                            "since": None, "calls_today": 3, "queues": ["sales"], "direct_call": None},
                           {"id": 12, "name": "Bob", "extension": "2002", "state": "paused", "reason": "lunch",
                            "since": None, "calls_today": 1, "queues": ["support"], "direct_call": None}]}

    async def wallboard_filter(self, user_id: int) -> WallboardFilter:
        seen = self.scopes.get(user_id, set())
        queues = {"2001": "sales", "2002": "support"}

        def apply(view: dict[str, Any]) -> dict[str, Any]:
            return {**view, "agents": [a for a in view["agents"] if a["extension"] in seen],
                    "queues": [q for q in view["queues"] if q["name"] in {queues[e] for e in seen}]}
        return WallboardFilter(frozenset(seen), apply)

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        if action != "dial":
            raise ActionRefused("unexpected")
        self.dialled.append((user_id, params["number"], params.get("external_id", "")))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api-template")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    (root / "files").mkdir()
    seed(db, root / "files")
    db.dispose()
    return root


@dataclass
class World:
    db: Database
    client: Client
    tokens: ApiTokens
    panel: FakePanel
    secrets: dict[str, str]

    def ids(self) -> dict[str, int]:
        with self.db.session() as session:
            return {u.login: u.id for u in session.scalars(select(User))}

    async def get(self, path: str, who: str | None, status: int = 200) -> Any:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"} if who else {}
        response = await self.client.get(path, headers=headers)
        body = await response.json() if response.content_type == "application/json" else await response.read()
        assert response.status == status, body
        return body


def make_token(db: Database, user: str, **kwargs: Any) -> str:
    with db.session() as session:
        return create_token(session, name=f"{user} token", user=user, created_by="test", **kwargs)[1]


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> AsyncIterator[World]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    shutil.copytree(template / "files", tmp_path / "files")
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    backend = FakeBackend()
    with db.session() as session:
        backend.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                         for u in session.scalars(select(User))}
    backend.passwords = {name: password(name) for name in USERS}
    panel = FakePanel()
    tokens = ApiTokens(db)
    app = install_admin(build_app(backend), admin_features(db, tmp_path / "files"))
    api.install(app, tokens)
    tokens_http.install(app, tokens)
    cdr_api.install(app, CdrQueries(db))
    recording_api.install(app, RecordingQueries(db, tmp_path / "files"))
    acd_api.install(app, panel)  # type: ignore[arg-type]  # the API needs only these three methods
    customers_api.install(app, customers_api.CustomerApi(db, "DE"))
    secrets = {name: make_token(db, name) for name in ("root", "nadmin", "sadmin", "2001", "boss")}
    async with TestClient(TestServer(app)) as client:
        yield World(db, client, tokens, panel, secrets)
    await tokens.settle()
    db.dispose()


# --- tokens --------------------------------------------------------------------------------------------

def test_a_token_is_shown_once_and_only_its_sha256_is_stored(world: World) -> None:
    with world.db.session() as session:
        info, secret = create_token(session, name="crm", user="root", created_by="rita")
        assert secret.startswith("cc_") and len(secret) >= 40
        row = session.get(ApiToken, info.id)
        assert row is not None and row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        stored = [str(getattr(row, column.key)) for column in ApiToken.__table__.columns]
        assert not any(secret in value or secret[3:] in value for value in stored)
        listed = [t for t in list_tokens(session) if t.id == info.id]
        assert listed and secret not in repr(listed) and listed[0].state == "active"
        assert create_token(session, name="crm", user="root", created_by="rita")[1] != secret


async def test_missing_unknown_revoked_and_expired_tokens_get_401_and_secrets_are_never_logged(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = await world.client.get("/api/v1/cdrs")
    assert response.status == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert (await response.json())["error_id"] == "unauthorized"
    for header in ("Bearer cc_nope", "Basic abc", f"Bearer {world.secrets['root']}x"):
        response = await world.client.get("/api/v1/cdrs", headers={"Authorization": header})
        assert response.status == 401, header
    assert 'error="invalid_token"' in (await world.client.get(
        "/api/v1/cdrs", headers={"Authorization": "Bearer cc_nope"})).headers["WWW-Authenticate"]

    expired = make_token(world.db, "root", expires_at=datetime.now(UTC) + timedelta(seconds=1))
    with world.db.session() as session:  # let it expire without waiting
        token = session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).first()
        assert token is not None
        token.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    world.secrets["expired"] = expired
    body = await world.get("/api/v1/cdrs", "expired", 401)
    assert body["error"] == "The token is unknown, revoked or expired"

    await world.get("/api/v1/cdrs", "root")
    with world.db.session() as session:
        for token_id in [t.id for t in list_tokens(session) if t.name == "root token"]:
            assert revoke_token(session, token_id).state == "revoked"
    await world.get("/api/v1/cdrs", "root", 401)
    logged = caplog.text
    assert all(secret not in logged and secret[3:] not in logged for secret in world.secrets.values())


async def test_last_used_is_written_in_the_background_not_on_every_request(world: World) -> None:
    for _ in range(3):
        await world.get("/api/v1/cdrs", "root")
    await world.tokens.settle()
    with world.db.session() as session:
        used = {t.name: t.last_used_at for t in list_tokens(session)}
    assert used["root token"] is not None and used["nadmin token"] is None
    assert len(world.tokens._touched) == 1


async def test_a_token_whose_user_lacks_the_role_gets_403(world: World) -> None:
    body = await world.get("/api/v1/cdrs", "2001", 403)
    assert body == {"error": "The token's user needs the role admin", "error_id": "forbidden"}
    await world.get("/api/v1/recordings", "boss", 403)
    await world.get("/api/v1/agents", "2001", 403)


async def test_a_disabled_user_s_token_stops_working(world: World) -> None:
    with world.db.session() as session:
        user = session.scalar(select(User).where(User.login == "nadmin"))
        assert user is not None
        user.disabled = True
    await world.get("/api/v1/cdrs", "nadmin", 401)


# --- CDRs and recordings ------------------------------------------------------------------------------

async def test_cdrs_are_scoped_by_the_token_user_s_units(world: World) -> None:
    every = await world.get("/api/v1/cdrs", "root")
    assert [row["id"] for row in every["items"]] == ["4", "3", "2", "1"] and every["total"] == 4
    north = await world.get("/api/v1/cdrs", "nadmin")
    assert [row["id"] for row in north["items"]] == ["3", "1"]
    assert north["items"][1]["src"] == "+4930111" and north["items"][1]["disposition"] == "ANSWERED"
    # an admin of no unit sees nothing (fail closed)
    assert (await world.get("/api/v1/cdrs", "sadmin"))["items"] == []
    filtered = await world.get("/api/v1/cdrs?number=4940&from=2030-01-02&to=2030-01-02", "root")
    assert [row["id"] for row in filtered["items"]] == ["2"]
    assert [r["id"] for r in (await world.get("/api/v1/cdrs?disposition=busy", "root"))["items"]] == ["2"]


async def test_pagination(world: World) -> None:
    first = await world.get("/api/v1/cdrs?per_page=3", "root")
    assert ([r["id"] for r in first["items"]], first["page"], first["pages"], first["total"]) == (
        ["4", "3", "2"], 1, 2, 4)
    second = await world.get("/api/v1/cdrs?per_page=3&page=2", "root")
    assert [r["id"] for r in second["items"]] == ["1"] and second["per_page"] == 3
    assert (await world.get("/api/v1/cdrs?per_page=3&page=9", "root"))["items"] == []
    for query in ("per_page=201", "per_page=0", "page=0", "page=x"):
        body = await world.get(f"/api/v1/recordings?{query}", "root", 400)
        assert body["error_id"] == "invalid-request" and body["error"], query


async def test_bad_input_gets_a_400_with_a_message(world: World) -> None:
    cases = {"/api/v1/cdrs?from=yesterday": "from: a date as YYYY-MM-DD",
             "/api/v1/cdrs?disposition=MAYBE": "disposition: one of ANSWERED, BUSY, NO ANSWER, FAILED, CONGESTION",
             "/api/v1/recordings?number=" + "9" * 81: "number: at most 80 characters, no control characters"}
    for path, message in cases.items():
        assert await world.get(path, "root", 400) == {"error": message, "error_id": "invalid-request"}


async def test_recordings_are_scoped_and_downloadable(world: World) -> None:
    every = await world.get("/api/v1/recordings", "root")
    assert [r["id"] for r in every["items"]] == ["rec-x", "rec-n2", "rec-s1", "rec-n1"]
    north = await world.get("/api/v1/recordings", "nadmin")
    assert [r["id"] for r in north["items"]] == ["rec-x", "rec-n1"]
    rec = north["items"][1]
    assert rec["download"] == "/api/v1/recordings/rec-n1/audio" and rec["status"] == "ready"
    assert rec["agent"] == "Alice Agent (2001)" and rec["seconds"] == pytest.approx(65.4)
    assert (await world.get("/api/v1/recordings?queue=sales&agent=2001", "root"))["total"] == 1

    response = await world.client.get(rec["download"], headers={"Authorization": f"Bearer {world.secrets['nadmin']}"})
    assert response.status == 200 and await response.read() == AUDIO
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Content-Disposition"] == 'attachment; filename="rec-n1.mp3"'
    # another unit's, not ready, missing file, bad id: the same 404
    for rid in ("rec-s1", "rec-n2", "rec-x", "nope", "a%2Fb"):
        body = await world.get(f"/api/v1/recordings/{rid}/audio", "nadmin", 404)
        assert body["error_id"] == "not-found", rid
    await world.get("/api/v1/recordings/rec-s1/audio", "root")


# --- queues, agents, click-to-call -----------------------------------------------------------------------

async def test_queue_and_agent_status_follow_the_wallboard_scope(world: World) -> None:
    world.panel.scopes[world.ids()["boss"]] = {"2001"}
    queues = await world.get("/api/v1/queues", "boss")
    assert queues == {"items": [{"name": "sales", "waiting": 1}]}
    agents = (await world.get("/api/v1/agents", "boss"))["items"]
    assert [(a["extension"], a["state"], a["calls_today"]) for a in agents] == [("2001", "ready", 3)]
    assert "direct_call" not in agents[0]
    assert await world.get("/api/v1/agents", "root") == {"items": []}  # no scope given: nothing


async def test_click_to_call_in_scope_dials_and_out_of_scope_is_refused(world: World) -> None:
    world.panel.scopes[world.ids()["boss"]] = {"2001"}
    headers = {"Authorization": f"Bearer {world.secrets['boss']}"}

    async def post(body: object, status: int) -> Any:
        response = await world.client.post("/api/v1/click-to-call", json=body, headers=headers)
        answer = await response.json()
        assert response.status == status, answer
        return answer

    assert await post({"extension": "2001", "number": "+4930123"}, 200) == {"status": "dialling"}
    assert await post({"extension": "2001", "number": "+4930124", "external_id": "crm-4711"}, 200)
    assert world.panel.dialled == [(11, "+4930123", ""), (11, "+4930124", "crm-4711")]
    assert (await post({"extension": "2001", "number": "1", "external_id": "x" * 101}, 400))["error"].startswith(
        "external_id:")
    refused = await post({"extension": "2002", "number": "+4930123"}, 404)
    assert refused["error"] == acd_api.AGENT_OUT
    assert (await post({"extension": "2001", "number": "12ab"}, 400))["error"].startswith("number:")
    assert (await post({"number": "123"}, 400))["error"].startswith("extension:")
    assert (await post(["2001"], 400))["error"] == "The body must be a JSON object"
    response = await world.client.post("/api/v1/click-to-call", data=b"{nope", headers=headers)
    assert response.status == 400 and (await response.json())["error_id"] == "invalid-request"
    assert len(world.panel.dialled) == 2


# --- the admin page and the CLI -------------------------------------------------------------------------

async def test_admin_page_creates_shows_the_secret_once_and_revokes(world: World) -> None:
    world.client.session.cookie_jar.clear()
    csrf = (await login(world.client, "root", password("root"))).csrf
    response = await world.client.post("/admin/api-tokens", data={
        "csrf": csrf, "name": "helpdesk", "user": "nadmin", "expires": "2999-01-01"})
    html = await response.text()
    assert response.status == 200, html
    secret = html.split('<code id="token-secret-value">', 1)[1].split("<", 1)[0]
    world.secrets["new"] = secret
    assert (await world.get("/api/v1/cdrs", "new"))["total"] == 2
    page = await (await world.client.get("/admin/api-tokens")).text()
    assert "helpdesk" in page and secret not in page and "2999-01-01 00:00:00" in page
    bad = await world.client.post("/admin/api-tokens", data={"csrf": csrf, "name": "x", "user": "nobody"})
    assert bad.status == 400 and "no user with extension or login" in await bad.text()
    with world.db.session() as session:
        token_id = next(t.id for t in list_tokens(session) if t.name == "helpdesk")
    response = await world.client.post(f"/admin/api-tokens/{token_id}/revoke", data={"csrf": csrf})
    assert response.status == 200 and "The token is revoked." in await response.text()
    await world.get("/api/v1/cdrs", "new", 401)
    # a unit admin may not manage tokens
    world.client.session.cookie_jar.clear()
    await login(world.client, "nadmin", password("nadmin"))
    assert (await world.client.get("/admin/api-tokens")).status == 403


def test_cli_parses_create_list_revoke() -> None:
    import argparse
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["api-tokens", "create", "crm", "--user", "root", "--expires", "2031-01-01"])
    assert (args.action, args.name, args.user, args.expires) == ("create", "crm", "root", "2031-01-01")
    assert parser.parse_args(["api-tokens", "revoke", "3"]).id == 3


# --- the OpenAPI document ------------------------------------------------------------------------------

async def test_every_api_route_is_documented_and_every_documented_route_exists(world: World) -> None:
    response = await world.client.get("/api/docs")  # public: no token
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    routed = {(route.method, route.resource.canonical) for route in world.client.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
              and route.method != "HEAD"}
    assert routed == documented
    assert {"GET /api/v1/cdrs", "GET /api/v1/recordings", "GET /api/v1/recordings/{id}/audio",
            "GET /api/v1/queues", "GET /api/v1/agents", "POST /api/v1/click-to-call", "GET /api/v1/customers",
            "GET /api/v1/customers/{id}", "POST /api/v1/customers", "PATCH /api/v1/customers/{id}"} <= {
        f"{m} {p}" for m, p in documented}
    for path, methods in document["paths"].items():
        for operation in methods.values():
            assert operation["security"] == [{"bearer": []}], path
            for param in operation["parameters"]:
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path
    assert "page" in {p["name"] for p in document["paths"]["/api/v1/cdrs"]["get"]["parameters"]}
