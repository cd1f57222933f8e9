"""The panel's web layer against a small fake PanelBackend: login and its throttle, the signed session
cookie, CSRF, roles, logout, the SSE feeds (the wallboard computed once per version for all viewers)
and the security headers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.http import PANEL, units_changed
from callcenter.acd.scope import WallboardFilter
from callcenter.errors import ActionRefused
from callcenter.users.accounts import PanelUser
from callcenter.users.http import LOGINS
from callcenter.users.throttle import LoginThrottle
from callcenter.web.app import make_app
from callcenter.web.guards import LOGIN_CSRF_COOKIE, SESSION_COOKIE, WEB
from callcenter.web.sessions import SessionSigner
from tests.support.webapp import KEY, build_app, healthy, status

__all__ = ["KEY", "FakeBackend", "healthy", "login", "panel_app", "read_event", "status"]

NOW = "2030-01-01T09:00:00+00:00"


class FakeBackend:
    """Agents 2001 (agent) and 2005 (agent and supervisor), a supervisor and an admin. Actions change the
    agent's state and bump the version like the real ACD would."""

    def __init__(self) -> None:
        self.users = {
            1: PanelUser(1, "2001", "Alice Agent", "2001", ("agent",)),
            2: PanelUser(2, "2005", "Sam Both", "2005", ("agent", "supervisor")),
            3: PanelUser(3, "boss", "Bea Boss", None, ("supervisor",)),
            4: PanelUser(4, "admin", "Ada Admin", None, ("admin",)),
        }
        self.passwords = {"2001": "alice-pw", "2005": "sam-pw", "boss": "boss-pw", "admin": "admin-pw"}
        self.states: dict[int, str] = {1: "paused", 2: "ready"}
        self.reasons: dict[int, str] = {1: "lunch", 2: ""}
        self.calls: dict[int, dict[str, Any] | None] = {}
        self.actions: list[tuple[int, str, dict[str, str]]] = []
        self.wallboard_calls = 0
        self.agent_view_calls = 0
        self.authentications = 0
        self._version = 1
        self._changed = asyncio.Event()

    # what tests (or a browser test's other thread, through the loop) change
    def bump(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set_state(self, user_id: int, state: str, reason: str = "") -> None:
        self.states[user_id], self.reasons[user_id] = state, reason
        self.bump()

    def ring(self, user_id: int, number: str = "+4930123456") -> None:
        self.calls[user_id] = {
            "id": "call-1", "direction": "inbound", "number": number, "queue": "sales", "state": "ringing",
            "since": NOW, "customer": {"name": "Carl Customer", "note": "VIP"},
            "history": [{"at": NOW, "queue": "sales", "direction": "inbound", "outcome": "answered",
                         "agent": "Sam Both", "wrapup_code": "sale", "note": "ordered"}],
            "consult": None}
        self.set_state(user_id, "ringing")

    # PanelBackend
    async def authenticate(self, login: str, password: str) -> PanelUser | None:
        self.authentications += 1
        if self.passwords.get(login) != password:
            return None
        return next(u for u in self.users.values() if u.login == login)

    async def user(self, user_id: int) -> PanelUser | None:
        return self.users.get(user_id)

    async def account(self, typed: str) -> str:
        return typed.casefold()

    ALL = WallboardFilter("all", lambda view: view)

    async def wallboard_filter(self, user_id: int) -> WallboardFilter:
        return self.ALL

    def _new_epoch(self, user_id: int) -> int:
        user = self.users[user_id]
        self.users[user_id] = dataclasses.replace(user, session_epoch=user.session_epoch + 1)
        return user.session_epoch + 1

    async def end_sessions(self, user_id: int) -> None:
        self._new_epoch(user_id)

    async def change_password(self, user_id: int, old: str, new: str) -> int:
        login = self.users[user_id].login
        if self.passwords[login] != old:
            raise ActionRefused("The current password is wrong", 403)
        if len(new) < 8:
            raise ActionRefused("The new password needs at least 8 characters")
        self.passwords[login] = new
        return self._new_epoch(user_id)

    def agent_view(self, user_id: int) -> dict[str, Any]:
        self.agent_view_calls += 1
        user = self.users[user_id]
        if not user.has("agent"):
            raise ActionRefused("You are not an agent", 403)
        return {
            "agent": {"id": user.id, "name": user.name, "extension": user.extension,
                      "state": self.states.get(user_id, "logged_out"), "reason": self.reasons.get(user_id, ""),
                      "since": NOW, "pending_pause": None, "awaiting_approval": None, "calls_today": 3,
                      "wrapup_deadline": None},
            "call": self.calls.get(user_id),
            "last_call": None,
            "pause_reasons": [{"code": "lunch", "label": "Lunch", "needs_approval": False},
                              {"code": "training", "label": "Training", "needs_approval": True}],
            "wrapup_codes": [{"code": "sale", "label": "Sale"}, {"code": "info", "label": "Information"}],
            "callbacks": [{"id": 7, "number": "+4930999", "name": "Mia", "queue": "sales", "reason": "abandoned",
                           "count": 2, "last_at": NOW}],
            "transfer_targets": {"agent": [{"id": "2005", "label": "Sam Both (2005)"}],
                                 "queue": [{"id": "sales", "label": "Sales"}], "ivr": []},
        }

    def wallboard(self) -> dict[str, Any]:
        self.wallboard_calls += 1
        agents = [{"id": u.id, "name": u.name, "extension": u.extension, "state": self.states.get(u.id, "logged_out"),
                   "reason": self.reasons.get(u.id, ""), "since": NOW, "calls_today": 3}
                  for u in self.users.values() if u.has("agent")]
        return {"generated_at": datetime.now(UTC).isoformat(), "version": self._version,
                "queues": [{"name": "sales", "waiting": 2, "oldest_since": NOW, "service_level": 87.5,
                            "service_level_seconds": 20, "offered": 10, "answered": 8, "abandoned": 1,
                            "avg_wait": 12.5, "avg_talk": 95.0}],
                "agents": agents, "approvals": []}

    def monitor_view(self, user_id: int) -> dict[str, Any]:
        return {"session": None, "can_monitor": False}  # test_web_monitor.py fakes monitoring

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        self.actions.append((user_id, action, dict(params)))
        if action == "ready":
            self.set_state(user_id, "ready")
        elif action == "pause":
            self.set_state(user_id, "paused", params.get("reason", ""))
        elif action == "login":
            self.set_state(user_id, "ready")
        elif action == "logout":
            self.set_state(user_id, "logged_out")
        elif action == "hangup" and self.calls.get(user_id):
            self.calls[user_id] = None
            self.set_state(user_id, "wrap_up")
        else:
            raise ActionRefused(f"You cannot {action} now", 409)

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        self.actions.append((user_id, action, dict(params)))
        if action != "approve_pause":
            raise ActionRefused("Unknown action", 400)
        self.bump()

    @property
    def version(self) -> int:
        return self._version

    async def wait_change(self, version: int, timeout: float) -> int:
        if self._version == version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self._version


def panel_app(backend: FakeBackend, **kwargs: Any) -> web.Application:
    return build_app(backend, **kwargs)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def client(backend: FakeBackend) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(panel_app(backend))) as test_client:
        yield test_client


