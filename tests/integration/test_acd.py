"""The ACD end to end: sipp callers in queues, registered sipp agent phones, agents acting through the
panel's API; asserted on what the database recorded (ring attempts, destinations, callbacks, work
log) and on what Asterisk played."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from callcenter.db.models import AcdAttempt, AcdCall, AcdDestination, AgentWorkLog, Callback, User
from tests.integration.conftest import AgentFactory
from tests.support import sipp
from tests.support.system import RING_TIMEOUT, WRAPUP, System, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Record:
    call: AcdCall
    attempts: list[AcdAttempt]
    destinations: list[tuple[str, str]]

    @property
    def rang(self) -> list[tuple[str, str]]:
        return [(a.extension, a.outcome) for a in self.attempts]


def now() -> datetime:
    return datetime.now(UTC)


def records(system: System, since: datetime, count: int, done: Callable[[AcdCall], bool] | None = None,
            timeout: float = 30) -> list[Record]:
    """The queue records entered since ``since`` (oldest first), once ``count`` of them are over."""
    finished = done or (lambda c: c.ended_at is not None)
    deadline = time.monotonic() + timeout
    while True:
        with system.db.session() as session:
            calls = list(session.scalars(select(AcdCall).where(AcdCall.entered_at >= since)
                                         .order_by(AcdCall.entered_at, AcdCall.id)))
            if len([c for c in calls if finished(c)]) >= count or time.monotonic() > deadline:
                assert len([c for c in calls if finished(c)]) >= count, \
                    f"{len(calls)} records, not {count} done: {[(c.queue, c.outcome) for c in calls]}"
                return [Record(c, list(session.scalars(select(AcdAttempt).where(AcdAttempt.call_id == c.id)
                                                       .order_by(AcdAttempt.seq))),
                               [(d.kind, d.target) for d in session.scalars(
                                   select(AcdDestination).where(AcdDestination.call_id == c.id)
                                   .order_by(AcdDestination.seq))])
                        for c in calls]
        time.sleep(0.1)


def user_id(system: System, extension: str) -> int:
    with system.db.session() as session:
        found = session.scalar(select(User.id).where(User.extension == extension))
    assert found is not None
    return found


def caller(system: System, did: str, number: str, **kwargs: Any) -> sipp.Sipp:
    return sipp.caller(system.sip_port, did, caller=number, caller_name=f"Caller {number}", **kwargs)


async def logged_in_in_order(agent: AgentFactory, *extensions: str, **kwargs: Any) -> list[Any]:
    """Agents who log in one after the other: the first has been idle longest."""
    clients = []
    for extension in extensions:
        client = await agent(extension, **kwargs)
        # Ready (idle from now on) before the next one logs in.
        await client.wait_view(lambda v: v["agent"]["state"] == "ready", 10, f"{extension} ready")
        clients.append(client)
    return clients


def queued(system: System, since: datetime, number: str) -> AcdCall | None:
    """The queue record of ``number``'s call since ``since``, once the caller is in the queue."""
    with system.db.session() as session:
        return session.scalar(select(AcdCall).where(AcdCall.entered_at >= since, AcdCall.number == number))


def offered_to(system: System, since: datetime, number: str, extension: str) -> AcdAttempt | None:
    """The offer of ``number``'s call to ``extension`` since ``since``."""
    with system.db.session() as session:
        return session.scalar(select(AcdAttempt).join(AcdCall, AcdCall.id == AcdAttempt.call_id)
                              .where(AcdCall.entered_at >= since, AcdCall.number == number,
                                     AcdAttempt.extension == extension))


# -- strategies ---------------------------------------------------------------------------------------------


