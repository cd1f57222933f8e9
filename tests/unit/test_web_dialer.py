"""Campaign calls in the panel: the preview card, the contact's fields, the callback time picked at wrap-up
and the campaigns on the wallboard.

The panel under test is the real ``AcdPanel`` on a real ``AcdService`` (test_acd's fake control and timers);
only the user lookup (test_web's users, instead of the database) and the dialer are fakes: ``FakeDialer``
answers what ``DialerService`` would and, like it, dials a preview through the ACD's click-to-call. So the
JSON the pages read and the ``call.extra`` the dialer's ``wrapped_up`` reads are the ones the app makes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.events import CallConnected, CallEnded, CallWrappedUp, campaign_calls
from callcenter.acd.model import AcdCall, Agent, AgentState, CallState, CustomerCard
from callcenter.acd.panel import AcdPanel, parse_callback_at
from callcenter.acd.records import AcdRecorder, DayFigures
from callcenter.acd.scope import UnitDirectory
from callcenter.acd.services import AcdService
from callcenter.acd.settings import AcdSettings, PauseReason
from callcenter.bus import Bus
from callcenter.errors import ActionRefused
from callcenter.users.accounts import PanelUser
from callcenter.users.units import Scope
from tests.support import routing
from tests.support.browser import ServedApp, chromium, log_in, needs_chromium, serve
from tests.unit.test_acd import FakeControl, FakeTimers, FakeWriter, Prompts, queue
from tests.unit.test_web import FakeBackend, login, panel_app
from tests.unit.test_web_browser import watch

Client = TestClient[web.Request, web.Application]
CODES = {"sale": "Sale", "later": "Call back later", "dnc": "Do not call", "retry": "Try again"}
FIELDS = {"plan": "gold", "city": "Berlin", "customer_no": "C-1042"}
ALICE, SAM, BOSS = 1, 2, 3
REFUSAL = "Campaign autumn already runs with queue outbound's agents; stop it first."
BRAKE = "abandon rate 5.0% over target 3% in window 24h: dialling 1 call per 2 free agents"
OVER = "Campaign autumn is over its abandon target of 3% (24h 5.0%). Confirm to start it anyway."


class FakeDialer:
    """What ``DialerService`` offers the panel, and its ACD hook (``wrapped_up`` notes what it read)."""

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd
        self.previews: dict[int, dict[str, Any]] = {}
        self.dispositions = {"spring": [{"code": "sale", "action": "done"}, {"code": "later", "action": "callback"},
                                        {"code": "dnc", "action": "dnc"}, {"code": "retry", "action": "retry"}]}
        self.running = {"autumn": True, "spring": False}
        self.refuse = ""
        self.log: list[tuple[Any, ...]] = []
        self.wrapped: list[tuple[str, Any, Any]] = []  # (code, callback_at, callback_mine) as the hook saw them

    def offer(self, user_id: int, callback: bool = False) -> None:
        self.previews[user_id] = {"campaign": "spring", "number": "+4930111222", "name": "Paula Preview",
                                  "fields": dict(FIELDS), "attempts": 2, "callback": callback}
        self.acd.notify()

    # what the panel calls
    def preview_for(self, user_id: int) -> dict[str, Any] | None:
        return self.previews.get(user_id)

    def dispositions_for(self, call: AcdCall | None) -> list[dict[str, str]]:
        return list(self.dispositions.get(call.campaign or "", [])) if call is not None else []

    async def preview_dial(self, user_id: int) -> None:
        preview = self.previews.pop(user_id, None)
        if preview is None:
            raise ActionRefused("You have no contact to preview.")
        self.log.append(("preview_dial", user_id))
        card = CustomerCard(preview["name"], f"Campaign {preview['campaign']}", [], dict(preview["fields"]))
        call = await self.acd.dial(user_id, preview["number"], campaign=preview["campaign"], card=card)
        call.extra["contact_id"] = 42

    async def preview_skip(self, user_id: int) -> None:
        if self.previews.pop(user_id, None) is None:
            raise ActionRefused("You have no contact to preview.")
        self.log.append(("preview_skip", user_id))
        self.acd.notify()

    def status(self) -> list[dict[str, Any]]:
        return [
            {"name": "autumn", "mode": "predictive", "queue": "outbound", "running": self.running["autumn"],
             "agents": 5, "ready": 2, "dialing": 4, "waiting": 1, "placed_since_start": 310,
             "abandon": {"30d": {"answered": 400, "abandoned": 8, "rate": 0.02},
                         "24h": {"answered": 60, "abandoned": 3, "rate": 0.05}}, "target": 3.0,
             "brake": BRAKE if self.running["autumn"] else ""},
            {"name": "spring", "mode": "preview", "queue": "outbound", "running": self.running["spring"],
             "agents": 1, "ready": 1, "dialing": 0, "waiting": 0, "placed_since_start": 0,
             "abandon": {"30d": {"answered": 0, "abandoned": 0, "rate": None}}, "target": 3.0},
        ]

    async def start_campaign(self, name: str, by: str) -> None:
        await self._run(name, by, True)

    async def stop_campaign(self, name: str, by: str) -> None:
        await self._run(name, by, False)

    async def _run(self, name: str, by: str, running: bool) -> None:
        self.log.append(("start" if running else "stop", name, by))
        if name not in self.running:
            raise ActionRefused(f"No campaign {name!r} is configured.", 404)
        if self.refuse:
            raise ActionRefused(self.refuse)
        self.running[name] = running

    # the ACD's DialerHook
    async def connected(self, call: AcdCall) -> None:
        pass

    async def ended(self, call: AcdCall) -> None:
        pass

    async def wrapped_up(self, call: AcdCall) -> None:
        self.wrapped.append((call.wrapup_code, call.extra.get("callback_at"), call.extra.get("callback_mine")))


class Panel(AcdPanel):
    """The real panel; users come from test_web's fake instead of the database (it is its own accounts)."""

    def __init__(self, acd: AcdService) -> None:
        super().__init__(acd, None, list, accounts=self)  # type: ignore[arg-type]  # no database
        fake = FakeBackend()
        self.users, self.passwords = fake.users, fake.passwords

    async def authenticate(self, login: str, password: str) -> PanelUser | None:
        if self.passwords.get(login) != password:
            return None
        return next(u for u in self.users.values() if u.login == login)

    async def user(self, user_id: int) -> PanelUser | None:
        return self.users.get(user_id)

    async def account(self, typed: str) -> str:
        return typed.casefold()

    def _scope_now(self, user_id: int) -> tuple[Scope | None, UnitDirectory]:
        # Every supervisor here has every unit (scopes are tested in test_floor_scope.py).
        return Scope("test", top=True), UnitDirectory({}, {}, {})