Client = TestClient[web.Request, web.Application]


@dataclass
class Login:
    cookie: str
    csrf: str
    landing: str


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def set_cookie(response: ClientResponse, name: str) -> str | None:
    for header in response.headers.getall("Set-Cookie", []):
        if header.startswith(f"{name}="):
            return header
    return None


async def login(client: Client, name: str, password: str) -> Login:
    form = await client.get("/login")
    token = form_token(await form.text())
    response = await client.post("/login", data={"login": name, "password": password, "csrf": token},
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    page = await client.get(response.headers["Location"])
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', await page.text())
    assert meta
    return Login(cookie, meta.group(1), response.headers["Location"])


def origin(client: Client) -> str:
    return f"http://{client.server.host}:{client.server.port}"


async def read_event(response: ClientResponse, pings: bool = False, timeout: float = 3) -> tuple[str, str]:
    """The next SSE message as (event, data); a ``: ping`` comment is ("ping", "") when ``pings``."""
    event, data = "message", []
    async with asyncio.timeout(timeout):
        while True:
            line = (await response.content.readline()).decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith(":"):
                if pings:
                    return "ping", ""
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                return event, "\n".join(data)


# --- the routes that were there before stay -----------------------------------------------------------

async def test_without_a_backend_there_is_no_panel_and_the_old_routes_work() -> None:
    async with TestClient(TestServer(make_app(healthy, status))) as plain:
        assert (await plain.get("/health")).status == 200
        assert (await plain.get("/api/phones")).status == 401  # no panel to log in to, no token given
        assert (await plain.get("/metrics")).status == 401
        assert (await plain.get("/demo/balance?account=12")).status == 404  # only with the demo on
        assert "/login" not in await (await plain.get("/")).text()
        assert (await plain.get("/login")).status == 404
        assert (await plain.get("/agent")).status == 404


def test_a_panel_needs_a_real_session_key(backend: FakeBackend) -> None:
    with pytest.raises(ValueError, match="session key"):
        make_app(healthy, status, accounts=backend)
    with pytest.raises(ValueError, match="hex"):
        make_app(healthy, status, accounts=backend, session_key="not hex")


async def test_status_page_links_to_the_panel(client: Client) -> None:
    assert 'href="/login"' in await (await client.get("/")).text()
    assert (await client.get("/health")).status == 200


# --- login ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "password", "landing"), [
    ("2001", "alice-pw", "/agent"), ("2005", "sam-pw", "/agent"),
    ("boss", "boss-pw", "/wallboard"), ("admin", "admin-pw", "/wallboard"),
])
async def test_login_lands_on_the_page_of_the_role(client: Client, name: str, password: str, landing: str) -> None:
    assert (await login(client, name, password)).landing == landing