async def test_longest_idle_agent_gets_each_call(fresh_system: System, agent: AgentFactory) -> None:
    await logged_in_in_order(agent, "2002", "2001", "2003")
    since = now()
    cdrs_before = fresh_system.cdr_count()
    first = await caller(fresh_system, "1200", "0301111", hangup_after_ms=2500).run(30)
    assert first.ok, first.output
    second = await caller(fresh_system, "1200", "0302222", hangup_after_ms=2500).run(30)
    assert second.ok, second.output
    one, two = records(fresh_system, since, 2)
    # Bob logged in first; after his call Alice has been idle longest.
    assert one.rang == [("2002", "answered")] and two.rang == [("2001", "answered")]
    assert one.destinations == [("Q", "idle"), ("U", "2002")]
    assert (one.call.outcome, one.call.number, one.call.agent_id) == ("answered", "0301111",
                                                                     user_id(fresh_system, "2002"))
    assert float(one.call.wait_seconds or 99) < 2 and 1.5 < float(one.call.talk_seconds or 0) < 4
    # The agent's leg belongs to the caller's call: one CDR per call, the agent in its events.
    cdrs = fresh_system.wait_cdrs(cdrs_before, 2)
    assert len(cdrs) == 2 and [(c.src, c.dst, c.disposition) for c in cdrs] == [
        ("0301111", "1200", "ANSWERED"), ("0302222", "1200", "ANSWERED")]
    assert "BRIDGE_ENTER" in fresh_system.call_events(cdrs[0].linkedid)


async def test_ring_all_rings_everyone_and_the_first_answer_wins(fresh_system: System, agent: AgentFactory) -> None:
    await agent("2001", "ring")
    await agent("2002", ring_ms=300)
    await agent("2003", ring_ms=2500)
    since = now()
    result = await caller(fresh_system, "1201", "0303333", hangup_after_ms=4000).run(30)
    assert result.ok, result.output
    [record] = records(fresh_system, since, 1)
    assert sorted(record.rang) == [("2001", "taken_by_other"), ("2002", "answered"), ("2003", "taken_by_other")]
    assert record.destinations == [("Q", "all"), ("U", "2002")]


async def test_skills_and_priority(fresh_system: System, agent: AgentFactory) -> None:
    carol, bob = await logged_in_in_order(agent, "2003", "2002")
    since = now()
    # Both free: the better skill (Bob 80) wins although Carol (50) has been idle longer.
    result = await caller(fresh_system, "1202", "0304444", hangup_after_ms=2500).run(30)
    assert result.ok, result.output
    [record] = records(fresh_system, since, 1)
    assert record.rang == [("2002", "answered")]
    # Nobody free: a normal caller waits, then a VIP (priority 5 through the IVR) arrives and is served first.
    await carol.act("pause", reason="break")
    await bob.act("pause", reason="break")
    since = now()
    normal = caller(fresh_system, "1202", "0305555", hangup_after_ms=9000)
    await normal.start()
    await wait_for(lambda: queued(fresh_system, since, "0305555"), 10, "the normal caller in the queue")
    vip = caller(fresh_system, "1103", "0306666", hangup_after_ms=7000)
    await vip.start()
    await wait_for(lambda: queued(fresh_system, since, "0306666"), 10, "the VIP in the queue")
    await bob.act("ready")
    # Carol goes ready only once the VIP has been offered to Bob, so the normal caller is hers.
    await wait_for(lambda: offered_to(fresh_system, since, "0306666", "2002"), 10, "the VIP offered to Bob")
    await carol.act("ready")
    assert (await normal.wait(30)).ok and (await vip.wait(30)).ok
    by_number = {r.call.number: r for r in records(fresh_system, since, 2)}
    assert by_number["0306666"].rang == [("2002", "answered")]
    assert by_number["0306666"].call.priority == 5
    assert by_number["0305555"].rang == [("2003", "answered")]