@dataclass
class World:
    panel: Panel
    acd: AcdService
    control: FakeControl
    timers: FakeTimers
    dialer: FakeDialer

    def call(self) -> AcdCall:
        current = self.acd.agents[ALICE].current
        assert current is not None
        return current

    async def connect(self) -> AcdCall:
        """Alice picks up her phone, then the customer answers."""
        call = self.call()
        await self.acd.channel_entered(next(iter(call.ringing)))
        await self.acd.channel_entered(self.control.originated()[-1][0])
        assert call.state is CallState.CONNECTED
        return call

    async def campaign_call_in_wrapup(self) -> AcdCall:
        self.dialer.offer(ALICE)
        await self.panel.agent_action(ALICE, "preview_dial", {})
        call = await self.connect()
        await self.panel.agent_action(ALICE, "hangup", {})
        assert self.acd.agents[ALICE].state is AgentState.WRAP_UP
        return call


def make_world(*, dialer: bool = True) -> World:
    control, timers = FakeControl(), FakeTimers()
    bus = Bus()
    acd = AcdService(control, AcdRecorder(FakeWriter()), AcdSettings(),  # type: ignore[arg-type]
                     {"break": PauseReason("break", "Break")}, CODES, Prompts(), timers, bus=bus,
                     claims=routing.router().claims_for("acd"),
                     extensions=lambda: {"2001", "2005"})
    agents = {ALICE: Agent(ALICE, "2001", "Alice Agent", since=timers.now(), idle_since=timers.now()),
              SAM: Agent(SAM, "2005", "Sam Both", since=timers.now(), idle_since=timers.now())}
    for agent in agents.values():
        agent.skills = {"outbound": 1}
    acd.load({"outbound": queue("outbound", {"2001": 1, "2005": 1})}, agents, {"outbound": DayFigures()}, {}, [])
    fake = FakeDialer(acd)
    panel = Panel(acd)
    if dialer:
        bus.subscribe(CallConnected, campaign_calls(fake.connected))
        bus.subscribe(CallEnded, campaign_calls(fake.ended))
        bus.subscribe(CallWrappedUp, campaign_calls(fake.wrapped_up))
        panel.dialer = fake
    return World(panel, acd, control, timers, fake)