async def test_session_cookie_is_httponly_strict_and_signed(client: Client) -> None:
    form = await client.get("/login")
    csrf_cookie = set_cookie(form, LOGIN_CSRF_COOKIE)
    assert csrf_cookie and "HttpOnly" in csrf_cookie and "SameSite=Strict" in csrf_cookie
    response = await client.post("/login", allow_redirects=False, data={
        "login": "2001", "password": "alice-pw", "csrf": form_token(await form.text())})
    header = set_cookie(response, SESSION_COOKIE)
    assert header is not None
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert "Max-Age=43200" in header
    assert "Secure" not in header
    value = header.split(";")[0].split("=", 1)[1]
    session = client.app[WEB].signer.verify(value)
    assert session is not None and session.user_id == 1 and session.expires_at - session.issued_at == 12 * 3600


async def test_secure_cookies_when_asked(backend: FakeBackend) -> None:
    async with TestClient(TestServer(panel_app(backend, secure_cookies=True))) as secure:
        form = await secure.get("/login")
        assert "Secure" in (set_cookie(form, LOGIN_CSRF_COOKIE) or "")
        token = form_token(await form.text())  # the client keeps Secure cookies from plain HTTP: sent by hand
        response = await secure.post("/login", allow_redirects=False,
                                     headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={token}"},
                                     data={"login": "2001", "password": "alice-pw", "csrf": token})
        assert "Secure" in (set_cookie(response, SESSION_COOKIE) or "")


async def test_wrong_login_or_password_says_which_neither(client: Client, backend: FakeBackend) -> None:
    bodies = []
    for name, password in [("2001", "nope"), ("nobody", "alice-pw")]:
        form = await client.get("/login")
        response = await client.post("/login", allow_redirects=False, data={
            "login": name, "password": password, "csrf": form_token(await form.text())})
        assert response.status == 401
        assert set_cookie(response, SESSION_COOKIE) is None
        bodies.append((await response.text()).replace(name, "X"))
    assert "Wrong login or password" in bodies[0]
    same = [re.sub(r'name="server-time" content="\d+"', "", b.replace(form_token(b), "")) for b in bodies]
    assert same[0] == same[1]


def throttled_clock(client: Client, start: float = 1000.0) -> list[float]:
    now = [start]
    client.app[LOGINS].throttle = LoginThrottle(clock=lambda: now[0])
    return now


async def attempt_login(client: Client, password: str, name: str = "2001") -> ClientResponse:
    client.session.cookie_jar.clear()
    token = form_token(await (await client.get("/login")).text())
    return await client.post("/login", allow_redirects=False,
                             data={"login": name, "password": password, "csrf": token})


