"""The panel's logins and sessions on the real backend (UserAccounts on SQLite, not a fake): argon2 checks
for unknown logins, sessions that end everywhere and stay ended across a restart, the shared login
throttle, who may read /metrics and /api/phones, and bodies read only after the role check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.panel import AcdPanel
from callcenter.acd.services import AcdService
from callcenter.db.engine import Database
from callcenter.users import services as users
from callcenter.users import units
from callcenter.users.accounts import UserAccounts
from callcenter.web.guards import SESSION_COOKIE
from tests.support.admin import admin_features, install_admin
from tests.support.webapp import build_app
from tests.unit.test_web import attempt_login, login

Client = TestClient[web.Request, web.Application]
TOKEN = "metrics-token-for-tests-0123456789"
PASSWORDS = {"2001": "alice-password", "2005": "sam-password", "root": "root-password"}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'panel.db'}")
    database.migrate()
    with database.session() as session:
        users.add_user(session, name="Alice", extension="2001", panel_password=PASSWORDS["2001"], org_unit="Demo")
        users.add_user(session, name="Sam", extension="2005", roles=("supervisor",), panel_password=PASSWORDS["2005"])
        users.add_user(session, name="Root", login="root", roles=("admin",), panel_password=PASSWORDS["root"])
        units.grant_all_units(session, "root", True)
    return database


def app_on(db: Database, tmp_path: Path) -> web.Application:
    # Only the users' part is used here: logins, sessions, passwords (and the pages they land on).
    panel = AcdPanel(cast(AcdService, None), db, list)
    return install_admin(build_app(panel, accounts=UserAccounts(db), metrics_token=TOKEN),
                         admin_features(db, tmp_path / "files"))


@pytest.fixture
async def client(db: Database, tmp_path: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app_on(db, tmp_path))) as test_client:
        yield test_client


async def test_the_real_login_checks_passwords_and_refuses_disabled_users(client: Client, db: Database) -> None:
    assert (await attempt_login(client, "alice-password", "2001")).status == 303
    assert (await attempt_login(client, "wrong-password", "2001")).status == 401
    assert (await attempt_login(client, "alice-password", "nobody")).status == 401
    with db.session() as session:
        users.set_disabled(session, "2001", True)
    assert (await attempt_login(client, "alice-password", "2001")).status == 401


async def test_unknown_logins_cost_one_argon2_verification_like_known_ones(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: an unknown login was answered without hashing, measurably faster than a wrong password."""
    checked: list[str] = []
    real_verify = users.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        if password_hash and password_hash.startswith("$argon2"):
            checked.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(users, "verify_password", counting)
    for name in ("2001", "nobody"):
        checked.clear()
        assert (await attempt_login(client, "some-guess", name)).status == 401
        assert checked == ["some-guess"], name


async def test_logout_and_role_changes_end_sessions_for_good_even_after_a_restart(
        client: Client, db: Database, tmp_path: Path) -> None:
    """Before: logouts were remembered in memory only, so a restart brought a logged-out cookie back,
    and a password or role change ended no session."""
    me = await login(client, "2001", PASSWORDS["2001"])
    assert (await client.post("/logout", data={"csrf": me.csrf}, allow_redirects=False)).status == 303
    second = await login(client, "2005", PASSWORDS["2005"])
    with db.session() as session:
        users.set_roles(session, "2005", ["agent"])
    async with TestClient(TestServer(app_on(db, tmp_path))) as restarted:
        for cookie in (me.cookie, second.cookie):
            restarted.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
            page = await restarted.get("/password", allow_redirects=False)
            assert page.status == 303 and page.headers["Location"].startswith("/login"), cookie


async def test_metrics_and_phones_need_the_token_or_a_supervisor(client: Client) -> None:
    """Before: /metrics and /api/phones (who is on a call, call counts) were public."""
    for path in ("/metrics", "/api/phones"):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
    await login(client, "2001", PASSWORDS["2001"])
    assert (await client.get("/metrics")).status == 401  # an agent
    client.session.cookie_jar.clear()
    await login(client, "2005", PASSWORDS["2005"])
    assert (await client.get("/metrics")).status == 200
    assert (await client.get("/demo/balance?account=1")).status == 404  # no demo here


async def test_an_upload_is_refused_before_its_body_is_read(client: Client) -> None:
    """Before: the CSRF check read up to 64 MB of an upload before the admin check refused the user."""
    me = await login(client, "2001", PASSWORDS["2001"])
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write((f"POST /admin/dnc/upload HTTP/1.1\r\nHost: {client.server.host}:{client.server.port}\r\n"
                      f"Cookie: {SESSION_COOKIE}={me.cookie}\r\nX-CSRF-Token: {me.csrf}\r\n"
                      "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 60000000\r\n\r\n--x\r\n")
                     .encode())
        await writer.drain()
        # The 60 MB never come: a server that waited for them would not answer.
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 403"), status_line
