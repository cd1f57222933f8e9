"""Supervisor monitoring in the panel (MON-3) and its admin pages (MON-2, the audit).

The wallboard's live calls, the monitor actions, ``/api/supervisor/monitor`` and the ``event: monitor``
of the wallboard stream run on a fake PanelBackend (test_web's, with monitoring); the permission groups
page and the monitoring log (monitor/http.py) on the real MonitorAdmin and a migrated SQLite database."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcenter.acd.http import PANEL
from callcenter.db.engine import Database
from callcenter.db.models import MonitorEvent, MonitorGroup, MonitorSession, User
from callcenter.errors import ActionRefused
from callcenter.monitor import groups
from callcenter.monitor.admin import MonitorAdmin
from callcenter.users.accounts import PanelUser
from callcenter.users.services import add_user
from callcenter.web.admin_pages import ADMIN
from tests.support.admin import admin_features, install_admin
from tests.support.browser import ServedApp, chromium, log_in, needs_chromium, serve
from tests.support.webapp import build_app
from tests.unit.test_web import NOW, FakeBackend, login, panel_app, read_event
from tests.unit.test_web_admin import USERS, World, error_of, password, seed
from tests.unit.test_web_browser import watch

Client = TestClient[web.Request, web.Application]
MODES = ("silent", "whisper", "barge")


class MonitorBackend(FakeBackend):
    """test_web's fake with two live calls and a monitoring session per supervisor. Sam Both (2005, agent and
    supervisor) may monitor; Bea Boss has no extension, so no phone to be rung."""

    def __init__(self) -> None:
        super().__init__()
        self.live_calls: list[dict[str, Any]] = [
            {"agent": "2001", "agent_name": "Alice Agent", "number": "+4930123456", "queue": "sales",
             "direction": "inbound", "since": NOW},
            {"agent": "2007", "agent_name": "Dora Direct", "number": "", "queue": None, "direction": "direct",
             "since": None},
        ]
        self.sessions: dict[int, dict[str, Any]] = {}
        self.refuse = ""
        self.view_error = ""

    def wallboard(self) -> dict[str, Any]:
        board = super().wallboard()
        board["live_calls"] = [
            {**call, "monitored_by": [self.users[uid].name for uid, s in self.sessions.items()
                                      if s["agent"] == call["agent"] and s["state"] == "active"]}
            for call in self.live_calls]
        return board

    def monitor_view(self, user_id: int) -> dict[str, Any]:
        if self.view_error:
            raise ActionRefused(self.view_error, 503)
        user = self.users[user_id]
        return {"session": self.sessions.get(user_id), "can_monitor": bool(user.extension and user.has("supervisor"))}

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        if not action.startswith("monitor_"):
            await super().supervisor_action(user_id, action, params)
            return
        self.actions.append((user_id, action, dict(params)))
        if self.refuse:
            raise ActionRefused(self.refuse)
        mode = params.get("mode", "")
        if action != "monitor_stop" and mode not in MODES:
            raise ActionRefused("Mode must be silent, whisper or barge.")
        if action == "monitor_start":
            if not self.monitor_view(user_id)["can_monitor"]:
                raise ActionRefused("You need an extension (a phone) to monitor calls.")
            call = next((c for c in self.live_calls if c["agent"] == params.get("extension")), None)
            if call is None:
                raise ActionRefused(f"{params.get('extension')} is not on a call.", 404)
            self.sessions[user_id] = {"id": f"mon-{len(self.actions)}", "agent": call["agent"],
                                      "agent_name": call["agent_name"], "mode": mode, "state": "ringing"}
        elif user_id not in self.sessions:
            raise ActionRefused("You are not monitoring a call.")
        elif action == "monitor_mode":
            self.sessions[user_id]["mode"] = mode
        elif action == "monitor_stop":
            del self.sessions[user_id]
        else:
            raise ActionRefused(f"Unknown action {action!r}.")
        self.bump()

    def answer(self, user_id: int) -> None:
        """The supervisor picks up their ringing phone: monitoring starts."""
        self.sessions[user_id]["state"] = "active"
        self.bump()


@pytest.fixture
def backend() -> MonitorBackend:
    return MonitorBackend()


@pytest.fixture
async def client(backend: MonitorBackend) -> AsyncIterator[Client]:
    async with TestClient(TestServer(panel_app(backend))) as test_client:
        yield test_client


async def act(client: Client, csrf: str, action: str, **params: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/supervisor/action", json={"action": action, "params": params},
                                 headers={"X-CSRF-Token": csrf})
    return response.status, await response.json()


# --- the wallboard: live calls, actions, the supervisor's own session ----------------------------------

async def test_wallboard_lists_live_calls_and_carries_the_monitor_elements(client: Client) -> None:
    await login(client, "2005", "sam-pw")
    board = await (await client.get("/api/wallboard")).json()
    assert [c["agent"] for c in board["live_calls"]] == ["2001", "2007"]
    html = await (await client.get("/wallboard")).text()
    for element in ("live-calls", "monitor-bar", "monitor-agent", "monitor-mode", "monitor-state",
                    "btn-monitor-silent", "btn-monitor-whisper", "btn-monitor-barge", "btn-monitor-stop"):
        assert html.count(f'id="{element}"') == 1, element
    assert re.search(r'id="monitor-bar"[^>]*hidden', html) and re.search(r'id="live-calls"[^>]*hidden', html)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html
    script = (Path(__file__).parents[2] / "callcenter/web/static/wallboard.js").read_text()
    for word in ('"monitor_start"', '"monitor_mode"', '"monitor_stop"', "/api/supervisor/monitor"):
        assert word in script


async def test_monitor_actions_reach_the_backend_and_the_session_is_served(
        client: Client, backend: MonitorBackend) -> None:
    me = await login(client, "2005", "sam-pw")
    response = await client.get("/api/supervisor/monitor")
    assert response.status == 200 and await response.json() == {"session": None, "can_monitor": True}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")

    assert await act(client, me.csrf, "monitor_start", extension="2001", mode="whisper") == (200, {"ok": True})
    assert backend.actions[-1] == (2, "monitor_start", {"extension": "2001", "mode": "whisper"})
    view = await (await client.get("/api/supervisor/monitor")).json()
    assert view["session"] == {"id": "mon-1", "agent": "2001", "agent_name": "Alice Agent", "mode": "whisper",
                               "state": "ringing"}
    backend.answer(2)
    board = await (await client.get("/api/wallboard")).json()
    assert board["live_calls"][0]["monitored_by"] == ["Sam Both"]
    assert await act(client, me.csrf, "monitor_mode", mode="barge") == (200, {"ok": True})
    assert (await (await client.get("/api/supervisor/monitor")).json())["session"]["mode"] == "barge"
    assert await act(client, me.csrf, "monitor_stop") == (200, {"ok": True})
    assert (await (await client.get("/api/supervisor/monitor")).json())["session"] is None

    # refusals come back as the backend's message with its status
    assert await act(client, me.csrf, "monitor_start", extension="2001", mode="loud") == (
        400, {"error": "Mode must be silent, whisper or barge.", "error_id": "panel-action-refused"})
    status_, body = await act(client, me.csrf, "monitor_start", extension="2999", mode="silent")
    assert (status_, body["error"]) == (404, "2999 is not on a call.")
    status_, body = await act(client, me.csrf, "monitor_stop")
    assert (status_, body["error"]) == (400, "You are not monitoring a call.")
    body_only = {"action": "monitor_start", "params": {"extension": "2001", "mode": "silent"}}
    missing_token = await client.post("/api/supervisor/action", json=body_only)
    assert missing_token.status == 403
    assert [a[1] for a in backend.actions].count("monitor_start") == 3


async def test_a_supervisor_without_a_phone_cannot_monitor(client: Client, backend: MonitorBackend) -> None:
    me = await login(client, "boss", "boss-pw")
    assert await (await client.get("/api/supervisor/monitor")).json() == {"session": None, "can_monitor": False}
    status_, body = await act(client, me.csrf, "monitor_start", extension="2001", mode="silent")
    assert (status_, body["error"]) == (400, "You need an extension (a phone) to monitor calls.")


async def test_agents_are_refused_monitoring_and_strangers_asked_to_log_in(
        client: Client, backend: MonitorBackend) -> None:
    assert (await client.get("/api/supervisor/monitor")).status == 401
    me = await login(client, "2001", "alice-pw")
    refused = await client.get("/api/supervisor/monitor")
    assert refused.status == 403 and (await refused.json())["error"] == "This page is for supervisors"
    assert (await act(client, me.csrf, "monitor_start", extension="2001", mode="silent"))[0] == 403
    assert backend.actions == [] and backend.sessions == {}


async def test_a_backend_refusing_the_view_gives_its_message_and_no_monitor_event(
        client: Client, backend: MonitorBackend) -> None:
    await login(client, "2005", "sam-pw")
    backend.view_error = "Monitoring is not available."
    response = await client.get("/api/supervisor/monitor")
    assert response.status == 503 and (await response.json())["error"] == "Monitoring is not available."
    client.app[PANEL].ping_interval = 0.1
    stream = await client.get("/api/wallboard/events")
    assert (await read_event(stream))[0] == "wallboard"
    assert await read_event(stream, pings=True) == ("ping", "")
    stream.close()


async def test_the_wallboard_stream_sends_the_supervisors_own_session_when_it_changes(
        client: Client, backend: MonitorBackend) -> None:
    me = await login(client, "2005", "sam-pw")
    client.app[PANEL].ping_interval = 0.2
    stream = await client.get("/api/wallboard/events")
    assert (await read_event(stream))[0] == "wallboard"
    # the page starts from "no session, may not monitor": this one differs, so it is sent
    assert await read_event(stream) == ("monitor", '{"session":null,"can_monitor":true}')
    await act(client, me.csrf, "monitor_start", extension="2001", mode="silent")
    assert (await read_event(stream))[0] == "wallboard"
    event, data = await read_event(stream)
    assert event == "monitor" and '"state":"ringing"' in data and '"mode":"silent"' in data
    backend.answer(2)
    event, data = await read_event(stream)
    assert event == "wallboard" and '"monitored_by":["Sam Both"]' in data
    event, data = await read_event(stream)
    assert event == "monitor" and '"state":"active"' in data
    backend.set_state(1, "ready")  # a change that is not this supervisor's: the wallboard only
    assert (await read_event(stream))[0] == "wallboard"
    assert await read_event(stream, pings=True) == ("ping", "")
    stream.close()


async def test_a_viewer_who_cannot_monitor_gets_no_monitor_events(client: Client, backend: MonitorBackend) -> None:
    await login(client, "boss", "boss-pw")
    client.app[PANEL].ping_interval = 0.1
    stream = await client.get("/api/wallboard/events")
    assert (await read_event(stream))[0] == "wallboard"
    assert await read_event(stream, pings=True) == ("ping", "")
    stream.close()


# --- the admin pages: permission groups and the monitoring log -----------------------------------------

# login -> (name, extension, roles, unit): supervisors with a phone, one of them in the North unit
SUPERVISORS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "2005": ("Sam Super", "2005", ("supervisor",), None),
    "2006": ("Nina Northsup", "2006", ("supervisor",), "North"),
}


def at(second: int) -> datetime:
    return datetime(2030, 1, 5, 10, 0, second, tzinfo=UTC)


def seed_monitoring(db: Database) -> None:
    with db.session() as session:
        for login_name, (name, extension, roles, unit) in SUPERVISORS.items():
            add_user(session, name=name, login=login_name, extension=extension, roles=roles, org_unit=unit,
                     panel_password=password(login_name))
        ids = {u.login: u.id for u in session.scalars(select(User))}
        unit_of = {u.id: u.org_unit_id for u in session.scalars(select(User))}
        # id, supervisor (user, extension), agent (user, extension), start second, modes, outcome
        sessions = [
            ("sess-a", "2005", "2001", 1, [("silent", 1), ("whisper", 9)], "stopped"),  # agent in North
            ("sess-b", "2006", "2002", 20, [("barge", 21)], "call_ended"),  # supervisor in North
            ("sess-c", "2005", "2002", 30, [], "denied"),  # neither in North
            ("sess-d", "2099", "2098", 40, [("silent", 41)], ""),  # users gone; still going
        ]
        for sid, sup, agent, second, modes, outcome in sessions:
            session.add(MonitorSession(
                id=sid, supervisor_id=ids.get(sup), supervisor=sup, agent_id=ids.get(agent), agent=agent,
                supervisor_unit_id=unit_of.get(ids.get(sup, 0)), agent_unit_id=unit_of.get(ids.get(agent, 0)),
                origin="panel" if sid != "sess-b" else "feature", started_at=at(second),
                ended_at=at(second + 15) if outcome else None, outcome=outcome,
                customer="+4930123456" if sid == "sess-a" else ""))
            session.flush()
            session.add_all(MonitorEvent(session_id=sid, at=at(s), mode=mode, by="panel") for mode, s in modes)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-template")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    (root / "files").mkdir()
    seed(db, root / "files")
    seed_monitoring(db)
    db.dispose()
    return root


@dataclass
class AdminWorld(World):
    changes: list[str] = field(default_factory=list)  # calls of on_monitor_groups_changed


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> AsyncIterator[AdminWorld]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    panel = FakeBackend()
    with db.session() as session:
        panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                       for u in session.scalars(select(User))}
    panel.passwords = {name: password(name) for name in [*USERS, *SUPERVISORS]}
    changes: list[str] = []
    features = admin_features(db, tmp_path, on_monitor_groups_changed=lambda: changes.append("reload"))
    app = install_admin(build_app(panel), features)
    async with TestClient(TestServer(app)) as client:
        yield AdminWorld(db, tmp_path, panel, client, changes)
    db.dispose()


def group_rows(html: str) -> dict[str, tuple[str, str, bool]]:
    """Group -> (supervisors, agents, from the configuration) as listed."""
    found = re.findall(r'<tr data-group="([^"]+)" data-from-config="(true|false)">.*?<td class="supervisors">([^<]*)'
                       r'</td>\s*<td class="agents">([^<]*)</td>', html, re.S)
    return {name: (sups, agents, config == "true") for name, config, sups, agents in found}


def saved_groups(db: Database) -> list[tuple[str, tuple[str, ...], tuple[str, ...], bool, bool]]:
    with db.session() as session:
        return [(g.name, g.supervisors, g.agents, g.all_agents, g.from_config) for g in groups.list_groups(session)]


async def test_groups_are_created_edited_and_removed(world: AdminWorld) -> None:
    csrf = await world.login("root")
    html = await world.page("/admin/monitoring")
    assert group_rows(html) == {} and "No groups yet" in html
    assert 'id="nav-monitoring"' in html and 'id="nav-monitor-log"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and not re.search(r"<[^>]+\s(style|on[a-z]+)=", html)

    created = await world.client.post("/admin/monitoring", allow_redirects=False, data={
        "csrf": csrf, "name": "floor-1", "supervisors": "2005, 2006", "agents": "2001\r\n2002"})
    assert created.status == 303 and created.headers["Location"] == "/admin/monitoring?done=saved"
    assert world.changes == ["reload"]
    html = await world.page("/admin/monitoring?done=saved")
    assert "The group was saved" in html
    assert group_rows(html) == {"floor-1": ("2005, 2006", "2001, 2002", False)}
    edit = await world.page("/admin/monitoring?edit=floor-1")
    assert 'value="floor-1"' in edit and ">2005, 2006</textarea>" in edit and "Edit the group" in edit

    edited = await world.client.post("/admin/monitoring", allow_redirects=False, data={
        "csrf": csrf, "name": "floor-1", "supervisors": "2006", "agents": " * "})
    assert edited.status == 303
    assert group_rows(await world.page("/admin/monitoring")) == {"floor-1": ("2006", "every agent", False)}
    assert ">*</textarea>" in await world.page("/admin/monitoring?edit=floor-1")
    assert saved_groups(world.db) == [("floor-1", ("2006",), (), True, False)]

    removed = await world.client.post("/admin/monitoring/remove", allow_redirects=False,
                                      data={"csrf": csrf, "name": "floor-1"})
    assert removed.status == 303 and removed.headers["Location"] == "/admin/monitoring?done=removed"
    assert group_rows(await world.page("/admin/monitoring?done=removed")) == {}
    assert world.changes == ["reload"] * 3


async def test_a_group_from_the_configuration_says_so_and_stays_marked_when_edited(world: AdminWorld) -> None:
    with world.db.session() as session:
        groups.save_group(session, "supervisors", ["2005"], ["*"], from_config=True)
    csrf = await world.login("root")
    html = await world.page("/admin/monitoring")
    assert group_rows(html) == {"supervisors": ("2005", "every agent", True)}
    assert "written again from it at every" in html and "It comes back at the next start" in html
    response = await world.client.post("/admin/monitoring", allow_redirects=False, data={
        "csrf": csrf, "name": "supervisors", "supervisors": "2005", "agents": "2001"})
    assert response.status == 303
    assert saved_groups(world.db) == [("supervisors", ("2005",), ("2001",), False, True)]


@pytest.mark.parametrize(("name", "supervisors", "agents", "message"), [
    ("floor", "2005", "2001, 2999", "agents: no user with extension or login &#39;2999&#39;"),
    ("floor", "2005, ghost", "2001", "supervisors: no user with extension or login &#39;ghost&#39;"),
    ("floor", "boss", "2001", "boss has no extension, so no phone to monitor with"),
    ("floor", "", "2001", "a group needs at least one supervisor"),
    ("floor", "2005", "", "a group needs agents (extensions, or &#34;*&#34; for every agent)"),
    ("floor", "2005", "*, 2001", "Agents: either &#34;*&#34; (every agent) or a list of extensions, not both"),
    ("floor", "*", "2001", "Supervisors: extensions or logins; &#34;*&#34; is only for the agents"),
    ("a b", "2005", "2001", "group name &#39;a b&#39;: 1-40 letters, digits, _ or -"),
    ("", "2005", "2001", "group name &#39;&#39;: 1-40 letters, digits, _ or -"),
    ("x" * 41, "2005", "2001", "Name: at most 40 characters (letters, digits, _ or -)"),
    ("fl\x00or", "2005", "2001", "Name: control characters are not allowed"),
    ("floor", "2005\x07", "2001", "Supervisors: control characters are not allowed"),
    ("floor", "2005", "2001," * 1300, "Agents: at most 5000 characters"),
])
async def test_bad_groups_are_refused_with_a_message(world: AdminWorld, name: str, supervisors: str, agents: str,
                                                     message: str) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/monitoring", data={"csrf": csrf, "name": name,
                                                                  "supervisors": supervisors, "agents": agents})
    html = await response.text()
    assert response.status == 400, html
    assert error_of(html) == message
    assert f'value="{name}"' in html  # the form keeps what was typed
    assert saved_groups(world.db) == [] and world.changes == []


async def test_removing_an_unknown_group_says_so(world: AdminWorld) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/monitoring/remove", data={"csrf": csrf, "name": "nowhere"})
    assert response.status == 400 and error_of(await response.text()) == "no monitoring group &#39;nowhere&#39;"
    assert world.changes == []


async def test_groups_are_for_top_admins_only(world: AdminWorld) -> None:
    with world.db.session() as session:
        groups.save_group(session, "floor", ["2005"], ["2001"])
    for who, message in (("2001", "This page is for admins"), ("2005", "This page is for admins"),
                         ("boss", "This page is for admins"), ("nadmin", "This page is for top admins")):
        csrf = await world.login(who)
        assert message in await world.page("/admin/monitoring", 403), who
        for path, data in (("/admin/monitoring", {"name": "floor", "supervisors": "2005", "agents": "*"}),
                           ("/admin/monitoring/remove", {"name": "floor"})):
            assert (await world.client.post(path, data={"csrf": csrf, **data})).status == 403, (who, path)
    await world.login("root")
    assert (await world.client.post("/admin/monitoring/remove", data={"name": "floor"})).status == 403  # no token
    assert saved_groups(world.db) == [("floor", ("2005",), ("2001",), False, False)] and world.changes == []


def log_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)">', html)


async def test_the_monitoring_log_lists_sessions_with_their_modes(world: AdminWorld) -> None:
    await world.login("root")
    html = await world.page("/admin/monitoring/log")
    assert log_rows(html) == ["sess-d", "sess-c", "sess-b", "sess-a"]
    row = html.split('<tr data-id="sess-a">', 1)[1].split("</tr>", 1)[0]
    cells = [re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells == ["2030-01-05 10:00:01", "Sam Super (2005)", "Alice Agent (2001)", "+4930123456", "panel",
                     "listen 10:00:01, whisper 10:00:09", "2030-01-05 10:00:16", "stopped"]
    gone = html.split('<tr data-id="sess-d">', 1)[1].split("</tr>", 1)[0]
    assert "<td>2099</td><td>2098</td>" in gone and "in progress" in gone
    assert 'class="outcome">call ended</td>' in html and "three-way 10:00:21" in html

    world.client.app[ADMIN].per_page = 3
    second = await world.page("/admin/monitoring/log?page=2")
    assert log_rows(second) == ["sess-a"] and "Page 2 of 2" in second
    for bad in ("0", "x", "9999999"):
        assert error_of(await world.page(f"/admin/monitoring/log?page={bad}", 400)).startswith("page must be")


async def test_a_unit_admin_sees_the_sessions_of_their_units_users(world: AdminWorld) -> None:
    await world.login("nadmin")
    html = await world.page("/admin/monitoring/log")
    assert log_rows(html) == ["sess-b", "sess-a"]  # supervisor in North; agent in North
    assert "in your units" in html and 'id="nav-monitoring"' not in html and 'id="nav-monitor-log"' in html
    for who in ("2001", "boss", "2006"):
        await world.login(who)
        assert "This page is for admins" in await world.page("/admin/monitoring/log", 403)


async def test_the_service_checks_the_scope_itself(world: AdminWorld) -> None:
    service = MonitorAdmin(world.db)
    ids = world.ids()
    with pytest.raises(ActionRefused, match="top admin"):
        await service.save_monitor_group(ids["nadmin"], "x", ["2005"], ["*"])
    with pytest.raises(ActionRefused, match="for admins"):
        await service.monitor_log(ids["2006"], 1, 50)
    with world.db.session() as session:
        assert session.scalar(select(MonitorGroup)) is None


async def test_saving_a_group_reloads_the_permissions_off_the_event_loop(world: AdminWorld) -> None:
    """The reload reads the database: it runs in a worker thread while the loop goes on (it ran on the
    event loop before, blocking every call and page until it was done)."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    seen: list[tuple[int, bool]] = []  # (thread, whether the loop ran meanwhile) of each reload

    def reload() -> None:
        ran = threading.Event()
        loop.call_soon_threadsafe(ran.set)
        seen.append((threading.get_ident(), ran.wait(2)))

    service = MonitorAdmin(world.db, on_groups_changed=reload)
    ids = world.ids()
    await service.save_monitor_group(ids["root"], "floor-1", ["2005"], ["*"])
    await service.remove_monitor_group(ids["root"], "floor-1")
    assert len(seen) == 2
    assert all(thread != loop_thread and loop_ran for thread, loop_ran in seen), seen

