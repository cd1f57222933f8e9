"""Agent sessions (DIA-6) and the offers of people the dialer reached, without Asterisk: the real ACD and
dialer over a fake ARI and clock (the world of test_dialer_service.py). The real thing is
tests/integration/test_dialer_sessions.py."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from callcenter.acd.model import AgentState
from callcenter.acd.sessions import BEEP
from tests.unit.test_dialer_service import SPEC, World, a_person_waits, template, world

__all__ = ["template", "world"]  # the fixtures


def session_mode(world: World) -> None:
    world.dialer.campaigns["spring"].spec = dataclasses.replace(SPEC, agent_line="session", session_music="default")


def session_legs(world: World) -> dict[str, str]:
    """Endpoint -> channel of every session leg the ACD called."""
    return {endpoint: cid for cid, endpoint in world.control.originated() if cid.startswith("acd-session-")}


async def open_line(world: World, extension: str) -> str:
    """The dialer calls the agent's phone for the campaign; the agent answers. The leg's channel."""
    await world.dialer.campaign_loop.keep_sessions()
    leg = session_legs(world)[f"PJSIP/{extension}"]
    await world.acd.channel_entered(leg)
    return leg


async def test_a_campaign_login_calls_the_phone_once_and_keeps_the_line(world: World) -> None:
    session_mode(world)
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    await world.dialer.campaign_loop.keep_sessions()
    (leg,) = session_legs(world).values()
    # Being called: not free for the campaign's people, and the panel says so.
    runtime = world.dialer.campaigns["spring"]
    assert world.dialer.snapshot(runtime, world.dialer.clock()).ready == 0
    session = world.acd.session_of(agent.user_id)
    assert session is not None and not session.up and session.label == "campaign spring"
    await world.dialer.campaign_loop.keep_sessions()
    assert len(session_legs(world)) == 1, "one call to the phone, not one per tick"
    await world.acd.channel_entered(leg)
    bridge = f"acd-agent-{agent.user_id}"
    assert ("create_bridge", bridge, "mixing,dtmf_events") in world.control.log
    assert ("add_to_bridge", bridge, leg) in world.control.log
    assert ("bridge_moh", bridge, "default") in world.control.log
    assert world.dialer.snapshot(runtime, world.dialer.clock()).ready == 1


async def test_a_person_is_put_through_at_once_with_a_beep_and_the_line_stays(world: World) -> None:
    session_mode(world)
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    leg = await open_line(world, "2001")
    rung_before = world.rung()
    channel = await a_person_waits(world)
    assert world.rung() == rung_before, "no phone rings: the person joins the agent's open line"
    attempt = world.attempt("+48221110001")
    assert attempt.connected_at == attempt.human_at and attempt.agent_id == agent.user_id
    (call,) = world.acd.calls.values()
    assert ("add_to_bridge", call.bridge_id, channel) in world.control.log
    assert ("remove_from_bridge", f"acd-agent-{agent.user_id}", leg) in world.control.log
    assert ("add_to_bridge", call.bridge_id, leg) in world.control.log
    assert [p[:2] for p in world.control.calls_of("play")] == [(leg, BEEP)]
    assert agent.state is AgentState.ON_CALL
    # The agent ends the call with the panel: the customer goes, the line goes back to the agent's bridge.
    back = len(world.control.log)
    await world.acd.hangup(agent.user_id)
    after = world.control.log[back:]
    assert ("hangup", channel) in [e[:2] for e in after] and ("hangup", leg) not in [e[:2] for e in after]
    assert ("add_to_bridge", f"acd-agent-{agent.user_id}", leg) in after
    assert world.acd.session_of(agent.user_id) is not None
    await world.acd.wrapup(agent.user_id, "sale", "")
    assert agent.state is AgentState.READY and world.acd.available(agent)


async def test_a_session_campaign_waits_for_session_agents_only(world: World) -> None:
    """Agent 2002 has no line yet (their phone is being called): the person is not rung to them."""
    session_mode(world)
    for ext in ("2001", "2002"):
        await world.acd.login(world.agents[ext].user_id)
    await world.dialer.campaign_loop.keep_sessions()
    await world.acd.channel_entered(session_legs(world)["PJSIP/2001"])
    await a_person_waits(world)
    assert [cid for cid in world.rung() if not cid.startswith("acd-session-")] == []
    assert world.agents["2001"].state is AgentState.ON_CALL
    assert world.agents["2002"].state is AgentState.READY


async def test_a_dropped_line_logs_the_agent_out_with_a_message_after_their_call(world: World) -> None:
    session_mode(world)
    queue = world.acd.queues["out"]
    queue.spec = dataclasses.replace(queue.spec, wrapup=30)
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    leg = await open_line(world, "2001")
    await a_person_waits(world)
    await world.acd.channel_gone(leg)  # StasisEnd: the agent hung up their phone
    await world.acd.channel_gone(leg, 16)  # and ChannelDestroyed
    assert not world.acd.calls, "the call ended with the line"
    assert agent.state is AgentState.WRAP_UP, "the agent still wraps up the call"
    assert "logged out" in world.acd.messages[agent.user_id]
    await world.acd.wrapup(agent.user_id, "sale", "")
    assert agent.state is AgentState.LOGGED_OUT and "logged out" in world.acd.messages[agent.user_id]


async def test_a_phone_that_does_not_take_the_session_call_is_never_left_ready(world: World) -> None:
    session_mode(world)
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    await world.dialer.campaign_loop.keep_sessions()
    leg = session_legs(world)["PJSIP/2001"]
    await world.acd.channel_gone(leg, 19)  # no answer
    assert agent.state is AgentState.LOGGED_OUT
    assert world.acd.messages[agent.user_id].startswith("Your phone did not answer the call for campaign spring")
    await world.dialer.campaign_loop.keep_sessions()
    assert len(session_legs(world)) == 1, "a logged-out agent is not called again"


async def test_stopping_the_campaign_or_logging_out_hangs_the_line_up(world: World) -> None:
    session_mode(world)
    first, second = world.agents["2001"], world.agents["2002"]
    for agent in (first, second):
        await world.acd.login(agent.user_id)
    legs = {ext: await open_line(world, ext) for ext in ("2001", "2002")}
    await world.acd.logout(first.user_id)
    assert ("hangup", legs["2001"]) in [e[:2] for e in world.control.log]
    assert world.acd.session_of(first.user_id) is None
    await world.dialer.stop_campaign("spring", by="test")
    await world.dialer.campaign_loop.keep_sessions()
    assert ("hangup", legs["2002"]) in [e[:2] for e in world.control.log]
    # Our own hang-up is not a dropped line: the agent stays logged in, with no message.
    await world.acd.channel_gone(legs["2002"], 16)
    assert second.state is AgentState.READY and second.user_id not in world.acd.messages


async def test_ring_mode_offers_a_waiting_person_to_the_next_free_agent_in_time(world: World) -> None:
    """The person rings the slow agent 2001; 2002 becomes free 0.5 s later and is offered them too; 2002
    answers first and the person is theirs. A call ringing an agent counts once for the pacer."""
    agent_a, agent_b = world.agents["2001"], world.agents["2002"]
    await world.acd.login(agent_a.user_id)
    await a_person_waits(world)
    (first_leg,) = world.rung()
    assert first_leg.startswith("acd-") and not first_leg.startswith("acd-session-")
    runtime = world.dialer.campaigns["spring"]
    snap = world.dialer.snapshot(runtime, world.dialer.clock())
    assert (snap.ready, len(snap.busy), snap.waiting) == (0, 1, 0)
    await world.timers.advance(0.5)
    await world.acd.login(agent_b.user_id)
    second_leg = next(cid for cid in world.rung() if cid != first_leg)
    await world.acd.channel_entered(second_leg)
    assert agent_b.state is AgentState.ON_CALL and agent_a.state is AgentState.READY
    assert ("hangup", first_leg) in [e[:2] for e in world.control.log]
    assert agent_a.missed_in_row == 1, "the offer was too slow: a miss"


async def test_a_waiting_person_is_offered_to_a_second_phone_once_the_first_rang_half_a_second(
        world: World) -> None:
    agent_a, agent_b = world.agents["2001"], world.agents["2002"]
    await world.acd.login(agent_a.user_id)
    await world.acd.login(agent_b.user_id)
    agent_b.idle_since = world.timers.now()  # 2001 is the longest idle: the first offer is theirs
    await a_person_waits(world)
    assert len(world.rung()) == 1 and agent_a.state is AgentState.RINGING
    await world.timers.advance(0.4)
    assert len(world.rung()) == 1
    await world.timers.advance(0.1)
    assert len(world.rung()) == 2 and agent_b.state is AgentState.RINGING


async def test_no_second_ring_when_too_little_of_the_two_seconds_is_left(world: World) -> None:
    agent_a, agent_b = world.agents["2001"], world.agents["2002"]
    await world.acd.login(agent_a.user_id)
    await a_person_waits(world)
    await world.timers.advance(1.5)
    await world.acd.login(agent_b.user_id)
    assert len(world.rung()) == 1
    await world.timers.advance(0.5)  # the deadline: withdrawn, abandoned
    assert world.attempt("+48221110001").outcome == "abandoned"
    assert agent_a.missed_in_row == 1 and agent_b.missed_in_row == 0


async def test_missing_offers_in_a_row_pauses_the_agent_with_a_reason(world: World) -> None:
    """Withdrawn offers (the 2-second deadline passed while the phone rang) are misses like any other."""
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    for n in range(world.acd.settings.missed_limit):
        deadline = world.timers.now() + timedelta(seconds=2)
        call = await world.acd.enqueue(f"dialer-{n}", "out", f"+4822111000{n}", answered=True, campaign="spring",
                                       connect_by=deadline)
        assert call is not None and agent.state is AgentState.RINGING
        await world.timers.advance(2.0)
        assert await world.acd.withdraw(call.record_id) is call
    assert agent.state is AgentState.PAUSED and agent.reason == "missed"


async def test_a_connected_attempt_keeps_the_hang_up_cause(world: World) -> None:
    session_mode(world)
    agent = world.agents["2001"]
    await world.acd.login(agent.user_id)
    await open_line(world, "2001")
    channel = await a_person_waits(world)
    await world.acd.channel_gone(channel)  # StasisEnd: the customer hung up; the ACD ends the call
    assert world.attempt("+48221110001").outcome == "human"
    await world.dialer.channel_destroyed(channel, 16)  # ChannelDestroyed comes after, with the cause
    assert world.attempt("+48221110001").hangup_cause == 16


async def test_a_progressive_campaign_over_its_abandon_target_slows_down_and_says_why(world: World) -> None:
    """Before: progressive mode had no brake and placed one call per free agent at any abandon rate."""
    runtime = world.dialer.campaigns["spring"]
    runtime.spec = dataclasses.replace(SPEC, mode="progressive")
    for ext in ("2001", "2002"):
        await world.acd.login(world.agents[ext].user_id)
    now = world.dialer.clock()
    for i in range(10):
        runtime.ledger.human_answered(now - 600 + i)
    runtime.ledger.abandoned(now - 300)  # 1 of 11 people: 9.1%, over the 3% target
    await world.pace()
    assert len(world.dialled()) == 1, "two free agents: one call, not two"
    (row,) = world.dialer.status()
    assert row["brake"].startswith("abandon rate 9.1% over target 3%"), row["brake"]