async def test_failures_slow_an_account_down_but_never_lock_its_owner_out(client: Client,
                                                                          backend: FakeBackend) -> None:
    """Before: five wrong guesses locked the login for five minutes, and a guess every five minutes kept
    the owner out for ever."""
    now = throttled_clock(client)
    for _ in range(3):  # free failures
        assert (await attempt_login(client, "wrong")).status == 401
    assert (await attempt_login(client, "wrong")).status == 401
    tried = backend.authentications
    refused = await attempt_login(client, "alice-pw")
    assert refused.status == 429
    assert "Too many failed attempts. Try again in 1 second." in await refused.text()
    assert set_cookie(refused, SESSION_COOKIE) is None
    assert backend.authentications == tried, "a throttled attempt must not even be checked"
    assert (await attempt_login(client, "boss-pw", "boss")).status == 303, "other accounts are not slowed"
    # An attacker who keeps guessing just after every delay makes the delay grow to its cap, no more:
    for _ in range(12):
        now[0] += client.app[LOGINS].throttle.wait_for("127.0.0.1", "2001")
        assert (await attempt_login(client, "wrong")).status == 401
    assert 0 < client.app[LOGINS].throttle.wait_for("127.0.0.1", "2001") <= 300
    now[0] += 300
    assert (await attempt_login(client, "alice-pw")).status == 303


async def test_spraying_one_password_over_many_accounts_is_slowed_by_address(client: Client) -> None:
    """Before: each login was counted alone, so one password tried on every login was never slowed."""
    throttled_clock(client)
    for number in range(10):
        assert (await attempt_login(client, "Summer2026!", f"user{number}")).status == 401
    assert (await attempt_login(client, "Summer2026!", "user10")).status == 401
    assert (await attempt_login(client, "Summer2026!", "user11")).status == 429


async def test_login_form_refuses_cross_site_posts(client: Client, backend: FakeBackend) -> None:
    token = form_token(await (await client.get("/login")).text())
    good = {"login": "2001", "password": "alice-pw"}
    no_field = await client.post("/login", data=good, allow_redirects=False)
    wrong_field = await client.post("/login", data={**good, "csrf": token + "x"}, allow_redirects=False)
    foreign = await client.post("/login", data={**good, "csrf": token}, allow_redirects=False,
                                headers={"Origin": "https://evil.example"})
    client.session.cookie_jar.clear()
    no_cookie = await client.post("/login", data={**good, "csrf": token}, allow_redirects=False)
    for response in (no_field, wrong_field, foreign, no_cookie):
        assert response.status == 403
        assert set_cookie(response, SESSION_COOKIE) is None
    assert backend.authentications == 0


async def test_login_goes_back_to_a_local_next_only(client: Client) -> None:
    token = form_token(await (await client.get("/login?next=/password")).text())
    data = {"login": "2001", "password": "alice-pw", "csrf": token, "next": "/password"}
    assert (await client.post("/login", data=data, allow_redirects=False)).headers["Location"] == "/password"
    client.session.cookie_jar.clear()
    for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = form_token(await (await client.get("/login")).text())
        response = await client.post("/login", allow_redirects=False, data={**data, "csrf": token, "next": bad})
        assert response.headers["Location"] == "/agent"
        client.session.cookie_jar.clear()


async def test_a_logged_in_user_visiting_login_goes_to_their_page(client: Client) -> None:
    await login(client, "boss", "boss-pw")
    response = await client.get("/login", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/wallboard"


# --- sessions ------------------------------------------------------------------------------------------

async def test_tampered_forged_and_expired_cookies_are_refused(client: Client) -> None:
    good = (await login(client, "2001", "alice-pw")).cookie
    body, signature = good.split(".")
    other_key = SessionSigner(bytes.fromhex("11" * 32))
    forged = other_key.issue(1, 0)[1]
    signer = client.app[WEB].signer
    real_clock = signer.clock
    signer.clock = lambda: real_clock() - 13 * 3600
    expired = signer.issue(1, 0)[1]
    signer.clock = real_clock
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (f"{flipped}.{signature}", f"{body}.{signature[:-1]}", forged, expired, "garbage", body):
        client.session.cookie_jar.clear()
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: bad})
        assert (await client.get("/api/agent")).status == 401, bad
        page = await client.get("/agent", allow_redirects=False)
        assert page.status == 303 and page.headers["Location"] == "/login?next=/agent"
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: good})
    assert (await client.get("/api/agent")).status == 200