@pytest.fixture
async def world() -> World:
    made = make_world()
    await made.acd.login(ALICE)
    return made


# --- AcdPanel: views --------------------------------------------------------------------------------------

async def test_the_agent_view_has_the_preview_then_the_campaign_call_with_its_fields(world: World) -> None:
    panel = world.panel
    assert panel.agent_view(ALICE)["preview"] is None
    world.dialer.offer(ALICE, callback=True)
    assert panel.agent_view(ALICE)["preview"] == {
        "campaign": "spring", "number": "+4930111222", "name": "Paula Preview", "fields": FIELDS, "attempts": 2,
        "callback": True}

    await panel.agent_action(ALICE, "preview_dial", {})
    view = panel.agent_view(ALICE)
    assert view["preview"] is None
    call = view["call"]
    assert (call["direction"], call["state"], call["number"], call["campaign"]) == (
        "outbound", "ringing", "+4930111222", "spring")
    assert call["customer"] == {"name": "Paula Preview", "note": "Campaign spring"}
    assert call["contact_fields"] == [["plan", "gold"], ["city", "Berlin"], ["customer_no", "C-1042"]]  # in order
    assert [d["code"] for d in call["dispositions"] if d["action"] == "callback"] == ["later"]

    await world.connect()
    assert panel.agent_view(ALICE)["call"]["state"] == "connected"
    await panel.agent_action(ALICE, "hangup", {})
    view = panel.agent_view(ALICE)
    assert view["call"] is None
    last = view["last_call"]
    assert (last["number"], last["campaign"], last["wrapup_code"]) == ("+4930111222", "spring", "")
    assert last["dispositions"] == world.dialer.dispositions["spring"]


async def test_calls_outside_campaigns_and_a_panel_without_a_dialer_show_nothing_of_it() -> None:
    for with_dialer in (True, False):
        world = make_world(dialer=with_dialer)
        await world.acd.login(ALICE)
        await world.panel.agent_action(ALICE, "dial", {"number": "+4930999"})
        view = world.panel.agent_view(ALICE)
        assert view["preview"] is None
        assert (view["call"]["campaign"], view["call"]["contact_fields"], view["call"]["dispositions"]) == (
            None, [], [])
        assert (world.panel.wallboard()["campaigns"] == []) is not with_dialer


async def test_the_wallboard_carries_the_dialers_status(world: World) -> None:
    assert world.panel.wallboard()["campaigns"] == world.dialer.status()
    assert [c["name"] for c in world.panel.wallboard()["campaigns"]] == ["autumn", "spring"]


# --- AcdPanel: actions --------------------------------------------------------------------------------------

async def test_preview_dial_and_skip_reach_the_dialer(world: World) -> None:
    world.dialer.offer(ALICE)
    version = world.acd.version
    await world.panel.agent_action(ALICE, "preview_skip", {})
    assert world.dialer.log == [("preview_skip", ALICE)] and world.acd.version > version
    with pytest.raises(ActionRefused, match=r"You have no contact to preview\."):
        await world.panel.agent_action(ALICE, "preview_dial", {})

    alone = make_world(dialer=False)
    for action in ("preview_dial", "preview_skip"):
        with pytest.raises(ActionRefused, match=r"^There is no dialer\.$"):
            await alone.panel.agent_action(ALICE, action, {})


