"""End-to-end calls through a real Asterisk and controller, placed with sipp."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import PhoneFactory
from tests.support import sipp
from tests.support.postgres import Cluster
from tests.support.system import DIAL_TIMEOUT, System, wait_for

pytestmark = pytest.mark.integration

GREETING_SECONDS = 6.77  # sounds/en/welcome.wav as espeak-ng speaks sounds/prompts.toml




def _metric(system: System, name: str) -> float:
    for line in system.get("/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


PLAYBACKS_STARTED = 'callcenter_ari_events_total{type="PlaybackStarted"}'


async def greeting_playing(system: System, started_before: float) -> float:
    """Waits until the controller has started a playback since its count was ``started_before``;
    returns when it saw it (monotonic)."""
    await wait_for(lambda: _metric(system, PLAYBACKS_STARTED) > started_before, 10, "playback started",
                   system.log_tail)
    return time.monotonic()


def test_health_reports_every_part(fresh_system: System) -> None:
    health = fresh_system.health()
    assert health == {"ok": True, "ari": {"ok": True}, "ami": {"ok": True}, "database": {"ok": True}}
    assert "callcenter_ari_connected 1.0" in fresh_system.get("/metrics")


async def test_did_is_answered_by_stasis_plays_greeting_and_hangs_up(fresh_system: System) -> None:
    before = fresh_system.cdr_count()
    played = _metric(fresh_system, 'callcenter_ari_events_total{type="PlaybackFinished"}')
    started = datetime.now(UTC)
    result = await sipp.caller(fresh_system.sip_port, "1000", caller="0049301234567",
                               caller_name="Grace Hopper").run(40)
    assert result.ok, result.output
    # The caller got a BYE from Asterisk after the whole greeting was played.
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert elapsed >= GREETING_SECONDS
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.src, cdr.dst, cdr.dst_name) == ("0049301234567", "1000", "Demo greeting")
    assert cdr.clid == '"Grace Hopper" <0049301234567>'
    assert cdr.src_id == ""  # a PSTN caller, not one of our SIP users
    assert cdr.disposition == "ANSWERED"
    assert cdr.t_cause == "Normal Clearing"
    assert int(GREETING_SECONDS) <= cdr.duration <= int(GREETING_SECONDS) + 1
    assert cdr.billsec in (cdr.duration, cdr.duration - 1)
    assert abs(cdr.calldate - started) < timedelta(seconds=2)
    events = fresh_system.call_events(cdr.linkedid)
    assert events[0] == "CHAN_START" and events[-1] == "LINKEDID_END"
    assert "ANSWER" in events and "APP_START" in events
    # Asterisk reported the greeting's playback finished, and only then the call ended.
    assert _metric(fresh_system, 'callcenter_ari_events_total{type="PlaybackFinished"}') == played + 1
    fresh_system.no_channels_left()


async def test_caller_dtmf_reaches_the_stasis_app(fresh_system: System) -> None:
    metric = 'callcenter_ari_events_total{type="ChannelDtmfReceived"}'
    before = _metric(fresh_system, metric)
    result = await sipp.caller(fresh_system.sip_port, "1000", dtmf="12#", dtmf_after_ms=1000).run(40)
    assert result.ok, result.output
    assert _metric(fresh_system, metric) - before == 3


async def test_user_calls_user_by_extension(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "2002", user="2001",
                               password=fresh_system.password("2001"), hangup_after_ms=2000).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.src_id, cdr.src, cdr.dst, cdr.dst_name) == ("2001", "2001", "2002", "Agent Bob")
    # The endpoint's caller ID counts, not what the phone claims (trust_id_inbound = no).
    assert cdr.clid == '"Agent Alice" <2001>'
    assert cdr.disposition == "ANSWERED"
    assert 2 <= cdr.billsec <= 3 and cdr.duration >= cdr.billsec
    assert "BRIDGE_ENTER" in fresh_system.call_events(cdr.linkedid)


async def test_phone_registration_shows_on_the_status_api(fresh_system: System, phone: PhoneFactory) -> None:
    def state() -> str:
        phones = {p["extension"]: p["state"] for p in json.loads(fresh_system.get("/api/phones"))}
        return str(phones["2003"])

    assert state() == "UNAVAILABLE"
    await phone("2003", "answer")
    deadline = time.monotonic() + 5
    while state() != "NOT_INUSE":
        assert time.monotonic() < deadline, state()
        await asyncio.sleep(0.1)


async def test_busy_phone_gives_busy(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2003", "busy")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "2003", user="2001",
                               password=fresh_system.password("2001"), reject_code=486).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.disposition, cdr.billsec, cdr.t_cause) == ("2003", "BUSY", 0, "User busy")


async def test_unanswered_call_times_out_as_no_answer(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2004", "ring")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "2004", user="2001",
                               password=fresh_system.password("2001"), reject_code=480).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.disposition, cdr.billsec) == ("2004", "NO ANSWER", 0)
    assert DIAL_TIMEOUT <= cdr.duration <= DIAL_TIMEOUT + 1


async def test_caller_who_gives_up_while_ringing_is_no_answer(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2004", "ring")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "2004", user="2001",
                               password=fresh_system.password("2001"), cancel_after_ms=1000).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.disposition, cdr.billsec) == ("NO ANSWER", 0)
    assert cdr.duration <= 2


async def test_unregistered_phone_and_unknown_number_fail(fresh_system: System) -> None:
    before = fresh_system.cdr_count()
    password = fresh_system.password("2001")
    offline = await sipp.caller(fresh_system.sip_port, "2005", user="2001", password=password,
                                reject_code=480).run(30)
    assert offline.ok, offline.output
    unknown = await sipp.caller(fresh_system.sip_port, "7777", user="2001", password=password,
                                reject_code=404).run(30)
    assert unknown.ok, unknown.output
    first, second = fresh_system.wait_cdrs(before, 2)
    assert (first.dst, first.disposition, first.t_cause) == ("2005", "FAILED", "Subscriber absent")
    assert (second.dst, second.disposition, second.t_cause) == ("7777", "FAILED",
                                                                "Unallocated (unassigned) number")


async def test_did_routed_to_an_extension_rings_that_user(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "1001", caller="004930555", hangup_after_ms=1000).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.src, cdr.dst, cdr.dst_name, cdr.disposition) == ("004930555", "1001", "Sales line", "ANSWERED")


async def test_ari_websocket_cut_mid_call_reconnects_and_call_completes(fresh_system: System) -> None:
    before = fresh_system.cdr_count()
    started = _metric(fresh_system, PLAYBACKS_STARTED)
    call = sipp.caller(fresh_system.sip_port, "1000")
    await call.start()
    await greeting_playing(fresh_system, started)  # the socket is cut inside the greeting
    sessions = fresh_system.asterisk("ari show websocket sessions")
    ids = re.findall(r"^([0-9a-f-]{36})\s", sessions, re.MULTILINE)
    assert ids, sessions
    for session_id in ids:
        fresh_system.asterisk(f"ari shutdown websocket session {session_id}")
    result = await call.wait(40)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert cdr.disposition == "ANSWERED" and cdr.duration >= int(GREETING_SECONDS)
    assert "ARI event socket back" in fresh_system.log_tail(200)
    assert fresh_system.health()["ok"]


async def test_controller_killed_mid_call_restarts_adopts_the_call_and_writes_its_cdr(
        fresh_system: System) -> None:
    before = fresh_system.cdr_count()
    started = _metric(fresh_system, PLAYBACKS_STARTED)
    call = sipp.caller(fresh_system.sip_port, "1000", wait_bye_ms=60000)
    await call.start()
    seen = await greeting_playing(fresh_system, started)
    fresh_system.stop(signal.SIGKILL)
    # The call goes on in Asterisk without the controller, and nothing has written its CDR.
    assert "1 active channel" in fresh_system.asterisk("core show channels count")
    assert fresh_system.cdr_count() == before
    restarting = time.monotonic()
    await asyncio.to_thread(fresh_system.start)
    result = await call.wait(60)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert "adopting" in fresh_system.log_tail(200)
    # The new controller started the greeting again for the adopted call (its one playback; it may
    # also see the old one end), then hung up: the call outlasted the restart by the whole greeting.
    assert _metric(fresh_system, PLAYBACKS_STARTED) == 1
    assert cdr.disposition == "ANSWERED" and cdr.duration >= int(restarting - seen + GREETING_SECONDS)


async def test_asterisk_crash_is_restarted_and_the_lost_call_gets_its_cdr(fresh_system: System) -> None:
    before = fresh_system.cdr_count()
    started = _metric(fresh_system, PLAYBACKS_STARTED)
    placed = time.monotonic()
    call = sipp.caller(fresh_system.sip_port, "1000", wait_bye_ms=5000)
    await call.start()
    await greeting_playing(fresh_system, started)
    pid = int(fresh_system.layout.host("run", "asterisk.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    await call.wait(20)  # the caller hears nothing more: its call died with Asterisk
    [cdr] = fresh_system.wait_cdrs(before, timeout=30)
    assert (cdr.dst, cdr.disposition, cdr.t_cause) == ("1000", "ANSWERED", "Asterisk stopped")
    # It ended when the controller saw Asterisk die (within a second of the kill), not at the restart.
    assert cdr.duration <= int(killed - placed + 1)
    deadline = time.monotonic() + 30
    while not fresh_system.health().get("ok"):
        assert time.monotonic() < deadline, fresh_system.log_tail()
        await asyncio.sleep(0.2)
    result = await sipp.caller(fresh_system.sip_port, "1000").run(40)
    assert result.ok, result.output
    assert fresh_system.wait_cdrs(before, 2)[1].disposition == "ANSWERED"


async def test_users_added_from_the_cli_reach_the_running_asterisk(fresh_system: System,
                                                                   phone: PhoneFactory) -> None:
    added = fresh_system.cli("users", "add", "--extension", "2010", "--name", "New Agent",
                             "--sip-password", "newagent-secret", "--password", "panel-secret-1")
    assert added.returncode == 0, added.stderr
    assert "reloads its phones" in added.stdout
    fresh_system.sip_passwords["2010"] = "newagent-secret"
    deadline = time.monotonic() + 10
    while "2010" not in fresh_system.asterisk("pjsip show endpoint 2010") or \
            "Unable to find" in fresh_system.asterisk("pjsip show endpoint 2010"):
        assert time.monotonic() < deadline, fresh_system.log_tail()
        await asyncio.sleep(0.2)
    await phone("2010", "answer")
    before = fresh_system.cdr_count()
    result = await sipp.caller(fresh_system.sip_port, "2010", user="2001",
                               password=fresh_system.password("2001"), hangup_after_ms=500).run(30)
    assert result.ok, result.output
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.dst_name, cdr.disposition) == ("2010", "New Agent", "ANSWERED")
    removed = fresh_system.cli("users", "remove", "2010")
    assert removed.returncode == 0, removed.stderr
    deadline = time.monotonic() + 10
    while "Unable to find" not in fresh_system.asterisk("pjsip show endpoint 2010"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


def test_second_controller_on_the_same_install_is_refused(fresh_system: System) -> None:
    second = fresh_system.cli("run", timeout=30)
    assert second.returncode != 0
    assert "already running" in second.stderr


def test_bad_config_stops_start_up_with_file_line_and_key(fresh_system: System) -> None:
    bad = fresh_system.config.with_name("bad.toml")
    bad.write_text(fresh_system.config.read_text().replace("dial_timeout = 3", 'dial_timeout = "soon"'))
    result = fresh_system.cli("--config", str(bad), "run", timeout=30)
    assert result.returncode == 1
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "dial_timeout" in text)
    assert f"{bad}:{line}: [asterisk] dial_timeout: must be a whole number, got 'soon'" in result.stderr


def test_sigterm_stops_the_controller_and_its_asterisk(fresh_system: System) -> None:
    pid = int(fresh_system.layout.host("run", "asterisk.pid").read_text())
    assert fresh_system.stop(signal.SIGTERM) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    fresh_system.start()  # for whatever runs next


async def test_database_outage_loses_no_cdr_and_no_ivr_path(fresh_system: System, postgres: Cluster | None) -> None:
    if postgres is None:
        pytest.skip("a database server outage needs PostgreSQL (CALLCENTER_TEST_DB=postgresql)")
    before = fresh_system.cdr_count()
    since = datetime.now(UTC)
    postgres.halt()
    try:
        greeting = await sipp.caller(fresh_system.sip_port, "1002").run(30)
        assert greeting.ok, greeting.output
        ivr = await sipp.caller(fresh_system.sip_port, "1101", keys=[(1500, "7")], wait_bye_ms=20000).run(40)
        assert ivr.ok, ivr.output
        health = fresh_system.health()
        assert health["ok"] is False and health["database"]["ok"] is False
    finally:
        postgres.resume()
    # Everything taken while the database was down arrives once it is back.
    greeting_cdr, ivr_cdr = fresh_system.wait_cdrs(before, 2, timeout=30)
    assert (greeting_cdr.dst, greeting_cdr.disposition) == ("1002", "ANSWERED")
    assert ivr_cdr.dst == "1101"
    [(visit, steps)] = fresh_system.visits_since(since, timeout=30)
    assert (visit.outcome, visit.last_node) == ("hangup", "fallback")
    assert any(s.action == "invalid" and s.detail == "7" for s in steps)
    deadline = time.monotonic() + 15
    while not fresh_system.health().get("ok"):
        assert time.monotonic() < deadline, fresh_system.health()
        await asyncio.sleep(0.2)