# --- in a browser ---------------------------------------------------------------------------------------

@pytest.fixture
def served() -> Iterator[tuple[ServedApp, MonitorBackend]]:
    holder: dict[str, MonitorBackend] = {}

    def make() -> Any:
        holder["backend"] = MonitorBackend()  # made on the server's loop, where it is used
        return panel_app(holder["backend"])

    with serve(make) as server:
        yield server, holder["backend"]


@needs_chromium
def test_a_supervisor_whispers_switches_to_three_way_and_stops_from_the_wallboard(
        served: tuple[ServedApp, MonitorBackend]) -> None:
    from playwright.sync_api import expect

    server, backend = served
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        watch(page, errors)
        log_in(page, server.url, "2005", "sam-pw")
        page.goto(f"{server.url}/wallboard")
        calls = page.locator("#live-calls")
        expect(calls.locator("tbody tr")).to_have_count(2)
        alice = calls.locator('tr[data-extension="2001"]')
        expect(alice.locator(".agent")).to_have_text("Alice Agent (2001)")
        expect(alice.locator(".direction")).to_have_text("Inbound")
        expect(calls.locator('tr[data-extension="2007"] .number')).to_have_text("\N{EN DASH}")
        bar = page.locator("#monitor-bar")
        expect(bar).to_be_hidden()

        alice.locator('[data-testid="monitor-whisper"]').click()
        expect(bar).to_be_visible()
        expect(page.locator("#monitor-state")).to_have_text("Ringing your phone…")
        assert server.call(lambda: backend.actions[-1]) == (2, "monitor_start", {"extension": "2001",
                                                                                 "mode": "whisper"})
        server.call(backend.answer, 2)
        expect(page.locator("#monitor-state")).to_have_text("")
        expect(bar.locator(".monitor-what")).to_have_text("Monitoring: Alice Agent (2001) — Whisper")
        expect(alice.locator(".monitored-by")).to_have_text("Sam Both")
        expect(page.locator("#btn-monitor-whisper")).to_have_attribute("aria-pressed", "true")

        page.click("#btn-monitor-barge")
        expect(page.locator("#monitor-mode")).to_have_text("Three-way")
        expect(page.locator("#btn-monitor-barge")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#btn-monitor-whisper")).to_have_attribute("aria-pressed", "false")

        server.call(setattr, backend, "refuse", "The call has ended.")
        page.click("#btn-monitor-silent")
        expect(page.locator("#message")).to_have_text("The call has ended.")
        server.call(setattr, backend, "refuse", "")

        page.click("#btn-monitor-stop")
        expect(bar).to_be_hidden()
        expect(page.locator("#message")).to_be_hidden()
        assert [a[1] for a in server.call(lambda: backend.actions)] == [
            "monitor_start", "monitor_mode", "monitor_mode", "monitor_stop"]

        wall = browser.new_page()  # a supervisor without a phone (a wall screen): no live calls, no bar
        watch(wall, errors)
        log_in(wall, server.url, "boss", "boss-pw")
        expect(wall.locator('#agents tr[data-extension="2001"]')).to_have_count(1)
        expect(wall.locator("#connection")).to_have_text("Live")
        expect(wall.locator("#live-calls")).to_be_hidden()
        expect(wall.locator("#monitor-bar")).to_be_hidden()
    assert errors == []