async def test_a_callback_code_puts_the_utc_time_and_only_me_on_the_call(world: World) -> None:
    call = await world.campaign_call_in_wrapup()
    await world.panel.agent_action(ALICE, "wrapup", {"code": "later", "note": "after lunch",
                                                     "callback_at": "2026-12-01T14:30:00+01:00", "callback_mine": "1"})
    at = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
    assert call.extra["callback_at"] == at and call.extra["callback_at"].tzinfo is UTC
    assert call.extra["callback_mine"] is True and call.extra["contact_id"] == 42
    assert world.dialer.wrapped == [("later", at, True)]  # what the dialer's wrapped_up read
    assert (call.wrapup_code, call.note) == ("later", "after lunch")
    assert world.acd.agents[ALICE].state is AgentState.READY

    # a second wrap-up of the same call, for anyone; then a code that is not a callback clears the choice
    await world.panel.agent_action(ALICE, "wrapup", {"code": "later", "callback_at": "2026-11-24T09:00:00-05:00",
                                                     "callback_mine": ""})
    assert world.dialer.wrapped[-1] == ("later", datetime(2026, 11, 24, 14, 0, tzinfo=UTC), False)
    await world.panel.agent_action(ALICE, "wrapup", {"code": "sale", "callback_at": "2026-11-24T09:00:00-05:00"})
    assert world.dialer.wrapped[-1] == ("sale", None, None)
    assert "callback_at" not in call.extra and "callback_mine" not in call.extra


@pytest.mark.parametrize(("callback_at", "message"), [
    ("", "Pick when to call back (Call back at)."),
    ("   ", "Pick when to call back (Call back at)."),
    ("tomorrow", "Call back at: 'tomorrow' is not a date and time."),
    ("2026-13-01T10:00:00+01:00", "is not a date and time."),
    ("2026-12-01T14:30", "Call back at: the time needs its UTC offset (e.g. 2026-12-01T14:30:00+01:00)."),
    ("2026-11-23T10:58:00+02:00", "Call back at: that time has passed; pick a time in the future."),  # 08:58 UTC
    ("2027-11-25T10:00:00+00:00", "Call back at: pick a time within a year."),
    ("2" * 300, "is not a date and time."),
])
async def test_a_bad_or_missing_callback_time_is_refused_and_nothing_is_wrapped_up(
        world: World, callback_at: str, message: str) -> None:
    call = await world.campaign_call_in_wrapup()
    with pytest.raises(ActionRefused, match=re.escape(message)):
        await world.panel.agent_action(ALICE, "wrapup", {"code": "later", "callback_at": callback_at})
    assert call.wrapup_code == "" and "callback_at" not in call.extra and world.dialer.wrapped == []
    assert world.acd.agents[ALICE].state is AgentState.WRAP_UP


def test_callback_times_are_read_in_their_offset_with_a_minute_of_grace() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_callback_at("2026-11-23T09:59:30+00:00", now) == datetime(2026, 11, 23, 9, 59, 30, tzinfo=UTC)
    assert parse_callback_at(" 2026-11-23T12:00:00Z ", now) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_callback_at("2026-11-23T05:30:00-05:30", now) == datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    with pytest.raises(ActionRefused, match="passed"):
        parse_callback_at("2026-11-23T09:58:59+00:00", now)


async def test_the_callback_choice_is_only_for_campaign_calls_and_known_codes(world: World) -> None:
    await world.panel.agent_action(ALICE, "dial", {"number": "+4930999"})
    plain = world.call()
    await world.connect()
    await world.panel.agent_action(ALICE, "hangup", {})
    await world.panel.agent_action(ALICE, "wrapup", {"code": "later"})  # not a campaign call: no time needed
    assert plain.wrapup_code == "later" and plain.extra == {} and world.dialer.wrapped == []

    call = await world.campaign_call_in_wrapup()
    call.extra["callback_at"] = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ActionRefused, match=r"Pick a wrap-up code\."):
        await world.panel.agent_action(ALICE, "wrapup", {"code": "nonsense"})
    assert call.extra["callback_at"] == datetime(2026, 12, 1, tzinfo=UTC)  # a refused code changes nothing