async def test_no_answer_tries_the_next_agent_and_pauses_after_two_misses(
        fresh_system: System, agent: AgentFactory) -> None:
    ringing_alice = await agent("2001", "ring")  # her phone lets every call ring out
    await asyncio.sleep(0.3)
    await agent("2002")
    since = now()
    for number in ("0307777", "0308888"):
        result = await caller(fresh_system, "1200", number, hangup_after_ms=RING_TIMEOUT * 1000 + 3000).run(40)
        assert result.ok, result.output
    one, two = records(fresh_system, since, 2)
    assert one.rang == [("2001", "no_answer"), ("2002", "answered")]
    assert two.rang == [("2001", "no_answer"), ("2002", "answered")]
    ring = float(one.attempts[0].ring_seconds or 0)
    assert RING_TIMEOUT - 0.5 < ring < RING_TIMEOUT + 1.5
    view = await ringing_alice.view()
    assert (view["agent"]["state"], view["agent"]["reason"]) == ("paused", "missed")
    with fresh_system.db.session() as session:
        log = list(session.scalars(select(AgentWorkLog).where(AgentWorkLog.user_id == user_id(fresh_system, "2001"),
                                                              AgentWorkLog.at >= since).order_by(AgentWorkLog.id)))
    assert [(w.previous, w.state) for w in log] == [
        ("ready", "ringing"), ("ringing", "ready"), ("ready", "ringing"), ("ringing", "paused")]
    assert log[-1].reason == "missed" and "2 offered calls in a row" in log[-1].detail


async def test_abandoned_calls_land_on_the_callback_list_grouped(fresh_system: System, agent: AgentFactory) -> None:
    watcher = await agent("2003", login=False)  # logged out: queue "all" keeps its callers waiting
    since = now()
    for _ in range(2):
        result = await caller(fresh_system, "1201", "0309999", hangup_after_ms=1500).run(30)
        assert result.ok, result.output
    one, two = records(fresh_system, since, 2)
    assert one.call.outcome == two.call.outcome == "abandoned"
    assert one.rang == []
    with fresh_system.db.session() as session:
        entry = session.scalar(select(Callback).where(Callback.number == "0309999"))
    assert entry is not None and (entry.count, entry.reason, entry.status, entry.queue) == (2, "abandoned", "open",
                                                                                             "all")
    view = await watcher.view()
    listed = [c for c in view["callbacks"] if c["number"] == "0309999"]
    assert listed and listed[0]["count"] == 2
    await watcher.act("callback_remove", id="0309999")
    assert not [c for c in (await watcher.view())["callbacks"] if c["number"] == "0309999"]


async def test_overflow_after_max_wait_and_when_nobody_is_logged_in(fresh_system: System,
                                                                     agent: AgentFactory) -> None:
    dave = await agent("2004")
    await dave.act("pause", reason="break")  # logged in to "overflow", but not taking calls
    await agent("2001")  # in "idle", where "overflow" sends its callers after 4 s
    since = now()
    result = await caller(fresh_system, "1203", "0310000", hangup_after_ms=7500).run(30)
    assert result.ok, result.output
    first, second = records(fresh_system, since, 2)
    assert (first.call.queue, first.call.outcome) == ("overflow", "overflow")
    assert 3.5 < float(first.call.wait_seconds or 0) < 5.5
    assert first.destinations == [("Q", "overflow"), ("Q", "idle")]
    assert (second.call.queue, second.call.parent_id, second.call.outcome) == ("idle", first.call.id, "answered")
    assert second.destinations == [("Q", "idle"), ("U", "2001")]
    # Nobody logged in to "callback": the caller hears so at once, is listed and let go.
    await dave.act("logout")
    since = now()
    started = time.monotonic()
    result = await caller(fresh_system, "1204", "0311111", wait_bye_ms=20000).run(30)
    assert result.ok, result.output
    assert time.monotonic() - started < 12
    [record] = records(fresh_system, since, 1)
    assert (record.call.outcome, record.destinations) == ("overflow", [("Q", "callback"), ("C", "callback")])
    with fresh_system.db.session() as session:
        entry = session.scalar(select(Callback).where(Callback.number == "0311111"))
    assert entry is not None and entry.reason == "overflow"