async def test_logout_revokes_the_session(client: Client) -> None:
    me = await login(client, "2001", "alice-pw")
    other = client.app[WEB].signer.issue(1, 0)[1]  # the same user in another browser
    response = await client.post("/logout", data={"csrf": me.csrf}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    cleared = set_cookie(response, SESSION_COOKIE)
    assert cleared is not None and ("Max-Age=0" in cleared or "expires=" in cleared.lower())
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: me.cookie})
    assert (await client.get("/api/agent")).status == 401
    assert client.app[WEB].signer.verify(me.cookie) is not None, "still signed, refused only as revoked"
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: other})
    assert (await client.get("/api/agent")).status == 401, "logout ends the user's sessions everywhere"


async def test_logout_needs_the_csrf_token(client: Client) -> None:
    await login(client, "2001", "alice-pw")
    refused = await client.post("/logout", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    assert (await client.get("/api/agent")).status == 200


async def test_a_removed_user_loses_access_at_once(client: Client, backend: FakeBackend) -> None:
    await login(client, "2001", "alice-pw")
    assert (await client.get("/api/agent")).status == 200
    del backend.users[1]
    assert (await client.get("/api/agent")).status == 401


# --- CSRF and roles -------------------------------------------------------------------------------------

async def test_actions_need_the_csrf_token_and_our_origin(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "2001", "alice-pw")
    body = {"action": "ready", "params": {}}
    missing = await client.post("/api/agent/action", json=body)
    wrong = await client.post("/api/agent/action", json=body, headers={"X-CSRF-Token": me.csrf[:-1] + "x"})
    foreign = await client.post("/api/agent/action", json=body,
                                headers={"X-CSRF-Token": me.csrf, "Origin": "http://evil.example"})
    null_origin = await client.post("/api/agent/action", json=body,
                                    headers={"X-CSRF-Token": me.csrf, "Origin": "null"})
    for response in (missing, wrong, foreign, null_origin):
        assert response.status == 403
        assert "error" in await response.json()
    assert backend.actions == []
    same_site = await client.post("/api/agent/action", json=body,
                                  headers={"X-CSRF-Token": me.csrf, "Origin": origin(client)})
    assert same_site.status == 200 and await same_site.json() == {"ok": True}
    no_origin = await client.post("/api/agent/action", json=body, headers={"X-CSRF-Token": me.csrf})
    assert no_origin.status == 200
    assert [a[1] for a in backend.actions] == ["ready", "ready"]


async def test_another_sessions_token_does_not_do(client: Client, backend: FakeBackend) -> None:
    other = await login(client, "2005", "sam-pw")
    client.session.cookie_jar.clear()
    await login(client, "2001", "alice-pw")
    response = await client.post("/api/agent/action", json={"action": "ready"}, headers={"X-CSRF-Token": other.csrf})
    assert response.status == 403 and backend.actions == []


async def test_an_agent_is_refused_the_wallboard(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "2001", "alice-pw")
    page = await client.get("/wallboard")
    assert page.status == 403
    assert "This page is for supervisors" in await page.text()
    assert (await client.get("/api/wallboard")).status == 403
    assert (await client.get("/api/wallboard/events")).status == 403
    approve = await client.post("/api/supervisor/action", json={"action": "approve_pause", "params": {"agent_id": 1}},
                                headers={"X-CSRF-Token": me.csrf})
    assert approve.status == 403 and backend.actions == []


async def test_a_supervisor_is_refused_the_agent_page(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "boss", "boss-pw")
    page = await client.get("/agent")
    assert page.status == 403 and "This page is for agents" in await page.text()
    assert (await client.get("/api/agent")).status == 403
    assert (await client.get("/api/agent/events")).status == 403
    act = await client.post("/api/agent/action", json={"action": "ready"}, headers={"X-CSRF-Token": me.csrf})
    assert act.status == 403 and backend.actions == []
    assert (await client.get("/wallboard")).status == 200


async def test_a_user_with_both_roles_sees_both_pages_and_links(client: Client) -> None:
    await login(client, "2005", "sam-pw")
    agent = await (await client.get("/agent")).text()
    assert 'href="/wallboard"' in agent and 'href="/agent"' in agent
    assert (await client.get("/wallboard")).status == 200


async def test_not_logged_in_pages_redirect_and_apis_answer_401(client: Client) -> None:
    for path in ("/agent", "/wallboard", "/password"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == f"/login?next={path}"
    for path in ("/api/agent", "/api/agent/events", "/api/wallboard", "/api/wallboard/events"):
        response = await client.get(path)
        assert response.status == 401 and (await response.json())["error"]
    assert (await client.post("/api/agent/action", json={"action": "ready"})).status == 401


# --- actions and password -------------------------------------------------------------------------------

async def test_agent_actions_reach_the_backend_and_refusals_come_back(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "2001", "alice-pw")
    headers = {"X-CSRF-Token": me.csrf}
    ok = await client.post("/api/agent/action", json={"action": "pause", "params": {"reason": "lunch", "n": 2}},
                           headers=headers)
    assert ok.status == 200 and await ok.json() == {"ok": True}
    assert backend.actions[-1] == (1, "pause", {"reason": "lunch", "n": "2"})
    refused = await client.post("/api/agent/action", json={"action": "transfer_complete"}, headers=headers)
    assert refused.status == 409
    assert (await refused.json())["error"] == "You cannot transfer_complete now"
    for bad in ('{"params": {}}', "not json", '{"action": "x", "params": [1]}', '{"action": "x", "params": {"a": {}}}'):
        response = await client.post("/api/agent/action", data=bad,
                                     headers={**headers, "Content-Type": "application/json"})
        assert response.status == 400, bad
        assert (await response.json())["error"]


async def test_supervisor_actions(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "boss", "boss-pw")
    response = await client.post("/api/supervisor/action", headers={"X-CSRF-Token": me.csrf},
                                 json={"action": "approve_pause", "params": {"agent_id": 1}})
    assert response.status == 200
    assert backend.actions == [(3, "approve_pause", {"agent_id": "1"})]
    response = await client.post("/api/supervisor/action", headers={"X-CSRF-Token": me.csrf},
                                 json={"action": "fire_everyone"})
    assert response.status == 400 and (await response.json())["error"] == "Unknown action"


async def test_password_change(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "2001", "alice-pw")

    async def change(old: str, new: str, repeat: str) -> ClientResponse:
        return await client.post("/password", data={"csrf": me.csrf, "old": old, "new": new, "repeat": repeat})

    wrong = await change("nope", "new-password", "new-password")
    assert wrong.status == 403 and "The current password is wrong" in await wrong.text()
    differ = await change("alice-pw", "new-password", "new-passw0rd")
    assert differ.status == 400 and "differ" in await differ.text()
    weak = await change("alice-pw", "short", "short")
    assert weak.status == 400 and "at least 8" in await weak.text()
    refused = await client.post("/password", data={"csrf": "x", "old": "alice-pw", "new": "a" * 9, "repeat": "a" * 9})
    assert refused.status == 403
    elsewhere = client.app[WEB].signer.issue(1, 0)[1]  # a session in another browser
    done = await change("alice-pw", "new-password", "new-password")
    assert done.status == 200 and "Your password was changed" in await done.text()
    assert backend.passwords["2001"] == "new-password"
    assert (await client.get("/api/agent")).status == 200, "this browser carries on with a new session"
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: elsewhere})
    assert (await client.get("/api/agent")).status == 401, "a password change ends the other sessions"