async def test_supervisors_start_and_stop_campaigns_as_themselves(world: World) -> None:
    panel, dialer = world.panel, world.dialer
    version = world.acd.version
    await panel.supervisor_action(BOSS, "campaign_start", {"name": "spring"})
    await panel.supervisor_action(SAM, "campaign_stop", {"name": "autumn"})
    assert dialer.log == [("start", "spring", "boss"), ("stop", "autumn", "2005")]
    assert dialer.running == {"autumn": False, "spring": True} and world.acd.version > version
    dialer.refuse = REFUSAL
    with pytest.raises(ActionRefused, match=re.escape(REFUSAL)):
        await panel.supervisor_action(BOSS, "campaign_start", {"name": "autumn", "confirm": "true"})
    with pytest.raises(ActionRefused, match=r"Missing name\."):
        await panel.supervisor_action(BOSS, "campaign_stop", {})
    with pytest.raises(ActionRefused, match=r"^There is no dialer\.$"):
        await make_world(dialer=False).panel.supervisor_action(BOSS, "campaign_start", {"name": "spring"})


async def test_a_campaign_over_its_abandon_target_starts_only_when_the_supervisor_confirms(world: World) -> None:
    """Before: a supervisor resumed a campaign at 5% abandons in the 24-hour window without a word."""
    panel, dialer = world.panel, world.dialer
    await panel.supervisor_action(BOSS, "campaign_stop", {"name": "autumn"})
    for params in ({"name": "autumn"}, {"name": "autumn", "confirm": "no"}):
        with pytest.raises(ActionRefused) as refused:
            await panel.supervisor_action(BOSS, "campaign_start", params)
        assert (refused.value.message, refused.value.http_status) == (OVER, 409)
    assert dialer.running["autumn"] is False and dialer.log == [("stop", "autumn", "boss")]  # not asked
    await panel.supervisor_action(BOSS, "campaign_start", {"name": "autumn", "confirm": True})  # JSON true too
    assert dialer.running["autumn"] is True
    await panel.supervisor_action(BOSS, "campaign_start", {"name": "spring"})  # within its target: no question


# --- over HTTP ------------------------------------------------------------------------------------------------

@pytest.fixture
async def client(world: World) -> AsyncIterator[Client]:
    async with TestClient(TestServer(panel_app(world.panel))) as test_client:  # type: ignore[arg-type]
        yield test_client


async def act(client: Client, csrf: str, who: str, action: str, **params: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/api/{who}/action", json={"action": action, "params": params},
                                 headers={"X-CSRF-Token": csrf})
    return response.status, await response.json()


async def test_an_agent_previews_dials_and_wraps_up_a_campaign_call_over_http(client: Client, world: World) -> None:
    me = await login(client, "2001", "alice-pw")
    world.dialer.offer(ALICE, callback=True)
    view = await (await client.get("/api/agent")).json()
    assert view["preview"]["fields"] == FIELDS and view["preview"]["callback"] is True
    assert await act(client, me.csrf, "agent", "preview_dial") == (200, {"ok": True})
    call = (await (await client.get("/api/agent")).json())["call"]
    assert call["campaign"] == "spring" and call["contact_fields"][0] == ["plan", "gold"]
    status_, body = await act(client, me.csrf, "agent", "preview_skip")
    assert (status_, body["error"]) == (400, "You have no contact to preview.")

    await world.connect()
    assert await act(client, me.csrf, "agent", "hangup") == (200, {"ok": True})
    status_, body = await act(client, me.csrf, "agent", "wrapup", code="later", callback_at="soon")
    assert (status_, body["error"]) == (400, "Call back at: 'soon' is not a date and time.")
    assert await act(client, me.csrf, "agent", "wrapup", code="later", callback_at="2026-11-25T08:15:00+09:00",
                     callback_mine="true") == (200, {"ok": True})
    assert world.dialer.wrapped == [("later", datetime(2026, 11, 24, 23, 15, tzinfo=UTC), True)]


