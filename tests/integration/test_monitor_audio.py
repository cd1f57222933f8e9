"""Who hears whom while a supervisor monitors, proved with audio: the caller sends 500 Hz, the agent
1000 Hz, the supervisor 2000 Hz; in each mode the RTP Asterisk sends to each party's phone is taken
off the loopback interface and Goertzel filters measure the tones in it. (A snoop on a party's
channel would not do: it hears the channel before a whisper is mixed in.)"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import AgentFactory
from tests.integration.test_monitor import nothing_left
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System
from tests.support.tones import RtpCapture, goertzel_levels, heard, tone_pcap

# What reaches each party's ears does not depend on the database: this runs in the SQLite pass only
# (the PostgreSQL pass runs every test that stores or reads records; make test stays under 20 minutes).
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("CALLCENTER_TEST_DB", "sqlite") == "postgresql",
                                 reason="audio only: checked in the SQLite pass")]

CALLER, AGENT, SUPERVISOR = 500.0, 1000.0, 2000.0
TONES = (CALLER, AGENT, SUPERVISOR)


async def what_each_hears(capture: RtpCapture, ports: dict[str, int]) -> dict[str, dict[float, float]]:
    """The tone levels (dB) in what each party receives over the next 1.5 s."""
    start = time.monotonic()
    await asyncio.sleep(1.5)
    end = time.monotonic()
    return {party: goertzel_levels(capture.heard_by(port, start, end), 8000, TONES) for party, port in ports.items()}


async def test_silent_whisper_three_way_and_back_to_silent_by_ear(fresh_system: System, agent: AgentFactory,
                                                                  tmp_path: Path) -> None:
    base = random.randrange(1, 0x0FFFFFFF) << 4
    ssrcs = {freq: base + n for n, freq in enumerate(TONES)}
    pcaps = {freq: str(tone_pcap(tmp_path / f"{int(freq)}.pcap", freq, seconds=60, ssrc=ssrcs[freq]))
             for freq in TONES}
    await agent("2002", audio_pcap=pcaps[AGENT])
    sam = PanelClient(fresh_system.web_url)
    await sam.login("2005", fresh_system.panel_password("2005"), page="/wallboard")
    with RtpCapture() as capture:
        caller = sipp.caller(fresh_system.sip_port, "1200", caller="0301110000", audio_pcap=pcaps[CALLER],
                             hangup_after_ms=13000)
        await caller.start()
        supervisor = sipp.caller(fresh_system.sip_port, "#442002", user="2005",
                                 password=fresh_system.password("2005"), audio_pcap=pcaps[SUPERVISOR],
                                 wait_bye_ms=60000)
        deadline = time.monotonic() + 10
        while not (await sam.get("/api/wallboard"))[1].get("live_calls"):
            assert time.monotonic() < deadline, "the caller did not reach agent 2002"
            await asyncio.sleep(0.2)
        await supervisor.start()
        deadline = time.monotonic() + 10
        while ((await sam.get("/api/supervisor/monitor"))[1].get("session") or {}).get("state") != "active":
            assert time.monotonic() < deadline, "monitoring did not start"
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        ports = {"caller": capture.port_of(CALLER, ssrcs[CALLER]), "agent": capture.port_of(AGENT, ssrcs[AGENT]),
                 "supervisor": capture.port_of(SUPERVISOR, ssrcs[SUPERVISOR])}

        async def mode(name: str) -> None:
            status, body = await sam.post("/api/supervisor/action",
                                          {"action": "monitor_mode", "params": {"mode": name}})
            assert status == 200, body
            await asyncio.sleep(0.5)

        results: dict[str, dict[str, dict[float, float]]] = {}
        results["silent"] = await what_each_hears(capture, ports)
        await mode("whisper")
        results["whisper"] = await what_each_hears(capture, ports)
        await mode("barge")
        results["barge"] = await what_each_hears(capture, ports)
        await mode("silent")
        results["again"] = await what_each_hears(capture, ports)
    await sam.close()

    def hears(phase: str, party: str) -> set[float]:
        return {f for f in TONES if heard(results[phase][party], f)}

    report: dict[str, Any] = {p: {party: {f: round(v, 1) for f, v in lv.items()} for party, lv in r.items()}
                              for p, r in results.items()}
    print("levels (dB):", report)  # shown with -s: the figures behind the assertions
    # The supervisor always hears both sides; the parties always hear each other.
    for phase in results:
        assert {CALLER, AGENT} <= hears(phase, "supervisor"), report
        assert AGENT in hears(phase, "caller") and CALLER in hears(phase, "agent"), report
    assert SUPERVISOR not in hears("silent", "caller") | hears("silent", "agent"), report
    assert SUPERVISOR in hears("whisper", "agent") and SUPERVISOR not in hears("whisper", "caller"), report
    assert SUPERVISOR in hears("barge", "agent") and SUPERVISOR in hears("barge", "caller"), report
    assert SUPERVISOR not in hears("again", "caller") | hears("again", "agent"), report
    # The caller hangs up; the supervisor is let go; nothing stays behind.
    assert (await caller.wait(40)).ok, "the caller's call was disturbed"
    assert (await supervisor.wait(20)).ok
    nothing_left(fresh_system)