async def test_wrong_current_passwords_are_throttled_like_logins(client: Client) -> None:
    throttled_clock(client)
    me = await login(client, "2001", "alice-pw")
    for _ in range(4):
        response = await client.post("/password", data={"csrf": me.csrf, "old": "guess", "new": "new-password",
                                                         "repeat": "new-password"})
        assert response.status == 403
    slowed = await client.post("/password", data={"csrf": me.csrf, "old": "alice-pw", "new": "new-password",
                                                  "repeat": "new-password"})
    assert slowed.status == 429 and "Too many failed attempts" in await slowed.text()


# --- pages and headers -----------------------------------------------------------------------------------

AGENT_IDS = ["agent-state", "agent-reason", "time-in-state", "call-card", "call-number", "call-customer", "call-queue",
             "wrapup-form", "wrapup-code", "wrapup-note", "wrapup-submit", "btn-login", "btn-logout", "btn-ready",
             "pause-reason", "btn-pause", "dial-number", "btn-dial", "callbacks", "message", "btn-hangup", "btn-hold",
             "btn-unhold", "transfer-kind", "transfer-target", "transfer-mode", "btn-transfer",
             "btn-transfer-complete", "btn-transfer-cancel"]


async def test_pages_carry_the_element_ids_and_no_inline_script(client: Client) -> None:
    await login(client, "2005", "sam-pw")
    agent = await (await client.get("/agent")).text()
    for element in AGENT_IDS:
        assert agent.count(f'id="{element}"') == 1, element
    assert re.search(r'id="call-card"[^>]*hidden', agent)
    wallboard = await (await client.get("/wallboard")).text()
    for element in ("queues", "agents", "approvals"):
        assert f'id="{element}"' in wallboard
    for page in (agent, wallboard, await (await client.get("/password")).text()):
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline script"
        assert " style=" not in page and "<style" not in page and " on" + "click=" not in page
    for script in ("/static/panel.js", "/static/agent.js", "/static/wallboard.js", "/static/panel.css"):
        response = await client.get(script)
        assert response.status == 200, script
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_security_headers_on_pages_and_apis(client: Client) -> None:
    anonymous = await client.get("/login")
    await login(client, "2005", "sam-pw")
    for response in (anonymous, await client.get("/agent"), await client.get("/wallboard"),
                     await client.get("/api/agent"), await client.get("/api/wallboard"),
                     await client.get("/password")):
        assert response.status == 200, response.url
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
    refused = await client.get("/api/supervisor/action")
    assert refused.headers["Cache-Control"] == "no-store"