class AriObserver:
    """Watches every channel and playback in Asterisk (subscribeAll), as a test's own ARI app."""

    def __init__(self, system: System) -> None:
        secrets = json.loads((system.settings.var_dir / "secrets.json").read_text())
        token = base64.b64encode(f"{secrets['ari_user']}:{secrets['ari_password']}".encode()).decode()
        self.url = f"ws://127.0.0.1:{system.settings.asterisk.http_port}/ari/events?app=observer&subscribeAll=true"
        self.headers = {"Authorization": f"Basic {token}"}
        self.events: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AriObserver:
        self.session = aiohttp.ClientSession(headers=self.headers)
        self.ws = await self.session.ws_connect(self.url)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self.ws:
            self.events.append(json.loads(message.data))

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.ws.close()
        await self.session.close()

    def channel_of(self, caller_number: str) -> str:
        return next(e["channel"]["id"] for e in self.events if e["type"] == "ChannelCreated"
                    and e["channel"]["caller"]["number"] == caller_number)

    def media_played(self, channel_id: str) -> list[str]:
        """Media that started on the channel and was played through (a later item or the end followed)."""
        steps = [(e["type"], e["playback"]["media_uri"]) for e in self.events
                 if e["type"].startswith("Playback") and e["playback"]["target_uri"] == f"channel:{channel_id}"]
        return [media for (kind, media), (after, _next) in itertools.pairwise(steps)
                if kind in ("PlaybackStarted", "PlaybackContinuing") and after in ("PlaybackContinuing",
                                                                                  "PlaybackFinished")]


async def test_position_announcement_is_played(fresh_system: System, agent: AgentFactory) -> None:
    dave = await agent("2004")
    await dave.act("pause", reason="break")
    async with AriObserver(fresh_system) as observer:
        first = caller(fresh_system, "1204", "0312222", hangup_after_ms=14000)
        await first.start()
        await asyncio.sleep(0.5)
        second = caller(fresh_system, "1204", "0313333", hangup_after_ms=13000)
        await second.start()
        assert (await first.wait(30)).ok and (await second.wait(30)).ok
        played = observer.media_played(observer.channel_of("0313333"))
    assert any(m.endswith("/queue-position") for m in played), played
    assert "number:2" in played, played  # the second caller heard "you are caller number 2"
    assert any(m.endswith("/queue-callback-offer") for m in played), played


async def test_callback_keeps_its_place_and_wrap_up_holds_the_next_call(
        fresh_system: System, agent: AgentFactory) -> None:
    pstn = sipp.pstn(fresh_system.sip_port, fresh_system.settings.sip.trunk_port)
    await pstn.start()
    try:
        dave = await agent("2004")
        await dave.act("pause", reason="break")
        since = now()
        first = caller(fresh_system, "1204", "0314444", hangup_after_ms=8000)
        await first.start()
        await asyncio.sleep(0.5)
        second = caller(fresh_system, "1204", "0315555", keys=[(1500, "1")], wait_bye_ms=15000)
        await second.start()
        await asyncio.sleep(0.5)
        third = caller(fresh_system, "1204", "0316666", hangup_after_ms=19000)
        await third.start()
        # The second caller pressed 1: listed for a callback, and let go after the confirmation.
        await dave.wait_view(lambda v: any(c["number"] == "0315555" for c in v["callbacks"]), 10, "the request")
        await dave.act("ready")
        assert (await second.wait(20)).ok
        assert (await first.wait(20)).ok
        # After the first caller, the wrap-up; then the callback (ahead of the third caller) rings Dave,
        # and when he answers the customer is called through the trunk.
        view = await dave.wait_view(lambda v: (v["call"] or {}).get("number") == "0315555"
                                    and v["call"]["state"] == "connected", 25, "the callback connected")
        assert view["call"]["direction"] == "callback"
        await dave.act("hangup")
        assert (await third.wait(30)).ok
        one, two, three = records(fresh_system, since, 3)
    finally:
        await pstn.stop()
    assert (one.call.number, one.call.outcome) == ("0314444", "answered")
    assert (two.call.number, two.call.direction, two.call.outcome) == ("0315555", "callback", "answered")
    assert two.destinations == [("Q", "callback"), ("C", "requested"), ("U", "2004")]
    assert (three.call.number, three.call.outcome) == ("0316666", "answered")
    assert one.call.answered_at and two.call.answered_at and three.call.answered_at
    assert one.call.answered_at < two.call.answered_at < three.call.answered_at  # nobody jumped the line
    assert one.call.ended_at is not None
    callback_offer = two.attempts[0].started_at
    assert (callback_offer - one.call.ended_at).total_seconds() >= WRAPUP - 0.2  # the wrap-up held it


