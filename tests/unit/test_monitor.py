"""Monitoring logic over a fake Asterisk: permissions, how a session joins, mode changes, how it ends
and what it leaves; permission groups on a real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from callcenter.acd.model import Agent, AgentState
from callcenter.acd.panel import AcdPanel
from callcenter.acd.services import AcdService
from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.errors import AriNotFound, UserError
from callcenter.monitor import groups
from callcenter.monitor.direct import DirectCalls
from callcenter.monitor.groups import Permissions
from callcenter.monitor.services import LiveLeg, Mode, MonitorError, MonitorService, UserRef
from callcenter.monitor.settings import MonitorGroupSpec
from callcenter.users import services as users
from tests.support import routing

USERS = {"2001": UserRef(1, "2001", "Alice"), "2002": UserRef(2, "2002", "Bob"),
         "2005": UserRef(5, "2005", "Sam")}


class FakeControl:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.endpoint: list[dict[str, Any]] = []

    async def answer(self, channel_id: str) -> None:
        self.log.append(("answer", channel_id))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self.log.append(("hangup", channel_id))

    async def snoop(self, channel_id: str, snoop_id: str, spy: str, whisper: str, args: list[str]) -> None:
        self.log.append(("snoop", channel_id, snoop_id, spy, whisper))

    async def create_bridge(self, bridge_id: str, kind: str) -> None:
        self.log.append(("create_bridge", bridge_id, kind))

    async def destroy_bridge(self, bridge_id: str) -> None:
        self.log.append(("destroy_bridge", bridge_id))

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        self.log.append(("add_to_bridge", bridge_id, channel_id))

    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int, args: list[str],
                        originator: str | None = None) -> None:
        self.log.append(("originate", channel_id, endpoint, args))

    async def endpoint_channels(self, technology: str, resource: str) -> list[dict[str, Any]]:
        if resource != "2001":
            raise AriNotFound("GET", f"/endpoints/{technology}/{resource}", 404, "no such endpoint")
        return self.endpoint


class FakeWriter:
    def __init__(self) -> None:
        self.ops: list[Any] = []

    def add(self, op: Any) -> None:
        self.ops.append(op)


def make(acd: dict[str, LiveLeg] | None = None) -> tuple[MonitorService, FakeControl]:
    control = FakeControl()
    router = routing.router()
    service = MonitorService(control, FakeWriter(), Permissions({"2005": frozenset({"2001", "2002"})}),  # type: ignore[arg-type]
                             user_by_extension=USERS.get, acd_leg=(acd or {}).get, bus=Bus(),
                             claims=router.claims_for("monitor"))
    return service, control


def snoops(control: FakeControl) -> list[tuple[str, str, str]]:
    return [(e[2], e[3], e[4]) for e in control.log if e[0] == "snoop"]


async def test_not_allowed_and_no_call_get_their_prompt_and_touch_nothing() -> None:
    service, control = make()
    assert await service.feature("sup-1", "2001", "#442002") == "monitor-denied"  # 2001 is no supervisor
    assert await service.feature("sup-2", "2005", "#449999") == "monitor-denied"  # no such user
    assert await service.feature("sup-3", "2005", "#442002") == "monitor-no-call"
    assert control.log == [] and service.sessions == {}


async def test_silent_join_then_keys_switch_modes_by_replacing_the_snoop() -> None:
    service, control = make({"2002": LiveLeg("agent-leg", "+4930123")})
    assert await service.feature("sup-1", "2005", "#442002") is None
    [session] = service.sessions.values()
    bridge = session.bridge_id
    assert control.log[:3] == [("answer", "sup-1"), ("create_bridge", bridge, "mixing,dtmf_events"),
                               ("add_to_bridge", bridge, "sup-1")]
    first = snoops(control)[0]
    assert first[1:] == ("both", "none") and session.customer == "+4930123"
    await service.snoop_started(first[0], session.id)
    assert ("add_to_bridge", bridge, first[0]) in control.log
    assert await service.dtmf("sup-1", "5")
    second = snoops(control)[1]
    assert second[1:] == ("both", "out") and ("hangup", first[0]) in control.log
    await service.channel_gone(first[0])  # the replaced snoop going ends nothing
    assert session.state == "active"
    assert await service.dtmf("sup-1", "6") and snoops(control)[2][1:] == ("both", "both")
    assert await service.dtmf("sup-1", "6") and len(snoops(control)) == 3  # already three-way
    assert await service.dtmf("sup-1", "4") and snoops(control)[3][1:] == ("both", "none")
    assert [m.value for _, m in session.modes] == ["silent", "whisper", "barge", "silent"]
    assert not await service.dtmf("someone-else", "5")
    # The agent's call ends: Asterisk hangs up the snoop; the supervisor is hung up, the bridge goes.
    await service.channel_gone(snoops(control)[3][0])
    assert ("hangup", "sup-1") in control.log and ("destroy_bridge", bridge) in control.log
    assert service.sessions == {} and service.by_channel == {}


async def test_a_direct_call_is_found_on_the_agents_endpoint_and_the_supervisor_can_leave() -> None:
    service, control = make()
    control.endpoint = [{"id": "ringing-leg", "state": "Ringing"},
                        {"id": "talking-leg", "state": "Up", "connected": {"number": "2002"}}]
    assert await service.feature("sup-1", "2005", "#442001") is None
    [session] = service.sessions.values()
    assert (session.agent_channel, session.customer) == ("talking-leg", "2002")
    snoop = snoops(control)[0][0]
    await service.channel_gone("sup-1")
    assert ("hangup", snoop) in control.log and ("destroy_bridge", session.bridge_id) in control.log
    assert service.sessions == {}


async def test_panel_rings_the_supervisor_and_starts_in_the_chosen_mode() -> None:
    service, control = make({"2002": LiveLeg("agent-leg", "+4930123")})
    with pytest.raises(MonitorError, match="may not monitor"):
        await service.start_from_panel(USERS["2001"], "2002", Mode.SILENT)
    with pytest.raises(MonitorError, match="no call to monitor"):
        await service.start_from_panel(USERS["2005"], "2001", Mode.SILENT)
    session = await service.start_from_panel(USERS["2005"], "2002", Mode.WHISPER)
    [originate] = [e for e in control.log if e[0] == "originate"]
    assert originate[2] == "PJSIP/2005" and originate[3] == ["monitor-supervisor", session.id]
    with pytest.raises(MonitorError, match="already"):
        await service.start_from_panel(USERS["2005"], "2002", Mode.SILENT)
    await service.set_mode(session, Mode.BARGE, "panel")  # while it rings: taken on answer
    await service.supervisor_answered(originate[1], session.id)
    assert session.state == "active" and snoops(control)[0][1:] == ("both", "both")
    await service.stop(session)
    assert ("hangup", originate[1]) in control.log and service.sessions == {}


async def test_unanswered_panel_call_ends_the_session() -> None:
    service, control = make({"2002": LiveLeg("agent-leg", "")})
    session = await service.start_from_panel(USERS["2005"], "2002", Mode.SILENT)
    assert session.supervisor_channel is not None
    await service.channel_gone(session.supervisor_channel)
    assert service.sessions == {} and not snoops(control)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    database.migrate()
    with database.session() as session:
        for extension, name in (("2001", "Alice"), ("2002", "Bob"), ("2005", "Sam"), ("2006", "Sue")):
            users.add_user(session, name=name, extension=extension)
        users.add_user(session, name="Panel only", login="boss", roles=("admin",))
    return database


def test_groups_give_permissions_and_config_groups_are_synchronised(db: Database) -> None:
    with db.session() as session:
        problems = groups.sync_groups(session, {
            "team": MonitorGroupSpec("team", ("2005",), ("2001", "2002")),
            "all": MonitorGroupSpec("all", ("2006", "2099"), (), all_agents=True)})
        assert problems == ["monitoring group all: no user with extension 2099 (left out)"]
        groups.save_group(session, "extra", ["2005"], ["2006"])
    with db.session() as session:  # at the next start the same groups are written again
        assert groups.sync_groups(session, {"team": MonitorGroupSpec("team", ("2005",), ("2001", "2002"))}) == []
    with db.session() as session:
        permissions = groups.load_permissions(session)
        views = groups.list_groups(session)
    assert permissions.may_monitor("2005", "2002") and permissions.may_monitor("2005", "2006")
    assert not permissions.may_monitor("2005", "2005") and not permissions.may_monitor("2001", "2002")
    assert permissions.may_monitor("2006", "2001") and permissions.targets("2006") is None
    assert [(v.name, v.supervisors, v.agents, v.all_agents, v.from_config) for v in views] == [
        ("all", ("2006",), (), True, True), ("extra", ("2005",), ("2006",), False, False),
        ("team", ("2005",), ("2001", "2002"), False, True)]
    with db.session() as session:
        for args, message in ((("bad name!", ["2005"], ["2001"]), "group name"),
                              (("g", [], ["2001"]), "at least one supervisor"),
                              (("g", ["2005"], []), "needs agents"),
                              (("g", ["2005"], ["7777"]), "no user with extension or login '7777'"),
                              (("g", ["boss"], ["2001"]), "no extension")):
            with pytest.raises(UserError, match=message):
                groups.save_group(session, *args)
        groups.remove_group(session, "extra")
        with pytest.raises(UserError, match="no monitoring group"):
            groups.remove_group(session, "extra")


# -- direct calls on the wallboard (monitor/direct.py, the panel's rows) ------------------------------

class Phones:
    """ARI's channels per endpoint, as the test sets them; counts the looks."""

    def __init__(self) -> None:
        self.channels: dict[str, list[dict[str, Any]]] = {}
        self.looks: list[str] = []

    async def __call__(self, extension: str) -> list[dict[str, Any]]:
        self.looks.append(extension)
        if extension not in self.channels:
            raise AriNotFound("GET", f"/endpoints/PJSIP/{extension}", 404, "no such endpoint")
        return self.channels[extension]