async def test_api_agent_returns_the_view_and_backend_refusals(client: Client) -> None:
    await login(client, "2001", "alice-pw")
    view = await (await client.get("/api/agent")).json()
    assert view["agent"]["state"] == "paused" and view["agent"]["extension"] == "2001"


# --- server-sent events ------------------------------------------------------------------------------------

async def test_agent_events_send_the_view_now_and_on_each_change(client: Client, backend: FakeBackend) -> None:
    await login(client, "2001", "alice-pw")
    client.app[PANEL].ping_interval = 0.2
    stream = await client.get("/api/agent/events")
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-store"
    event, data = await read_event(stream)
    assert event == "view" and '"state":"paused"' in data
    backend.bump()  # a version change that does not touch this agent's view sends no view
    assert await read_event(stream, pings=True) == ("ping", "")
    backend.ring(1)
    event, data = await read_event(stream)
    assert event == "view" and '"state":"ringing"' in data and "Carl Customer" in data
    backend.set_state(1, "on_call")
    event, data = await read_event(stream)
    assert '"state":"on_call"' in data
    stream.close()


async def test_an_agents_streams_share_one_view_per_change(client: Client, backend: FakeBackend) -> None:
    """Before: every open stream (a tab) built and serialised the agent's whole view on every change."""
    await login(client, "2001", "alice-pw")
    tabs = [await client.get("/api/agent/events") for _ in range(5)]
    first = [await read_event(tab) for tab in tabs]
    assert {event for event, _ in first} == {"view"} and len({data for _, data in first}) == 1
    assert backend.agent_view_calls == 1
    backend.set_state(1, "ready")
    second = [await read_event(tab) for tab in tabs]
    assert len({data for _, data in second}) == 1 and '"state":"ready"' in second[0][1]
    assert backend.agent_view_calls == 2, "one view for the five streams of one change"
    view = await (await client.get("/api/agent")).json()
    assert json.dumps(view, separators=(",", ":"), ensure_ascii=False) == second[0][1]
    for tab in tabs:
        tab.close()


async def test_agent_events_end_when_the_session_is_revoked(client: Client, backend: FakeBackend) -> None:
    me = await login(client, "2001", "alice-pw")
    client.app[PANEL].ping_interval = 0.1
    client.app[PANEL].recheck_interval = 0.0
    stream = await client.get("/api/agent/events")
    await read_event(stream)
    await client.post("/logout", data={"csrf": me.csrf}, allow_redirects=False)
    with pytest.raises(EOFError):
        while True:
            await read_event(stream, pings=True)


