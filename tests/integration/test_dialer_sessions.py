"""The dialer with agents who pick up by hand (DIA-6, issue 13), on the real Asterisk: sipp phones that
answer after 3 s and after 0.3 s, a sipp "PSTN" behind the trunk answering as people.

Session mode: each agent's phone is called once when the campaign starts; every person is then put
through to an open line within 2 s, however slowly the phone answers; a line hung up from the phone's
side logs its agent out with a message. Ring per call: a person whose first agent's phone is too slow
goes to the next free agent in time, and the slow offer counts as that agent's miss."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.models import AcdAttempt, DialerAttempt
from tests.integration.conftest import AgentFactory
from tests.integration.test_dialer import campaign_attempts, campaign_contacts, import_list, wait_for, work_calls
from tests.support import sipp
from tests.support.system import System

pytestmark = pytest.mark.integration


def channels_of(system: System, extension: str) -> list[str]:
    """Names of the Asterisk channels of a phone now."""
    lines = system.asterisk("core show channels concise").splitlines()
    return [line.split("!")[0] for line in lines if line.startswith(f"PJSIP/{extension}-")]


async def test_session_mode_puts_people_through_to_slow_phones_within_two_seconds(
        fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    system = fresh_system
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, sipp.AUDIO_PCAP, sipp.AUDIO_PCAP)
    await pstn.start()
    people = [f"+482211400{n}1" for n in range(6)]  # last digit 1: a person answers
    import_list(system, "summer", tmp_path, [(number, f"Person {i}") for i, number in enumerate(people)])
    slow, quick = await agent("2002", ring_ms=3000), await agent("2003", ring_ms=300)
    stop = asyncio.Event()
    workers = [asyncio.create_task(work_calls(c, stop)) for c in (slow, quick)]
    try:
        assert system.cli("dialer", "start", "summer").returncode == 0
        for client in (slow, quick):
            view = await client.wait_view(lambda v: (v.get("session") or {}).get("state") == "connected", 15,
                                          "the session line open")
            assert view["session"]["label"] == "campaign summer"
        opened = {ext: (await c.view())["session"]["since"] for ext, c in (("2002", slow), ("2003", quick))}

        def all_done() -> bool:
            return (all(c.status == "done" for c in campaign_contacts(system, "summer").values())
                    and all(a.ended_at for a in campaign_attempts(system, "summer")))
        await wait_for("every person reached", all_done, 60)
        # The same two lines served every call: the phones were not rung again.
        for ext, client in (("2002", slow), ("2003", quick)):
            view = await client.view()
            assert view["session"] is not None and view["session"]["since"] == opened[ext], ext
            assert len(channels_of(system, ext)) == 1, channels_of(system, ext)
    finally:
        stop.set()
        handled = sum(await asyncio.gather(*workers))
        system.cli("dialer", "stop", "summer")
        await pstn.stop()
    made = campaign_attempts(system, "summer")
    assert {a.number for a in made} == set(people) and handled == len(made)
    for a in made:
        assert a.outcome == "human" and a.abandoned_at is None, (a.number, a.outcome)
        assert a.human_at is not None and a.connected_at is not None
        assert (a.connected_at - a.human_at).total_seconds() <= 2.0, a.number
    ids = {(await c.view())["agent"]["id"] for c in (slow, quick)}
    assert {a.agent_id for a in made} == ids, "both agents took calls"
    # Stopping the campaign hangs the lines up; the agents stay logged in, ready, without a message.
    for client, ext in ((slow, "2002"), (quick, "2003")):
        view = await client.wait_view(lambda v: v.get("session") is None, 10, "the line closed")
        assert view["agent"]["state"] == "ready" and not view.get("message")
        await wait_for(f"{ext}'s line hung up", lambda ext=ext: not channels_of(system, ext), 10)


async def test_a_session_line_hung_up_at_the_phone_logs_the_agent_out_with_a_message(
        fresh_system: System, agent: AgentFactory) -> None:
    system = fresh_system
    client = await agent("2003", ring_ms=300)
    try:
        assert system.cli("dialer", "start", "summer").returncode == 0
        await client.wait_view(lambda v: (v.get("session") or {}).get("state") == "connected", 15, "the line")
        (name,) = channels_of(system, "2003")
        system.asterisk(f"channel request hangup {name}")
        view = await client.wait_view(lambda v: v["agent"]["state"] == "logged_out", 10, "logged out")
        assert view["session"] is None
        assert "logged out" in (view.get("message") or ""), view.get("message")
        # For three dialer ticks: a logged-out agent's phone is not called again.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert (await client.view())["session"] is None, "a logged-out agent's phone is called again"
            await asyncio.sleep(0.5)
    finally:
        system.cli("dialer", "stop", "summer")


async def test_ring_per_call_gives_a_person_to_the_next_agent_when_the_first_phone_is_slow(
        fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    system = fresh_system
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, sipp.AUDIO_PCAP, sipp.AUDIO_PCAP)
    await pstn.start()
    slow = await agent("2002", ring_ms=3000)  # logged in first: the longest idle, offered first
    quick = await agent("2003", ring_ms=300)
    import_list(system, "equinox", tmp_path, [("+48221150001", "Equinox Person")])
    stop = asyncio.Event()
    workers = [asyncio.create_task(work_calls(c, stop)) for c in (slow, quick)]
    try:
        assert system.cli("dialer", "start", "equinox").returncode == 0
        await wait_for("the person reached", lambda: any(a.ended_at for a in campaign_attempts(system, "equinox")),
                       30)
    finally:
        stop.set()
        await asyncio.gather(*workers)
        system.cli("dialer", "stop", "equinox")
        await pstn.stop()
    (made,) = campaign_attempts(system, "equinox")
    assert made.outcome == "human" and made.agent_id == (await quick.view())["agent"]["id"]
    assert made.human_at is not None and made.connected_at is not None
    assert (made.connected_at - made.human_at).total_seconds() <= 2.0
    with system.db.session() as session:
        offers = list(session.scalars(select(AcdAttempt).where(AcdAttempt.call_id == made.acd_call_id)
                                      .order_by(AcdAttempt.seq)))
        cause = session.scalar(select(DialerAttempt.hangup_cause).where(DialerAttempt.id == made.id))
    assert [(o.extension, o.outcome) for o in offers] == [("2002", "overtaken"), ("2003", "answered")]
    view = await slow.view()
    assert view["agent"]["missed_in_row"] == 1
    assert cause is not None, "a connected attempt keeps its hang-up cause"


async def test_a_progressive_campaign_over_its_abandon_target_dials_one_call_per_two_free_agents(
        fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    """A slow phone alone loses a person (an abandon: the campaign is over its 3% target) and logs out;
    then with two free agents the campaign places one call at a time, not two, and logs why."""
    system = fresh_system
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, sipp.AUDIO_PCAP, sipp.AUDIO_PCAP)
    await pstn.start()
    numbers = [f"+4822116{n:03d}1" for n in range(1, 5)]
    stop = asyncio.Event()
    workers: list[asyncio.Task[int]] = []
    since = system.log_size()
    try:
        slow = await agent("2006", ring_ms=3000)
        import_list(system, "solstice", tmp_path, [("+48221160001", "Lost Person")])
        assert system.cli("dialer", "start", "solstice", "--confirm").returncode == 0
        await wait_for("the abandon", lambda: any(a.abandoned_at and a.ended_at for a in
                                                   campaign_attempts(system, "solstice")), 30)
        await system.wait_log("dialer: campaign solstice: abandon rate", since, 10)
        await slow.wait_view(lambda v: v["call"] is None, 10, "no call")
        await slow.act("logout")
        clients = [await agent(ext, ring_ms=300) for ext in ("2003", "2004")]
        workers = [asyncio.create_task(work_calls(c, stop)) for c in clients]
        (tmp_path / "more").mkdir()
        import_list(system, "solstice", tmp_path / "more", [(n, f"Person {n[-4:]}") for n in numbers])

        def reached() -> bool:
            made = [a for a in campaign_attempts(system, "solstice") if a.number in numbers]
            return len(made) == len(numbers) and all(a.ended_at for a in made)
        await wait_for("the next people reached", reached, 60)
    finally:
        stop.set()
        await asyncio.gather(*workers)
        system.cli("dialer", "stop", "solstice")
        await pstn.stop()
    made = [a for a in campaign_attempts(system, "solstice") if a.number in numbers]
    assert all(a.outcome == "human" for a in made), [(a.number, a.outcome) for a in made]
    # Never two people called at once: each call was placed after the previous one reached an agent.
    spans = sorted((a.placed_at, a.connected_at or a.ended_at) for a in made)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end is not None and second_start >= first_end, spans
