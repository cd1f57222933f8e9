"""The dialer's call handling without Asterisk: a real ACD and a real (SQLite) database, a fake ARI and
a fake clock. The 2-second rule at its edges, AMD verdicts and failures, unanswered calls and retries,
dispositions; the real thing is tests/integration/test_dialer.py."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.acd.model import Agent
from callcenter.acd.records import AcdRecorder, DayFigures
from callcenter.acd.services import AcdService
from callcenter.acd.settings import AcdSettings
from callcenter.ari.routing import ChannelRouter
from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.db.models import DialerAttempt, DialerContact
from callcenter.dialer import store
from callcenter.dialer.contacts import ColumnMap
from callcenter.dialer.placement import AMD_ARG, AMD_CONTEXT, DIALER_ARG
from callcenter.dialer.rules import CallingWindow, Disposition, RetryRule
from callcenter.dialer.services import DialerService
from callcenter.dialer.settings import CampaignSpec
from callcenter.errors import AriError
from callcenter.users import services as users
from tests.support import routing
from tests.unit.test_acd import FakeControl, FakeTimers, Prompts, queue


class Writer:
    """Applies each record at once, so the test reads what the service wrote."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, op: Callable[[Any], Any]) -> None:
        with self.db.session() as session:
            op(session)

    def together(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class Control(FakeControl):
    def __init__(self) -> None:
        super().__init__()
        self.fail_continue = False

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str, priority: int = 1) -> None:
        if self.fail_continue:
            raise AriError("POST", f"/channels/{channel_id}/continue", 500, "boom")
        self.log.append(("continue_in_dialplan", channel_id, context, extension))


# Ring per call: these tests follow each agent phone's offer; tests/unit/test_agent_sessions.py has sessions.
SPEC = CampaignSpec(name="spring", queue="out", caller_id="+48221234500", region="PL", min_agents=1, amd=True,
                    agent_line="ring",
                    hours=CallingWindow(days=frozenset(range(7))),
                    retries={"busy": RetryRule(120, 3), "no_answer": RetryRule(3600, 2), "machine": RetryRule(3600, 2),
                             "abandoned": RetryRule(3600, 3), "failed": RetryRule(600, 2)},
                    dispositions={"sale": Disposition("done"), "dnc": Disposition("dnc")})