async def test_transfers_blind_attended_and_to_ivr(fresh_system: System, agent: AgentFactory) -> None:
    alice, bob, carol = await logged_in_in_order(agent, "2001", "2002", "2003")
    since = now()
    customer = caller(fresh_system, "1200", "0317777", hangup_after_ms=9000)  # the transfers take 3-4 s
    await customer.start()
    await alice.wait_view(lambda v: (v["call"] or {}).get("state") == "connected", 10, "Alice connected")
    await alice.act("transfer", mode="blind", kind="agent", target="2002")
    await bob.wait_view(lambda v: (v["call"] or {}).get("state") == "connected", 10, "Bob connected")
    await bob.act("transfer", mode="attended", kind="agent", target="2003")
    await bob.wait_view(lambda v: ((v["call"] or {}).get("consult") or {}).get("state") == "connected", 10,
                        "Carol answering the consultation")
    await bob.act("transfer_complete")
    await carol.wait_view(lambda v: (v["call"] or {}).get("state") == "connected", 10, "Carol connected")
    assert (await customer.wait(30)).ok
    [record] = records(fresh_system, since, 1)
    assert record.destinations == [("Q", "idle"), ("U", "2001"), ("U", "2002"), ("U", "2003")]
    assert [(a.extension, a.outcome) for a in record.attempts] == [
        ("2001", "answered"), ("2002", "answered"), ("2003", "answered")]
    assert record.call.agent_id == user_id(fresh_system, "2003")
    # To an IVR flow: the caller leaves the agent and hears the flow.
    since = now()
    customer = caller(fresh_system, "1200", "0318888", wait_bye_ms=40000)  # the flow ends the call
    await customer.start()
    connected = [c for c in (alice, bob, carol)]
    holder = None
    for _ in range(100):
        for client in connected:
            if ((await client.view())["call"] or {}).get("state") == "connected":
                holder = client
        if holder:
            break
        await asyncio.sleep(0.1)
    assert holder is not None
    await holder.act("transfer", mode="blind", kind="ivr", target="deep")
    assert (await customer.wait(30)).ok
    [record] = records(fresh_system, since, 1)
    assert record.call.outcome == "transferred" and record.destinations[-1] == ("R", "deep")
    visits = fresh_system.visits_since(since)
    assert visits[0][0].flow == "deep" and visits[0][0].caller == "0318888"


async def test_click_to_call_and_hold(fresh_system: System, agent: AgentFactory) -> None:
    pstn = sipp.pstn(fresh_system.sip_port, fresh_system.settings.sip.trunk_port)
    await pstn.start()
    try:
        alice = await agent("2001")
        await alice.act("pause", reason="break")
        since = now()
        await alice.act("dial", number="+49 30 555 0123")
        await alice.wait_view(lambda v: (v["call"] or {}).get("state") == "connected", 15, "the customer answered")
        bridge = f"acd-call-{(await alice.view())['call']['id']}"
        assert "Channels: 2" in fresh_system.asterisk(f"bridge show {bridge}")
        await alice.act("hold")
        await alice.wait_view(lambda v: v["call"]["state"] == "held", 5, "held")
        assert "Channels: 1" in fresh_system.asterisk(f"bridge show {bridge}")  # the customer is out, on music
        await alice.act("unhold")
        assert "Channels: 2" in fresh_system.asterisk(f"bridge show {bridge}")
        await alice.act("hangup")
        view = await alice.wait_view(lambda v: v["call"] is None, 10, "the call over")
        assert view["agent"]["state"] == "wrap_up"
        await alice.act("wrapup", code="sale", note="Order 42, with a comma, and \"quotes\"")
        view = await alice.wait_view(lambda v: v["agent"]["state"] == "paused", 5, "back to the pause")
        [record] = records(fresh_system, since, 1, done=lambda c: c.wrapup_code != "")
    finally:
        await pstn.stop()
    assert (record.call.direction, record.call.number, record.call.outcome) == ("outbound", "+49305550123", "answered")
    assert record.call.note == "Order 42, with a comma, and \"quotes\""
    assert view["agent"]["reason"] == "break"