async def test_the_wallboard_json_lists_campaigns_and_supervisors_start_them_over_http(
        client: Client, world: World) -> None:
    me = await login(client, "boss", "boss-pw")
    board = await (await client.get("/api/wallboard")).json()
    assert [(c["name"], c["running"]) for c in board["campaigns"]] == [("autumn", True), ("spring", False)]
    assert board["campaigns"][0]["abandon"]["24h"] == {"answered": 60, "abandoned": 3, "rate": 0.05}
    assert await act(client, me.csrf, "supervisor", "campaign_start", name="spring") == (200, {"ok": True})
    board = await (await client.get("/api/wallboard")).json()
    assert [c["running"] for c in board["campaigns"]] == [True, True]
    world.dialer.refuse = REFUSAL
    assert await act(client, me.csrf, "supervisor", "campaign_stop", name="autumn") == (
        400, {"error": REFUSAL, "error_id": "panel-action-refused"})
    status_, body = await act(client, me.csrf, "supervisor", "campaign_start", name="winter")
    assert (status_, body["error"]) == (404, "No campaign 'winter' is configured.")

    client.session.cookie_jar.clear()
    agent = await login(client, "2001", "alice-pw")
    assert (await act(client, agent.csrf, "supervisor", "campaign_stop", name="spring"))[0] == 403
    # winter is refused before the dialer is asked
    assert world.dialer.log == [("start", "spring", "boss"), ("stop", "autumn", "boss")]


async def test_the_pages_carry_the_campaign_elements(client: Client) -> None:
    await login(client, "2005", "sam-pw")
    agent = await (await client.get("/agent")).text()
    for element in ("preview-card", "preview-campaign", "preview-name", "preview-number", "preview-fields",
                    "preview-attempts", "preview-callback", "btn-preview-dial", "btn-preview-skip", "call-fields",
                    "call-campaign", "wrapup-callback", "wrapup-callback-at", "wrapup-callback-mine"):
        assert agent.count(f'id="{element}"') == 1, element
    assert re.search(r'id="wrapup-callback-at" type="datetime-local"', agent)
    wallboard = await (await client.get("/wallboard")).text()
    assert wallboard.count('id="campaigns"') == 1 and re.search(r'id="campaigns"[^>]*hidden', wallboard)
    for html in (agent, wallboard):
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html
    static = Path(__file__).parents[2] / "callcenter/web/static"
    for word in ('"preview_dial"', '"preview_skip"', "callback_at", "callback_mine"):
        assert word in (static / "agent.js").read_text()
    for word in ('"campaign_start"', '"campaign_stop"'):
        assert word in (static / "wallboard.js").read_text()


# --- in a browser ---------------------------------------------------------------------------------------------

@pytest.fixture
def served() -> Iterator[tuple[ServedApp, World]]:
    holder: dict[str, World] = {}

    def make() -> Any:
        world = make_world()  # made on the server's loop, where it is used
        world.timers.clock = datetime.now(UTC)  # the page's "Call back at" cannot be before the browser's now
        holder["world"] = world
        return panel_app(world.panel)  # type: ignore[arg-type]

    with serve(make) as server:
        yield server, holder["world"]