def leg(channel_id: str, state: str, number: str, app: str = "Dial") -> dict[str, Any]:
    return {"id": channel_id, "state": state, "connected": {"number": number, "name": f"N{number}"},
            "dialplan": {"app_name": app}}


async def settle(direct: DirectCalls) -> None:
    for _ in range(200):
        if not direct._tasks:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the looks did not finish")


async def test_a_direct_call_is_followed_from_dialling_to_the_answer_and_the_hang_up() -> None:
    phones, notified = Phones(), []
    clock = iter(datetime(2030, 1, 1, 9, 0, s, tzinfo=UTC) for s in range(60))
    direct = DirectCalls(phones, lambda: notified.append(1), now=lambda: next(clock), poll=0.01)
    # Alice dials out: her phone is busy at once, the far end still rings.
    phones.channels["2001"] = [leg("alice", "Ring", "0301234")]
    direct.device_state("2001", "INUSE")
    await asyncio.sleep(0.05)
    call = direct.of("2001")
    assert call is not None and call.answered_at is None and call.number == "0301234"
    assert direct.answered() == []
    # The far end answers (no device state changes on Alice's phone): a later look sees it Up.
    phones.channels["2001"] = [leg("alice", "Up", "0301234")]
    await settle(direct)
    call = direct.of("2001")
    assert call is not None and call.answered_at is not None and call.answered_at > call.busy_since
    assert direct.answered() == [call]
    looks = len(phones.looks)
    await asyncio.sleep(0.05)
    assert len(phones.looks) == looks  # answered: no more looks
    direct.device_state("2001", "NOT_INUSE")
    assert direct.of("2001") is None and direct.answered() == [] and notified