async def test_wallboard_is_computed_once_per_version_for_all_viewers(client: Client, backend: FakeBackend) -> None:
    await login(client, "boss", "boss-pw")
    viewers = [await client.get("/api/wallboard/events") for _ in range(6)]
    first = [await read_event(viewer) for viewer in viewers]
    assert {event for event, _ in first} == {"wallboard"}
    assert len({data for _, data in first}) == 1
    assert backend.wallboard_calls == 1
    assert client.app[PANEL].feed.viewers == 6

    backend.set_state(1, "ready")
    second = [await read_event(viewer) for viewer in viewers]
    assert len({data for _, data in second}) == 1 and '"version":2' in second[0][1]
    assert backend.wallboard_calls == 2

    backend.set_state(1, "paused", "lunch")
    backend.set_state(1, "ready")
    third = [await read_event(viewer) for viewer in viewers]
    assert len({data for _, data in third}) == 1 and '"version":4' in third[0][1]
    assert backend.wallboard_calls <= 4, "at most once per version"

    calls = backend.wallboard_calls
    snapshot = await client.get("/api/wallboard")
    assert await snapshot.text() == third[0][1]
    assert backend.wallboard_calls == calls, "the JSON API shares the same text"
    for viewer in viewers:
        viewer.close()


async def test_a_units_change_rescopes_open_wallboards_at_once(client: Client, backend: FakeBackend) -> None:
    """Before: an open wallboard kept its viewer's old scope until its periodic check (15 s)."""
    scoped: dict[int, WallboardFilter] = {}
    backend.wallboard_filter = lambda user_id: asyncio.sleep(0, scoped.get(user_id, FakeBackend.ALL))  # type: ignore
    await login(client, "boss", "boss-pw")
    stream = await client.get("/api/wallboard/events")
    assert json.loads((await read_event(stream))[1])["agents"]
    scoped[3] = WallboardFilter(("units", (7,)), lambda view: {**view, "agents": [], "notice": "scoped"})
    units_changed(client.app)  # what the ACD's plugin does on UnitsChanged
    event, data = await asyncio.wait_for(read_event(stream), 2)
    assert event == "wallboard" and json.loads(data)["notice"] == "scoped"
    stream.close()


async def test_each_viewer_gets_the_wallboard_through_their_scope(client: Client, backend: FakeBackend) -> None:
    """Before: one wallboard text for every supervisor, whatever their units."""
    scoped = {3: WallboardFilter(("units", (7,)), lambda view: {**view, "agents": [], "notice": "scoped"})}
    backend.wallboard_filter = lambda user_id: asyncio.sleep(0, scoped.get(user_id, FakeBackend.ALL))  # type: ignore
    await login(client, "boss", "boss-pw")
    boss_stream = await client.get("/api/wallboard/events")
    boss_view = json.loads((await read_event(boss_stream))[1])
    assert boss_view["agents"] == [] and boss_view["notice"] == "scoped"
    assert json.loads(await (await client.get("/api/wallboard")).text()) == boss_view
    client.session.cookie_jar.clear()
    await login(client, "admin", "admin-pw")
    everything = json.loads(await (await client.get("/api/wallboard")).text())
    assert everything["agents"] and "notice" not in everything
    backend.set_state(1, "ready")
    assert json.loads((await read_event(boss_stream))[1])["agents"] == []
    boss_stream.close()


async def test_wallboard_viewers_get_pings_and_leave(client: Client, backend: FakeBackend) -> None:
    await login(client, "admin", "admin-pw")
    client.app[PANEL].ping_interval = 0.1
    stream = await client.get("/api/wallboard/events")
    await read_event(stream)
    assert await read_event(stream, pings=True) == ("ping", "")
    stream.close()
    for _ in range(50):
        if client.app[PANEL].feed.viewers == 0:
            break
        await asyncio.sleep(0.05)
    assert client.app[PANEL].feed.viewers == 0


async def test_open_streams_do_not_hold_up_shutdown(backend: FakeBackend) -> None:
    server = TestServer(panel_app(backend))
    async with TestClient(server) as test_client:
        await login(test_client, "2005", "sam-pw")
        agent = await test_client.get("/api/agent/events")
        board = await test_client.get("/api/wallboard/events")
        await read_event(agent)
        await read_event(board)
        async with asyncio.timeout(5):
            await server.close()