@dataclasses.dataclass
class World:
    db: Database
    acd: AcdService
    dialer: DialerService
    control: Control
    timers: FakeTimers
    agents: dict[str, Agent]
    router: ChannelRouter

    def dialled(self) -> list[tuple[str, str]]:
        return [(cid, endpoint) for cid, endpoint in self.control.originated() if cid.startswith("dialer-")]

    def rung(self) -> list[str]:
        return [cid for cid, endpoint in self.control.originated() if cid.startswith("acd-")]

    def attempt(self, number: str) -> DialerAttempt:
        with self.db.session() as session:
            found = session.scalars(select(DialerAttempt).where(DialerAttempt.number == number)
                                    .order_by(DialerAttempt.placed_at.desc())).first()
            assert found is not None
            return found

    def contact(self, number: str) -> DialerContact:
        with self.db.session() as session:
            found = session.scalar(select(DialerContact).where(DialerContact.number == number))
            assert found is not None
            return found

    async def pace(self) -> None:
        await self.dialer.campaign_loop.pace(self.dialer.campaigns["spring"])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the demo users, copied for each test (migrating costs a second)."""
    path = tmp_path_factory.mktemp("dialer") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.session() as session:
        users.seed_demo(session)
    db.dispose()
    return path


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> World:
    shutil.copy(template, tmp_path / "dialer.db")
    db = Database(f"sqlite:///{tmp_path / 'dialer.db'}")
    timers = FakeTimers()
    timers.clock = timers.clock.replace(hour=12)  # 13:00 in Warsaw: inside the calling window
    with db.session() as session:
        ids = {ext: users.find_user(session, ext).id for ext in ("2001", "2002")}
        csv = "phone\n+48221110001\n+48221110002\n+48221110003\n"
        store.import_list(session, "spring", "list.csv", csv.splitlines(keepends=True), ColumnMap(number="phone"),
                          region="PL", timezone=None, by="test", now=timers.now())
    control = Control()
    bus = Bus()
    router = routing.router()
    acd = AcdService(control, AcdRecorder(Writer(db)), AcdSettings(), {}, {"sale": "Sale", "dnc": "Remove me"},  # type: ignore[arg-type]
                     Prompts(), timers, bus=bus, claims=router.claims_for("acd"))
    out = queue("out", {"2001": 1, "2002": 1})
    agents = {ext: Agent(user_id, ext, ext, since=timers.now(), idle_since=timers.now(), skills={"out": 1})
              for ext, user_id in ids.items()}
    acd.load({"out": out}, {a.user_id: a for a in agents.values()}, {"out": DayFigures()}, {}, [])
    dialer = DialerService(control, acd, db, Writer(db), {"spring": SPEC}, Prompts(), default_trunk="pstn",  # type: ignore[arg-type]
                           bus=bus, claims=router.claims_for("dialer"), timers=timers)
    dialer.campaigns["spring"].running = True
    return World(db, acd, dialer, control, timers, agents, router)


async def a_person_waits(world: World, number: str = "+48221110001") -> str:
    """Dials, the number answers, AMD says HUMAN: the person waits for an agent. Their channel."""
    await world.pace()
    channel = next(cid for cid, endpoint in world.dialled() if number in endpoint)
    assert await world.dialer.stasis_start(channel, (DIALER_ARG,))
    assert ("continue_in_dialplan", channel, AMD_CONTEXT, "s") in world.control.log
    await world.timers.advance(2.5)  # the greeting
    assert await world.dialer.stasis_start(channel, (AMD_ARG, "HUMAN", "HUMAN-800-1500"))
    return channel


async def test_progressive_below_min_agents_dials_one_call_per_free_agent(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    await world.pace()
    assert [endpoint for _, endpoint in world.dialled()] == ["PJSIP/+48221110001@pstn"]
    await world.pace()
    assert len(world.dialled()) == 1, "the call in progress holds the only free agent"
    (originate,) = [entry for entry in world.control.log if entry[0] == "originate"]
    assert originate[3] == "+48221234500", "the campaign's caller ID"


async def test_an_agent_connected_within_two_seconds_is_no_abandon(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    channel = await a_person_waits(world)
    (agent_leg,) = world.rung()
    await world.timers.advance(1.9)
    await world.acd.channel_entered(agent_leg)
    await world.timers.advance(5)
    attempt = world.attempt("+48221110001")
    assert attempt.outcome == "human" and attempt.abandoned_at is None and attempt.amd_status == "HUMAN"
    assert attempt.connected_at is not None and attempt.human_at is not None
    assert (attempt.connected_at - attempt.human_at).total_seconds() == pytest.approx(1.9)
    assert attempt.agent_id == world.agents["2001"].user_id
    await world.acd.channel_gone(channel)  # the customer hangs up
    assert world.contact("+48221110001").status == "done"
    agent = world.agents["2001"]
    await world.acd.wrapup(agent.user_id, "dnc", "")
    assert world.contact("+48221110001").status == "dnc"
    assert world.attempt("+48221110001").wrapup_code == "dnc"
    with world.db.session() as session:
        assert store.dnc_numbers(session, "spring") == {"+48221110001"}


async def test_no_agent_within_two_seconds_abandons_with_the_message_and_proof(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    channel = await a_person_waits(world)
    (agent_leg,) = world.rung()
    assert world.router.holders(channel) == ("dialer", "acd")  # the ACD has the person: their events go there
    await world.timers.advance(2.0)
    assert ("hangup", agent_leg) in [entry[:2] for entry in world.control.log], "the offer is withdrawn"
    plays = world.control.calls_of("play")
    assert plays and plays[-1][0] == channel and plays[-1][1] == "sound:dialer-abandon"
    # Back with the dialer, so the message's end reaches it. Before: the ACD kept it, and the person was
    # never hung up (found by test_dialer_sessions on a real Asterisk).
    assert world.router.owner(channel) == "dialer"
    await world.dialer.playback_finished(plays[-1][2])
    assert ("hangup", channel) in [entry[:2] for entry in world.control.log]
    await world.dialer.channel_destroyed(channel, 16)
    attempt = world.attempt("+48221110001")
    assert attempt.outcome == "abandoned" and attempt.human_at is not None and attempt.abandoned_at is not None
    assert (attempt.abandoned_at - attempt.human_at).total_seconds() == pytest.approx(2.0)
    assert attempt.message_at is not None and attempt.ended_at is not None
    contact = world.contact("+48221110001")
    assert contact.status == "pending" and contact.last_outcome == "abandoned"
    assert contact.not_before == world.timers.now() + timedelta(hours=1)
    rates = world.dialer.campaigns["spring"].ledger.rates(world.dialer.clock())
    assert rates["30d"].abandoned == 1 and rates["30d"].answered == 1
    # The agent, whose phone was still ringing, is free again; the withdrawn offer counts as a miss and
    # sends them to the back of the idle order.
    agent = world.agents["2001"]
    assert agent.state.value == "ready" and agent.missed_in_row == 1
    assert agent.idle_since == world.timers.now()


async def test_a_person_who_hangs_up_waiting_is_counted_as_abandoned(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    channel = await a_person_waits(world)
    await world.timers.advance(1.0)
    await world.acd.channel_gone(channel)
    attempt = world.attempt("+48221110001")
    assert attempt.outcome == "abandoned" and attempt.abandoned_at is not None and attempt.message_at is None
    await world.timers.advance(5)
    assert world.control.calls_of("play") == []


async def test_machines_busy_lines_and_unanswered_calls_follow_their_retry_rules(world: World) -> None:
    for ext in ("2001", "2002"):
        await world.acd.login(world.agents[ext].user_id)
    await world.pace()
    channels = {endpoint.split("@")[0].removeprefix("PJSIP/"): cid for cid, endpoint in world.dialled()}
    assert set(channels) >= {"+48221110001", "+48221110002"}
    await world.dialer.stasis_start(channels["+48221110001"], (DIALER_ARG,))
    await world.dialer.stasis_start(channels["+48221110001"], (AMD_ARG, "MACHINE", "LONGGREETING-2000-1500"))
    assert world.rung() == [], "no agent for a machine"
    await world.dialer.channel_destroyed(channels["+48221110001"], 16)
    await world.dialer.channel_destroyed(channels["+48221110002"], 17)
    machine, busy = world.attempt("+48221110001"), world.attempt("+48221110002")
    assert (machine.outcome, machine.amd_status, machine.amd_cause) == ("machine", "MACHINE", "LONGGREETING-2000-1500")
    assert (busy.outcome, busy.hangup_cause) == ("busy", 17)
    assert world.contact("+48221110002").not_before == world.timers.now() + timedelta(seconds=120)
    if "+48221110003" in channels:
        await world.dialer.channel_destroyed(channels["+48221110003"], 19)
        assert world.attempt("+48221110003").outcome == "no_answer"


async def test_amd_that_cannot_start_treats_the_answer_as_a_person(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    world.control.fail_continue = True
    await world.pace()
    ((channel, _),) = world.dialled()
    await world.dialer.stasis_start(channel, (DIALER_ARG,))
    assert len(world.rung()) == 1
    assert world.attempt("+48221110001").amd_status == "NOTSURE"


async def test_a_lost_ring_event_ends_the_attempt_as_unanswered(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    await world.pace()
    ((channel, _),) = world.dialled()
    await world.timers.advance(SPEC.ring_seconds + 21)
    assert ("hangup", channel) in [entry[:2] for entry in world.control.log]
    assert world.attempt("+48221110001").outcome == "no_answer"
    assert not world.dialer.owns(channel)


async def test_outside_the_window_nothing_is_dialled(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    world.timers.clock = world.timers.clock.replace(hour=22)  # 23:00 in Warsaw
    await world.pace()
    assert world.dialled() == []
    assert world.contact("+48221110001").not_before is not None


async def test_the_acds_callback_list_feeds_a_callback_campaign_and_is_closed_when_reached(world: World) -> None:
    runtime = world.dialer.campaigns["spring"]
    runtime.spec = dataclasses.replace(SPEC, callback_list=True)
    world.acd.callbacks = {"221110009": {"id": "221110009", "number": "221110009", "name": "Missed Mia",
                                          "queue": "sales", "reason": "abandoned", "count": 1, "last_at": ""},
                           "anonymous": {"id": "anonymous", "number": "anonymous", "name": "", "queue": None,
                                         "reason": "abandoned", "count": 1, "last_at": ""}}
    world.dialer.campaign_loop.feed_callbacks(runtime)
    world.dialer.campaign_loop.feed_callbacks(runtime)  # once per number
    mia = world.contact("+48221110009")
    assert (mia.name, mia.timezones, mia.status) == ("Missed Mia", "Europe/Warsaw", "pending")
    assert '"callback_number": "221110009"' in mia.fields
    await world.acd.login(world.agents["2001"].user_id)
    with world.db.session() as session:  # only Mia is left to call
        session.execute(DialerContact.__table__.update().where(DialerContact.number != "+48221110009")
                        .values(status="done"))
    await a_person_waits(world, "+48221110009")
    (agent_leg,) = world.rung()
    await world.acd.channel_entered(agent_leg)
    assert "221110009" not in world.acd.callbacks


async def test_a_restart_rebuilds_the_abandon_windows_from_the_attempts(world: World) -> None:
    await world.acd.login(world.agents["2001"].user_id)
    await a_person_waits(world)
    await world.timers.advance(2.0)  # abandoned
    again = DialerService(world.control, world.acd, world.db, Writer(world.db), {"spring": SPEC}, Prompts(),  # type: ignore[arg-type]
                          default_trunk="pstn", bus=Bus(),
                          claims=routing.router().claims_for("dialer"), timers=world.timers)
    again.load()
    rates = again.campaigns["spring"].ledger.rates(again.clock())
    assert (rates["30d"].answered, rates["30d"].abandoned) == (1, 1)
    assert (rates["24h"].answered, rates["24h"].abandoned) == (1, 1)


async def test_an_agent_who_finds_a_machine_takes_it_out_of_the_abandon_windows(world: World) -> None:
    runtime = world.dialer.campaigns["spring"]
    runtime.spec = dataclasses.replace(SPEC, dispositions={**SPEC.dispositions, "sale": Disposition("machine")})
    await world.acd.login(world.agents["2001"].user_id)
    channel = await a_person_waits(world)
    (agent_leg,) = world.rung()
    await world.acd.channel_entered(agent_leg)
    assert runtime.ledger.rates(world.dialer.clock())["30d"].answered == 1
    await world.acd.channel_gone(channel)
    await world.acd.wrapup(world.agents["2001"].user_id, "sale", "")
    assert runtime.ledger.rates(world.dialer.clock())["30d"].answered == 0
    contact = world.contact("+48221110001")
    assert (contact.status, contact.last_outcome) == ("pending", "machine")
    assert contact.not_before == world.timers.now() + timedelta(hours=1)
    assert world.attempt("+48221110001").outcome == "machine"