async def test_the_controllers_own_calls_are_no_direct_calls() -> None:
    phones = Phones()
    direct = DirectCalls(phones, poll=0.01)
    # Sam's #44 call and a panel-rung monitoring call run in the Stasis app; so do ACD calls and sessions.
    phones.channels["2005"] = [leg("sam-44", "Up", "#442002", app="Stasis")]
    phones.channels["2006"] = [leg("mon-sup-1", "Up", "2006")]
    phones.channels["2003"] = [leg("acd-leg", "Up", "0309999", app="Stasis")]
    for extension in ("2005", "2006", "2003", "2999"):
        direct.device_state(extension, "INUSE")
    await settle(direct)
    assert direct.calls == {}
    # A resync drops what AMI no longer says is busy and looks again at what is.
    phones.channels["2002"] = [leg("bob", "Up", "2001", app="AppDial")]
    direct.replace_all({"2002": "INUSE", "2005": "NOT_INUSE"})
    await settle(direct)
    assert [c.extension for c in direct.answered()] == ["2002"] and "2005" not in direct.busy


async def test_the_wallboard_shows_direct_calls_and_their_ready_agent_on_call_but_not_a_supervisors_call() -> None:
    service, _control = make()
    phones = Phones()
    service.direct = DirectCalls(phones, poll=0.01)
    phones.channels["2001"] = [leg("alice", "Up", "2002")]
    phones.channels["2005"] = [leg("sam-44", "Up", "#442001", app="Stasis")]
    service.direct.device_state("2001", "INUSE")
    service.direct.device_state("2005", "INUSE")
    await settle(service.direct)
    since = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    alice = SimpleNamespace(user_id=1, name="Alice", extension="2001", state=AgentState.READY, reason="",
                            since=since, calls_today=0, skills={"sales"}, current=None)
    acd = SimpleNamespace(agents={1: alice}, live_leg=lambda extension: None)
    panel = AcdPanel(cast(AcdService, acd), cast(Database, None), list)
    panel.monitor = service
    panel.user_names = lambda: {"2001": "Alice", "2005": "Sam"}
    row = panel._agent_row(cast(Agent, alice))
    answered = service.direct.calls["2001"].answered_at
    assert (row["state"], row["direct_call"], row["since"]) == (
        "on_call", {"number": "2002", "answered": True}, answered.isoformat() if answered else None)
    assert [(c["agent"], c["number"], c["direction"], c["since"]) for c in panel._live_calls()] == [
        ("2001", "2002", "direct", row["since"])]
    service.direct.device_state("2001", "NOT_INUSE")
    row = panel._agent_row(cast(Agent, alice))
    assert (row["state"], row["direct_call"], row["since"]) == ("ready", None, since.isoformat())
    assert panel._live_calls() == []


async def test_a_phone_busy_before_its_channel_is_listed_is_looked_at_again() -> None:
    """Before: the device state came first, the look found no channel yet and never looked again (the
    caller's side of a direct call then never showed on the wallboard)."""
    phones = Phones()
    direct = DirectCalls(phones, poll=0.01)
    phones.channels["2001"] = []
    direct.device_state("2001", "INUSE")
    await asyncio.sleep(0.03)
    phones.channels["2001"] = [leg("alice", "Up", "2002")]
    await settle(direct)
    call = direct.of("2001")
    assert call is not None and call.number == "2002" and call.answered_at is not None