@needs_chromium
def test_an_agent_dials_a_preview_and_asks_for_a_callback_and_a_supervisor_runs_campaigns(
        served: tuple[ServedApp, World]) -> None:
    from playwright.sync_api import expect

    server, world = served
    dialer = world.dialer
    errors: list[str] = []
    berlin = ZoneInfo("Europe/Berlin")
    day = (datetime.now(berlin) + timedelta(days=3)).date()
    local = f"{day:%Y-%m-%d}T14:30"
    utc = datetime(day.year, day.month, day.day, 14, 30, tzinfo=berlin).astimezone(UTC)
    with chromium() as browser:
        page = browser.new_page(timezone_id="Europe/Berlin")
        watch(page, errors)
        log_in(page, server.url, "2001", "alice-pw")
        page.click("#btn-login")
        expect(page.locator("#agent-state")).to_have_attribute("data-state", "ready")
        preview = page.locator("#preview-card")
        expect(preview).to_be_hidden()

        server.call(dialer.offer, ALICE, True)
        expect(preview).to_be_visible()
        expect(page.locator("#preview-campaign")).to_have_text("spring")
        expect(page.locator("#preview-name")).to_have_text("Paula Preview")
        expect(page.locator("#preview-number")).to_have_text("+4930111222")
        expect(page.locator("#preview-attempts")).to_have_text("2")
        expect(page.locator("#preview-callback")).to_be_visible()
        expect(page.locator("#preview-fields th")).to_have_text(["plan", "city", "customer_no"])
        expect(page.locator("#preview-fields td")).to_have_text(["gold", "Berlin", "C-1042"])

        page.click("#btn-preview-dial")
        expect(preview).to_be_hidden()
        card = page.locator("#call-card")
        expect(card).to_be_visible()
        expect(page.locator("#call-campaign")).to_have_text("spring")
        expect(page.locator('#call-fields tr[data-field="city"] td')).to_have_text("Berlin")
        server.run(world.connect())
        expect(card).to_have_attribute("data-state", "connected")
        expect(page.locator("#call-customer")).to_have_text("Paula Preview")
        expect(page.locator("#call-fields tr")).to_have_count(3)

        page.click("#btn-hangup")
        expect(page.locator("#wrapup-form")).to_be_visible()
        choice = page.locator("#wrapup-callback")
        page.select_option("#wrapup-code", "sale")
        expect(choice).to_be_hidden()
        page.select_option("#wrapup-code", "later")
        expect(choice).to_be_visible()
        expect(page.locator("#wrapup-callback-at")).to_have_attribute("required", "")
        page.fill("#wrapup-callback-at", local)
        page.check("#wrapup-callback-mine")
        page.fill("#wrapup-note", "after lunch")
        page.click("#wrapup-submit")
        expect(page.locator("#agent-state")).to_have_attribute("data-state", "ready")
        expect(page.locator("#message")).to_be_hidden()
        assert server.call(lambda: dialer.wrapped) == [("later", utc, True)]
        sent = server.call(lambda: world.acd.agents[ALICE].last_call)
        assert sent is not None and (sent.wrapup_code, sent.note) == ("later", "after lunch")

        boss = browser.new_page()
        watch(boss, errors)
        questions: list[str] = []

        def answer(dialog: Any) -> None:
            questions.append(dialog.message)
            dialog.accept()
        boss.on("dialog", answer)
        log_in(boss, server.url, "boss", "boss-pw")
        campaigns = boss.locator("#campaigns")
        expect(campaigns).to_be_visible()
        autumn = campaigns.locator('tr[data-campaign="autumn"]')
        spring = campaigns.locator('tr[data-campaign="spring"]')
        expect(autumn.locator(".mode")).to_have_text("Predictive")
        expect(autumn.locator(".running")).to_have_text("Running")
        expect(autumn.locator(".agents")).to_have_text("2 / 5")
        expect(autumn.locator('.window[data-window="30d"]')).to_have_attribute("data-over", "false")
        expect(autumn.locator('.window[data-window="24h"]')).to_have_attribute("data-over", "true")
        expect(autumn.locator('.window[data-window="24h"]')).to_have_text("24h 5.0%")
        expect(autumn.locator(".brake")).to_have_text(BRAKE)
        expect(spring.locator('.window[data-window="30d"]')).to_have_text("30d \N{EN DASH}")
        expect(spring.locator('[data-testid="campaign-stop"]')).to_be_hidden()

        autumn.locator('[data-testid="campaign-stop"]').click()
        expect(autumn.locator(".running")).to_have_text("Stopped")
        expect(autumn.locator('[data-testid="campaign-start"]')).to_be_visible()
        server.call(setattr, dialer, "refuse", REFUSAL)
        spring.locator('[data-testid="campaign-start"]').click()
        expect(boss.locator("#message")).to_have_text(REFUSAL)
        expect(spring.locator(".running")).to_have_text("Stopped")
        server.call(setattr, dialer, "refuse", "")
        spring.locator('[data-testid="campaign-start"]').click()
        expect(spring.locator(".running")).to_have_text("Running")
        expect(boss.locator("#message")).to_be_hidden()
        # Over its target, the question carries the figures and the start its confirmation.
        expect(autumn.locator(".brake")).to_have_count(0)
        autumn.locator('[data-testid="campaign-start"]').click()
        expect(autumn.locator(".running")).to_have_text("Running")
        assert questions[-1] == ("Campaign autumn is over its abandon target of 3%: 24h 5.0%. While it is, the "
                                 "dialer places fewer calls than there are free agents. Start it anyway?")
        assert questions[-2] == "Start campaign spring? The dialer begins calling at once."
        assert server.call(lambda: dialer.log[1:]) == [
            ("stop", "autumn", "boss"), ("start", "spring", "boss"), ("start", "spring", "boss"),
            ("start", "autumn", "boss")]
    assert errors == []

