"""The ACD's decisions and state machines, driven without Asterisk: a fake control records what
would be asked of ARI, fake timers fire when the test says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callcenter.acd import strategies
from callcenter.acd.events import (
    AgentStateChanged,
    CallConnected,
    CallEnded,
    CallEnding,
    CallOffered,
    CallQueued,
    CallWrappedUp,
    EnterQueue,
    ToggleAgentLogin,
)
from callcenter.acd.model import AcdCall, Agent, AgentState, CallState
from callcenter.acd.records import AcdRecorder, DayFigures
from callcenter.acd.services import AcdService
from callcenter.acd.settings import AcdSettings, PauseReason, QueueSpec
from callcenter.bus import Bus
from callcenter.errors import ActionRefused, AriError, AriNotFound
from callcenter.ivr.events import StartIvr
from callcenter.users.events import PhoneStateChanged
from tests.support import routing


class FakeControl:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.fail_originate: set[str] = set()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.log.append((name, *args))
        return record

    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int, args: list[str],
                        originator: str | None = None) -> None:
        if endpoint in self.fail_originate:
            raise AriError("POST", "/channels", 500, "Allocation failed")
        self.log.append(("originate", channel_id, endpoint, caller_id))

    def originated(self) -> list[tuple[str, str]]:
        """(channel id, endpoint) of every originate so far."""
        return [(entry[1], entry[2]) for entry in self.log if entry[0] == "originate"]

    def calls_of(self, name: str) -> list[tuple[Any, ...]]:
        return [entry[1:] for entry in self.log if entry[0] == name]


class FakeTimers:
    def __init__(self) -> None:
        self.clock = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        self.pending: list[tuple[datetime, Callable[[], Awaitable[None]], list[bool]]] = []

    def now(self) -> datetime:
        return self.clock

    def later(self, delay: float, action: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        cancelled = [False]
        self.pending.append((self.clock + timedelta(seconds=delay), action, cancelled))

        def cancel() -> None:
            cancelled[0] = True
        return cancel

    async def advance(self, seconds: float) -> None:
        target = self.clock + timedelta(seconds=seconds)
        while True:
            due = sorted((p for p in self.pending if p[0] <= target and not p[2][0]), key=lambda p: p[0])
            if not due:
                break
            when, action, cancelled = due[0]
            self.pending.remove(due[0])
            self.clock = max(self.clock, when)
            cancelled[0] = True
            await action()
        self.clock = target


class FakeWriter:
    def __init__(self) -> None:
        self.ops: list[Any] = []

    def add(self, op: Any) -> None:
        self.ops.append(op)

    def together(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class Prompts:
    def media(self, name: str, lang: str = "en") -> str:
        return f"sound:{name}"


def queue(name: str, members: dict[str, int], **kwargs: Any) -> QueueSpec:
    defaults: dict[str, Any] = {"ring_timeout": 10, "wrapup": 0, "max_wait": 0, "overflow": "", "announce_every": 0}
    defaults.update(kwargs)
    return QueueSpec(name=name, members=members, **defaults)


AGENTS = {"2001": "Alice", "2002": "Bob", "2003": "Carol"}


ROUTER = routing.router()  # what the ACDs of these tests claim: their own channel ids never clash


def make(queues: list[QueueSpec], *, missed_limit: int = 3, phone_state: Callable[[str], str] | None = None,
         bus: Bus | None = None) -> tuple[AcdService, FakeControl, FakeTimers]:
    control, timers = FakeControl(), FakeTimers()
    acd = AcdService(control, AcdRecorder(FakeWriter()), AcdSettings(missed_limit=missed_limit),  # type: ignore[arg-type]
                     {"break": PauseReason("break", "Break"), "training": PauseReason("training", "Training", True)},
                     {"sale": "Sale"}, Prompts(), timers, bus=bus or Bus(), claims=ROUTER.claims_for("acd"),
                     extensions=lambda: set(AGENTS), phone_state=phone_state)
    agents = {}
    for n, (ext, name) in enumerate(AGENTS.items(), start=1):
        agent = Agent(n, ext, name, since=timers.now(), idle_since=timers.now())
        agent.skills = {q.name: q.members[ext] for q in queues if ext in q.members}
        agents[n] = agent
    acd.load({q.name: q for q in queues}, agents, {q.name: DayFigures() for q in queues}, {}, [])
    return acd, control, timers


async def log_in(acd: AcdService, timers: FakeTimers, *extensions: str) -> None:
    """Logs agents in one second apart: the first listed has been idle longest."""
    for ext in extensions:
        agent = acd.agent_by_extension(ext)
        assert agent is not None
        await acd.login(agent.user_id)
        await timers.advance(1)


def ringing_endpoints(control: FakeControl, since: int = 0) -> list[str]:
    return [endpoint for _, endpoint in control.originated()[since:]]


async def answer(acd: AcdService, control: FakeControl, endpoint: str) -> str:
    channel = next(c for c, e in reversed(control.originated()) if e == endpoint)
    await acd.channel_entered(channel)
    return channel


def agent(acd: AcdService, ext: str) -> Agent:
    found = acd.agent_by_extension(ext)
    assert found is not None
    return found


# -- strategies ------------------------------------------------------------------------------------------


def test_strategies_pick_as_documented() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a = Agent(1, "2001", "A", idle_since=t0 + timedelta(seconds=30), skills={"q": 40}, calls_today=5)
    b = Agent(2, "2002", "B", idle_since=t0 + timedelta(seconds=10), skills={"q": 90}, calls_today=9)
    c = Agent(3, "2003", "C", idle_since=t0 + timedelta(seconds=20), skills={"q": 90}, calls_today=1)
    d = Agent(4, "2004", "D", idle_since=t0, skills={"other": 100})
    free = [a, b, c, d]
    assert strategies.choose("longest-idle", "q", free, set(), {}) == [b]
    assert strategies.choose("ring-all", "q", free, set(), {}) == [a, b, c]
    assert strategies.choose("fewest-calls", "q", free, set(), {}) == [c]
    assert strategies.choose("skills", "q", free, set(), {}) == [b]  # best skill, then idle longest
    assert strategies.choose("round-robin", "q", free, set(), {"q": 2001}) == [b]
    assert strategies.choose("round-robin", "q", free, set(), {"q": 2003}) == [a]  # wraps around
    assert strategies.choose("longest-idle", "q", free, {2}, {}) == [c]  # B let it ring out already
    assert strategies.choose("longest-idle", "q", free, {1, 2, 3}, {}) == [b]  # everyone tried: again
    assert strategies.choose("longest-idle", "none", free, set(), {}) == []


# -- delivery -----------------------------------------------------------------------------------------------


async def test_longest_idle_agent_gets_the_call_and_is_bridged_with_the_caller() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1, "2003": 1})])
    await log_in(acd, timers, "2002", "2001", "2003")
    call = await acd.enqueue("cust-1", "q", "+4930123", "Grace")
    assert call is not None
    assert ("answer", "cust-1") in control.log
    assert ("add_to_bridge", "acd-hold-q", "cust-1") in control.log
    assert ringing_endpoints(control) == ["PJSIP/2002"]
    assert control.originated()[0] and '"Grace" <+4930123>' in control.log[-1]
    assert agent(acd, "2002").state is AgentState.RINGING
    agent_channel = await answer(acd, control, "PJSIP/2002")
    assert call.state is CallState.CONNECTED and call.agent is agent(acd, "2002")
    assert agent(acd, "2002").state is AgentState.ON_CALL
    assert ("remove_from_bridge", "acd-hold-q", "cust-1") in control.log
    bridge = f"acd-call-{call.record_id}"
    assert ("add_to_bridge", bridge, "cust-1") in control.log
    assert ("add_to_bridge", bridge, agent_channel) in control.log
    await acd.channel_gone("cust-1")
    assert (agent_channel,) in [c[:1] for c in control.calls_of("hangup")]
    assert ("destroy_bridge", bridge) in control.log
    assert agent(acd, "2002").state is AgentState.READY and agent(acd, "2002").calls_today == 1
    figures = acd.queue_figures()[0]
    assert (figures["offered"], figures["answered"], figures["abandoned"], figures["service_level"]) == (1, 1, 0, 100.0)


async def test_ring_all_rings_everyone_and_the_first_to_answer_wins() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1, "2003": 1}, strategy="ring-all")])
    await log_in(acd, timers, "2001", "2002", "2003")
    await acd.enqueue("cust-1", "q", "100")
    assert sorted(ringing_endpoints(control)) == ["PJSIP/2001", "PJSIP/2002", "PJSIP/2003"]
    await answer(acd, control, "PJSIP/2003")
    hung_up = {c[0] for c in control.calls_of("hangup")}
    others = {c for c, e in control.originated() if e != "PJSIP/2003"}
    assert others <= hung_up
    assert [agent(acd, e).state for e in ("2001", "2002", "2003")] == [
        AgentState.READY, AgentState.READY, AgentState.ON_CALL]
    assert agent(acd, "2001").missed_in_row == 0  # losing a ring-all race is no miss


async def test_skills_pick_the_best_skill_and_priority_callers_go_first() -> None:
    acd, control, timers = make([queue("q", {"2001": 30, "2002": 80, "2003": 50}, strategy="skills")])
    await log_in(acd, timers, "2001")
    await acd.enqueue("normal", "q", "100")
    await answer(acd, control, "PJSIP/2001")  # Alice is busy now
    await acd.enqueue("early", "q", "101")
    await timers.advance(1)
    await acd.enqueue("vip", "q", "102", priority=5)
    await log_in(acd, timers, "2003", "2002")
    # Carol logged in first and takes the head of the line: the VIP, although they came later.
    first = ringing_endpoints(control, 1)
    assert first[0] == "PJSIP/2003"
    assert acd.channels[control.originated()[1][0]].call.number == "102"
    # Bob, the best skill, gets the next one.
    assert first[1] == "PJSIP/2002" and acd.channels[control.originated()[2][0]].call.number == "101"


async def test_no_answer_tries_the_next_agent_and_pauses_after_n_misses() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1}, ring_timeout=10)], missed_limit=2)
    await log_in(acd, timers, "2001", "2002")
    call = await acd.enqueue("cust-1", "q", "100")
    assert call is not None
    assert ringing_endpoints(control) == ["PJSIP/2001"]
    await timers.advance(10)  # Alice lets it ring out
    assert ringing_endpoints(control) == ["PJSIP/2001", "PJSIP/2002"]
    assert agent(acd, "2001").state is AgentState.READY and agent(acd, "2001").missed_in_row == 1
    await acd.channel_gone(control.originated()[1][0], 17)  # Bob is busy
    assert agent(acd, "2002").missed_in_row == 1
    # Everyone was tried: Alice again; she rejects, her second miss: paused "missed".
    assert ringing_endpoints(control)[2] == "PJSIP/2001"
    await acd.channel_gone(control.originated()[2][0], 21)
    assert agent(acd, "2001").state is AgentState.PAUSED and agent(acd, "2001").reason == "missed"
    outcomes = [a for a in call.ringing.values()]
    assert len(outcomes) == 1 and outcomes[0].agent is agent(acd, "2002")
    assert call.attempt_seq == 4


async def test_abandon_lands_on_the_callback_list_and_repeats_group() -> None:
    acd, _control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    await acd.pause(agent(acd, "2001").user_id, "break")
    for n in range(3):
        await acd.enqueue(f"cust-{n}", "q", "+4930555")
        await timers.advance(5)
        await acd.channel_gone(f"cust-{n}")
    await acd.enqueue("other", "q", "anonymous")
    await acd.channel_gone("other")
    assert list(acd.callbacks) == ["+4930555"]
    entry = acd.callbacks["+4930555"]
    assert (entry["count"], entry["reason"], entry["queue"]) == (3, "abandoned", "q")
    figures = acd.queue_figures()[0]
    assert (figures["offered"], figures["abandoned"], figures["service_level"]) == (4, 4, 0.0)


async def test_overflow_when_nobody_is_logged_in_and_after_max_wait() -> None:
    acd, control, timers = make([queue("a", {"2001": 1}, max_wait=30, overflow="queue:b"),
                                 queue("b", {"2002": 1}, overflow="voicemail:2002")])
    call = await acd.enqueue("cust-1", "a", "100")
    assert call is not None
    # Nobody in a: straight to b; nobody in b either: voicemail.
    assert ("continue_in_dialplan", "cust-1", "ivr-voicemail", "2002") in control.log
    assert "cust-1" not in acd.channels
    await log_in(acd, timers, "2001")
    await acd.pause(agent(acd, "2001").user_id, "break")  # logged in, but paused
    await log_in(acd, timers, "2002")
    await acd.pause(agent(acd, "2002").user_id, "break")
    call = await acd.enqueue("cust-2", "a", "200")
    await timers.advance(29)
    assert call is not None and call.queue == "a"
    await timers.advance(1)
    moved = acd.channels["cust-2"].call
    assert moved.queue == "b" and moved.parent_id == call.record_id
    assert ("add_to_bridge", "acd-hold-b", "cust-2") in control.log


async def test_callback_keeps_the_place_and_does_not_jump_ahead() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    await acd.pause(agent(acd, "2001").user_id, "break")
    await acd.enqueue("first", "q", "100")
    await timers.advance(1)
    await acd.enqueue("second", "q", "200")
    await timers.advance(1)
    await acd.enqueue("third", "q", "300")
    assert await acd.dtmf("second", "1")
    play = control.calls_of("play")[-1]
    assert play[0] == "second" and play[1] == "sound:queue-callback-ok"
    await acd.playback_finished(play[2])
    assert ("hangup", "second") in control.log
    assert "200" in acd.callbacks and acd.callbacks["200"]["reason"] == "requested"
    third = acd.channels["third"].call
    assert acd.position(third) == 3  # the callback still counts as ahead of the third caller
    await acd.ready(agent(acd, "2001").user_id)
    await answer(acd, control, "PJSIP/2001")  # first caller
    await acd.channel_gone("first")
    # The callback comes next, before the third caller: Alice's phone shows the customer's number.
    assert control.originated()[-1][1] == "PJSIP/2001" and control.log[-1][3] == "200"
    agent_leg = await answer(acd, control, "PJSIP/2001")
    assert control.originated()[-1][1] == "PJSIP/200@pstn"  # then the customer is dialled
    await acd.channel_entered(control.originated()[-1][0])
    callback = acd.channels[agent_leg].call
    assert callback.state is CallState.CONNECTED and callback.number == "200"
    assert "200" not in acd.callbacks  # done


async def test_wrap_up_holds_the_next_call_until_the_code_or_the_time() -> None:
    acd, control, timers = make([queue("q", {"2001": 1}, wrapup=20)])
    await log_in(acd, timers, "2001")
    alice = agent(acd, "2001")
    await acd.enqueue("c1", "q", "100")
    await answer(acd, control, "PJSIP/2001")
    await acd.channel_gone("c1")
    assert alice.state is AgentState.WRAP_UP
    await acd.enqueue("c2", "q", "200")
    assert len(control.originated()) == 1  # waits
    with pytest.raises(ActionRefused):
        await acd.wrapup(alice.user_id, "nonsense", "")
    await acd.wrapup(alice.user_id, "sale", "wants a brochure")
    assert alice.last_call is not None and alice.last_call.wrapup_code == "sale"
    assert len(control.originated()) == 2  # the code ended the wrap-up
    await answer(acd, control, "PJSIP/2001")
    await acd.channel_gone("c2")
    await timers.advance(19)
    assert alice.state is AgentState.WRAP_UP
    await timers.advance(1)
    assert alice.state is AgentState.READY


async def test_pause_with_approval_and_pause_requested_during_a_call() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    alice = agent(acd, "2001")
    await acd.pause(alice.user_id, "training")
    assert alice.state is AgentState.READY and alice.awaiting_approval == "training"
    await acd.decide_pause("sam", alice.user_id, approve=False)
    assert alice.state is AgentState.READY and alice.awaiting_approval is None
    await acd.enqueue("c1", "q", "100")
    await answer(acd, control, "PJSIP/2001")
    await acd.pause(alice.user_id, "break")
    assert alice.state is AgentState.ON_CALL and alice.pending_pause == "break"
    await acd.channel_gone("c1")
    assert alice.state is AgentState.PAUSED and alice.reason == "break"
    with pytest.raises(ActionRefused):
        await acd.pause(alice.user_id, "nap")


async def test_unregistered_phone_is_not_offered_calls() -> None:
    states = {"2001": "UNAVAILABLE", "2002": "NOT_INUSE"}
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1})], phone_state=lambda e: states.get(e, ""))
    await log_in(acd, timers, "2001", "2002")
    await acd.enqueue("c1", "q", "100")
    assert ringing_endpoints(control) == ["PJSIP/2002"]


async def test_a_phone_that_becomes_free_gets_the_waiting_caller() -> None:
    """Before: the composition root (app.py _device_state) started the dispatch itself."""
    states = {"2001": "INUSE"}
    bus = Bus()
    acd, control, timers = make([queue("q", {"2001": 1})], phone_state=lambda e: states.get(e, ""), bus=bus)
    await log_in(acd, timers, "2001")
    await acd.enqueue("c-free", "q", "100")
    assert ringing_endpoints(control) == []  # busy on a call of its own
    states["2001"] = "NOT_INUSE"
    await bus.publish(PhoneStateChanged("2001", "RINGING"))
    assert ringing_endpoints(control) == []
    await bus.publish(PhoneStateChanged("2001", "NOT_INUSE"))
    assert ringing_endpoints(control) == ["PJSIP/2001"]


async def test_every_channel_the_acd_handles_is_claimed_so_its_events_come_to_the_acd() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1})])
    await log_in(acd, timers, "2001")
    ROUTER.take("c-claimed", "calls")  # came in on a DID
    await acd.enqueue("c-claimed", "q", "100")
    ring = next(c for c, e in control.originated() if e == "PJSIP/2001")
    assert ROUTER.owner("c-claimed") == "acd" and ROUTER.holders("c-claimed") == ("calls", "acd")
    assert ROUTER.owner(ring) == "acd"  # claimed before it rang: an unanswered ring's end comes here


async def test_originate_failure_counts_as_a_miss_and_moves_on() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1})], missed_limit=1)
    control.fail_originate.add("PJSIP/2001")
    await log_in(acd, timers, "2001", "2002")
    await acd.enqueue("c1", "q", "100")
    assert agent(acd, "2001").state is AgentState.PAUSED and agent(acd, "2001").reason == "missed"
    assert ringing_endpoints(control) == ["PJSIP/2002"]


# -- call control --------------------------------------------------------------------------------------------


async def connected(acd: AcdService, control: FakeControl, timers: FakeTimers, ext: str = "2001") -> tuple[Any, str]:
    await acd.enqueue("cust", "q", "100")
    channel = await answer(acd, control, f"PJSIP/{ext}")
    return acd.channels[channel].call, channel


async def test_hold_and_unhold_move_the_customer_out_of_the_bridge_and_back() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1})])
    await log_in(acd, timers, "2001")
    call, _ = await connected(acd, control, timers)
    alice = agent(acd, "2001")
    await acd.hold(alice.user_id)
    assert call.state is CallState.HELD
    assert ("remove_from_bridge", call.bridge_id, "cust") in control.log
    assert ("start_moh", "cust", "default") in control.log
    await acd.unhold(alice.user_id)
    assert call.state is CallState.CONNECTED and control.log[-1] == ("add_to_bridge", call.bridge_id, "cust")
    with pytest.raises(ActionRefused):
        await acd.hold(agent(acd, "2002").user_id)  # Bob has no call: he cannot act on Alice's


async def test_blind_transfer_to_an_agent_and_to_a_queue() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1}), queue("other", {"2003": 1})])
    await log_in(acd, timers, "2001", "2002", "2003")
    call, first_leg = await connected(acd, control, timers)
    await acd.transfer(agent(acd, "2001").user_id, "blind", "agent", "2002")
    assert ("hangup", first_leg) in [c[:2] for c in control.log if c[0] == "hangup"]
    assert agent(acd, "2001").state is AgentState.READY  # wrap-up 0
    assert ringing_endpoints(control)[-1] == "PJSIP/2002"
    await answer(acd, control, "PJSIP/2002")
    assert call.agent is agent(acd, "2002") and call.state is CallState.CONNECTED
    await acd.transfer(agent(acd, "2002").user_id, "blind", "queue", "other")
    moved = acd.channels["cust"].call
    assert moved.queue == "other" and moved.parent_id == call.record_id
    assert ringing_endpoints(control)[-1] == "PJSIP/2003"
    figures = {f["name"]: f for f in acd.queue_figures()}
    assert figures["q"]["answered"] == 1 and figures["other"]["offered"] == 1


async def test_attended_transfer_complete_and_cancel() -> None:
    acd, control, timers = make([queue("q", {"2001": 1, "2002": 1, "2003": 1})])
    await log_in(acd, timers, "2001", "2002", "2003")
    call, alice_leg = await connected(acd, control, timers)
    alice, bob = agent(acd, "2001"), agent(acd, "2002")
    await acd.transfer(alice.user_id, "attended", "agent", "2002")
    assert call.state is CallState.CONSULTING and ("start_moh", "cust", "default") in control.log
    with pytest.raises(ActionRefused):
        await acd.transfer_complete(alice.user_id)  # Bob has not answered yet
    bob_leg = await answer(acd, control, "PJSIP/2002")
    assert ("add_to_bridge", call.bridge_id, bob_leg) in control.log
    await acd.transfer_cancel(alice.user_id)
    assert call.state is CallState.CONNECTED and bob.state is AgentState.READY
    assert ("hangup", bob_leg) in [c[:2] for c in control.log if c[0] == "hangup"]
    await acd.transfer(alice.user_id, "attended", "agent", "2003")
    carol_leg = await answer(acd, control, "PJSIP/2003")
    await acd.transfer_complete(alice.user_id)
    assert call.agent is agent(acd, "2003") and call.agent_channel == carol_leg
    assert alice.state is AgentState.READY and agent(acd, "2003").state is AgentState.ON_CALL
    assert ("hangup", alice_leg) in [c[:2] for c in control.log if c[0] == "hangup"]
    await acd.channel_gone("cust")
    assert agent(acd, "2003").state is AgentState.READY


async def test_click_to_call_rings_the_agent_then_dials_the_number() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    alice = agent(acd, "2001")
    await acd.pause(alice.user_id, "break")
    with pytest.raises(ActionRefused):
        await acd.dial(alice.user_id, "call me")
    call = await acd.dial(alice.user_id, "+49 30 1234")
    assert control.originated()[-1][1] == "PJSIP/2001" and alice.state is AgentState.ON_CALL
    await answer(acd, control, "PJSIP/2001")
    assert control.originated()[-1][1] == "PJSIP/+49301234@pstn"
    await acd.channel_entered(control.originated()[-1][0])
    assert call.state is CallState.CONNECTED
    await acd.hangup(alice.user_id)
    assert alice.state is AgentState.WRAP_UP
    await timers.advance(15)
    assert alice.state is AgentState.PAUSED and alice.reason == "break"  # back to the pause


async def test_internal_click_to_call_dials_the_extension() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    await acd.dial(agent(acd, "2001").user_id, "2003")
    await answer(acd, control, "PJSIP/2001")
    assert control.originated()[-1][1] == "PJSIP/2003"
    await acd.channel_gone(control.originated()[-1][0], 17)  # busy
    assert agent(acd, "2001").state is AgentState.WRAP_UP
    assert "busy" in acd.messages[agent(acd, "2001").user_id]


async def test_estimated_wait_uses_handle_times_and_free_agents() -> None:
    acd, _control, timers = make([queue("q", {"2001": 1, "2002": 1})])
    assert acd.estimated_wait("q", 1) is None  # nobody logged in: unknown
    await log_in(acd, timers, "2001", "2002")
    acd.queues["q"].handle_times.extend([100.0, 200.0])
    assert acd.estimated_wait("q", 2) == 0  # two free agents
    await acd.pause(agent(acd, "2002").user_id, "break")
    assert acd.estimated_wait("q", 3) == 2 * 150.0  # one free, one staffed: 2 ahead of the free one


async def test_announcement_says_position_and_wait() -> None:
    acd, control, timers = make([queue("q", {"2001": 1}, announce_every=20)])
    await log_in(acd, timers, "2001")
    await acd.pause(agent(acd, "2001").user_id, "break")
    await acd.enqueue("c1", "q", "100")
    await acd.enqueue("c2", "q", "200")
    await timers.advance(5)
    plays = {c[0]: c[1] for c in control.calls_of("play")}
    assert plays["c2"][:2] == ["sound:queue-position", "number:2"]
    assert plays["c2"][-1] == "sound:queue-callback-offer"


def test_day_figures_and_wallboard_formulas() -> None:
    acd, _control, _timers = make([queue("q", {"2001": 1}, service_level=20)])
    acd.queues["q"].figures = DayFigures(offered=10, answered=6, answered_in_sl=3, abandoned=2, overflowed=2,
                                         wait_total=60.0, talk_total=600.0, talked=5)
    [row] = acd.queue_figures()
    assert row["service_level"] == 30.0  # 3 of the 10 that left the queue were answered within 20 s
    assert (row["avg_wait"], row["avg_talk"]) == (10.0, 120.0)


async def test_a_holding_bridge_left_on_an_adopted_asterisk_is_used_as_it_is() -> None:
    acd, control, _timers = make([queue("q", {"2001": 1})])

    async def exists(bridge_id: str, kind: str) -> None:
        raise AriError("POST", f"/bridges/{bridge_id}", 409, f"Bridge with id '{bridge_id}' already exists")
    control.create_bridge = exists  # type: ignore[method-assign]
    call = await acd.enqueue("cust-1", "q", "+4930123")
    assert call is not None and call.parked
    assert ("bridge_moh", "acd-hold-q", "default") in control.log
    assert ("add_to_bridge", "acd-hold-q", "cust-1") in control.log


# -- the bus: what the ACD tells other features, and what it does when asked ---------------------------------


async def test_a_queue_call_tells_the_bus_each_step_in_order() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    seen: list[tuple[Any, ...]] = []

    def bridge_gone(call: AcdCall) -> bool:
        return ("destroy_bridge", f"acd-call-{call.record_id}") in control.log

    acd.bus.subscribe(CallQueued, lambda e: seen.append(("queued", e.call.number)))
    acd.bus.subscribe(CallOffered, lambda e: seen.append(("offered", e.agent.extension)))
    # Connected once both parties are in the call's bridge, before a hold or a transfer waiting on it.
    acd.bus.subscribe(CallConnected, lambda e: seen.append((
        "connected", e.bridged, e.campaign, ("add_to_bridge", f"acd-call-{e.call.record_id}", "cust-1") in control.log,
        e.call.linking is not None and not e.call.linking.is_set())))
    # Ending before the channels and the bridge go, ended after them.
    acd.bus.subscribe(CallEnding, lambda e: seen.append(("ending", bridge_gone(e.call))))
    acd.bus.subscribe(CallEnded, lambda e: seen.append(("ended", e.outcome, e.campaign, bridge_gone(e.call))))
    acd.bus.subscribe(CallWrappedUp, lambda e: seen.append(("wrapped up", e.code, e.campaign)))
    await acd.enqueue("cust-1", "q", "+4930123")
    await answer(acd, control, "PJSIP/2001")
    await acd.channel_gone("cust-1")
    await acd.wrapup(agent(acd, "2001").user_id, "sale", "")
    assert seen == [("queued", "+4930123"), ("offered", "2001"), ("connected", True, None, True, True),
                    ("ending", False), ("ended", "answered", None, True), ("wrapped up", "sale", None)]


async def test_a_party_gone_while_being_bridged_is_connected_unbridged_and_a_waiting_hang_up_is_abandoned() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    await log_in(acd, timers, "2001")
    seen: list[tuple[Any, ...]] = []
    acd.bus.subscribe(CallConnected, lambda e: seen.append(("connected", e.bridged, e.campaign)))
    acd.bus.subscribe(CallEnded, lambda e: seen.append(("ended", e.outcome, e.campaign)))

    async def gone(bridge_id: str, channel_id: str) -> None:
        if bridge_id.startswith("acd-call-"):
            raise AriNotFound("POST", f"/bridges/{bridge_id}/addChannel", 400, "Channel not found")
    await acd.enqueue("cust-1", "q", "100", campaign="spring")  # a person the dialer reached
    control.add_to_bridge = gone  # type: ignore[method-assign]
    await answer(acd, control, "PJSIP/2001")
    await acd.channel_gone("cust-1")
    await acd.pause(agent(acd, "2001").user_id, "break")
    await acd.enqueue("cust-2", "q", "200")
    await acd.channel_gone("cust-2")
    assert seen == [("connected", False, "spring"), ("ended", "answered", "spring"), ("ended", "abandoned", None)]


async def test_agent_state_changes_reach_the_bus_in_order_after_the_step() -> None:
    acd, control, timers = make([queue("q", {"2001": 1})])
    changes: list[tuple[str, AgentState, AgentState, str]] = []
    acd.bus.subscribe(AgentStateChanged, lambda e: changes.append((e.agent.extension, e.previous, e.state, e.detail)))
    await log_in(acd, timers, "2001")
    await acd.enqueue("cust-1", "q", "100")
    await answer(acd, control, "PJSIP/2001")
    await asyncio.sleep(0)
    assert [(p, s) for _, p, s, _ in changes] == [(AgentState.LOGGED_OUT, AgentState.READY),
                                                  (AgentState.READY, AgentState.RINGING),
                                                  (AgentState.RINGING, AgentState.ON_CALL)]
    assert changes[0] == ("2001", AgentState.LOGGED_OUT, AgentState.READY, "login")


async def test_the_acd_serves_queue_entry_and_the_login_code() -> None:
    acd, control, _timers = make([queue("q", {"2001": 1})])
    assert await acd.bus.ask(EnterQueue("cust-1", "q", "+4930123", "Grace", "555", answered=False, priority=5))
    call = acd.channels["cust-1"].call
    assert (call.number, call.name, call.did, call.priority) == ("+4930123", "Grace", "555", 5)
    assert ("answer", "cust-1") in control.log
    assert not await acd.bus.ask(EnterQueue("cust-2", "nope", "100"))
    assert await acd.bus.ask(ToggleAgentLogin("2001")) == "agent-loginok"
    assert agent(acd, "2001").logged_in
    assert await acd.bus.ask(ToggleAgentLogin("2001")) == "agent-alreadyon"  # ringing for cust-1: stays
    assert await acd.bus.ask(ToggleAgentLogin("2999")) is None


async def test_overflow_to_an_ivr_flow_asks_the_ivr() -> None:
    acd, control, _timers = make([queue("q", {"2001": 1}, overflow="ivr:menu")])
    asked: list[StartIvr] = []
    loaded = {"menu": True}

    async def start(request: StartIvr) -> bool:
        asked.append(request)
        return loaded.get(request.flow, False)
    acd.bus.serve(StartIvr, start)
    await acd.enqueue("cust-1", "q", "+4930123", did="555")
    assert asked == [StartIvr("cust-1", "menu", "+4930123", "555")]
    assert "cust-1" not in acd.channels and not control.calls_of("hangup")
    loaded.clear()  # the flow was unloaded meanwhile: the caller is hung up
    await acd.enqueue("cust-2", "q", "200")
    assert ("cust-2",) in [c[:1] for c in control.calls_of("hangup")]
