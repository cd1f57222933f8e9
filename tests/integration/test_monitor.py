"""Supervisor monitoring end to end: #44 + extension from a sipp supervisor phone, modes by keypad
and by the panel, the panel's "ring my phone" start, permission groups and the audit; every test
ends with no snoop channel and no monitoring bridge left in Asterisk. Audio proof (who hears whom)
is in test_monitor_audio.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callcenter.db.models import MonitorEvent, MonitorSession
from tests.integration.conftest import AgentFactory, PhoneFactory
from tests.integration.test_acd import AriObserver
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System

pytestmark = pytest.mark.integration


def now() -> datetime:
    return datetime.now(UTC)


def sessions_since(system: System, since: datetime, count: int, done: Callable[[MonitorSession], bool],
                   timeout: float = 15) -> list[tuple[MonitorSession, list[tuple[str, str]]]]:
    deadline = time.monotonic() + timeout
    while True:
        with system.db.session() as session:
            rows = list(session.scalars(select(MonitorSession).where(MonitorSession.started_at >= since)
                                        .order_by(MonitorSession.started_at)))
            if len([r for r in rows if done(r)]) >= count or time.monotonic() > deadline:
                assert len([r for r in rows if done(r)]) >= count, [(r.agent, r.outcome) for r in rows]
                return [(r, [(e.mode, e.by) for e in session.scalars(
                    select(MonitorEvent).where(MonitorEvent.session_id == r.id).order_by(MonitorEvent.id))])
                    for r in rows]
        time.sleep(0.1)


def nothing_left(system: System, timeout: float = 10) -> None:
    """No snoop channel and no monitoring bridge stays behind in Asterisk."""
    deadline = time.monotonic() + timeout
    while True:
        channels = system.asterisk("core show channels concise")
        bridges = system.asterisk("bridge show all")
        if ("Snoop/" not in channels and "mon-" not in bridges) or time.monotonic() > deadline:
            assert "Snoop/" not in channels, channels
            assert "mon-" not in bridges, bridges
            return
        time.sleep(0.2)


def supervisor_call(system: System, number: str, **kwargs: object) -> sipp.Sipp:
    return sipp.caller(system.sip_port, number, user="2005", password=system.password("2005"), **kwargs)


async def test_denied_and_no_call_play_their_message_and_leave_the_call_alone(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    since = now()
    before = fresh_system.cdr_count()
    # Bob is on a call (a DID routed to his extension) while 2001 tries to listen in.
    call = sipp.caller(fresh_system.sip_port, "1001", caller="0302220000", hangup_after_ms=6000)
    await call.start()
    await asyncio.sleep(1.0)
    async with AriObserver(fresh_system) as observer:
        denied, no_call, outside = await asyncio.gather(
            # 2001 is in no monitoring group.
            sipp.caller(fresh_system.sip_port, "#442002", user="2001", password=fresh_system.password("2001"),
                        wait_bye_ms=15000).run(30),
            # 2005 may monitor 2003, but 2003 has no call.
            supervisor_call(fresh_system, "#442003", wait_bye_ms=15000).run(30),
            # 2005 may not monitor 2004 (not in the group's agents).
            supervisor_call(fresh_system, "#442004", wait_bye_ms=15000).run(30))
        assert denied.ok and no_call.ok and outside.ok, (denied.output, no_call.output, outside.output)
        played = [e["playback"]["media_uri"] for e in observer.events if e["type"] == "PlaybackFinished"]
    assert sum("monitor-denied" in m for m in played) == 2 and sum("monitor-no-call" in m for m in played) == 1
    # Bob's call went on undisturbed to its end.
    assert (await call.wait(30)).ok
    bob = [c for c in fresh_system.wait_cdrs(before, 4) if c.src == "0302220000"]
    assert len(bob) == 1 and bob[0].disposition == "ANSWERED" and bob[0].billsec >= 5
    rows = sessions_since(fresh_system, since, 3, lambda r: r.outcome != "")
    assert sorted((r.supervisor, r.agent, r.outcome, events) for r, events in rows) == [
        ("2001", "2002", "denied", []), ("2005", "2003", "no_call", []), ("2005", "2004", "denied", [])]
    nothing_left(fresh_system)


async def test_keypad_switches_modes_and_the_session_ends_with_the_agents_call(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    since = now()
    # A call users dial to each other (bridged by the dialplan, not the ACD).
    call = sipp.caller(fresh_system.sip_port, "2002", user="2001", password=fresh_system.password("2001"),
                       hangup_after_ms=7500)
    await call.start()
    await asyncio.sleep(1.0)
    supervisor = supervisor_call(fresh_system, "#442002", keys=[(1500, "5"), (1500, "6"), (1500, "4")],
                                 wait_bye_ms=20000)
    await supervisor.start()
    assert (await call.wait(30)).ok
    result = await supervisor.wait(30)
    assert result.ok, result.output  # the supervisor was hung up when the agent's call ended
    [(row, events)] = sessions_since(fresh_system, since, 1, lambda r: r.outcome != "")
    assert (row.supervisor, row.agent, row.origin, row.outcome, row.customer) == (
        "2005", "2002", "feature", "call_ended", "2001")
    assert events == [("silent", "keypad"), ("whisper", "keypad"), ("barge", "keypad"), ("silent", "keypad")]
    nothing_left(fresh_system)


async def test_panel_rings_the_supervisor_switches_and_stops(fresh_system: System, agent: AgentFactory,
                                                            phone: PhoneFactory) -> None:
    await agent("2003")
    await phone("2005", "answer")
    sam = PanelClient(fresh_system.web_url)
    await sam.login("2005", fresh_system.panel_password("2005"), page="/wallboard")
    since = now()
    call = sipp.caller(fresh_system.sip_port, "1205", caller="0305550177", hangup_after_ms=9000)
    await call.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            status, board = await sam.get("/api/wallboard")
            live = [c for c in board.get("live_calls", []) if c["agent"] == "2003"]
            if live:
                break
            assert time.monotonic() < deadline, board.get("live_calls")
            await asyncio.sleep(0.2)
        assert live[0]["number"] == "0305550177" and live[0]["queue"] == "recorded"

        async def act(action: str, **params: str) -> None:
            status, body = await sam.post("/api/supervisor/action", {"action": action, "params": params})
            assert status == 200, body

        await act("monitor_start", extension="2003", mode="whisper")
        deadline = time.monotonic() + 10
        while True:
            status, view = await sam.get("/api/supervisor/monitor")
            if (view.get("session") or {}).get("state") == "active":
                break
            assert time.monotonic() < deadline, view
            await asyncio.sleep(0.2)
        assert view["session"]["mode"] == "whisper" and view["session"]["agent"] == "2003"
        status, board = await sam.get("/api/wallboard")
        assert [c["monitored_by"] for c in board["live_calls"] if c["agent"] == "2003"] == [["Supervisor Sam"]]
        await act("monitor_mode", mode="barge")
        await act("monitor_stop")
        status, body = await sam.post("/api/supervisor/action", {"action": "monitor_start",
                                                                 "params": {"extension": "2004", "mode": "silent"}})
        assert status == 400 and "may not monitor" in str(body)
    finally:
        await call.wait(30)
        await sam.close()
    rows = sessions_since(fresh_system, since, 2, lambda r: r.outcome != "")
    [(row, events)] = [r for r in rows if r[0].outcome == "stopped"]
    assert (row.agent, row.customer) == ("2003", "0305550177")
    assert [mode for mode, _by in events] == ["whisper", "barge"]
    nothing_left(fresh_system)
