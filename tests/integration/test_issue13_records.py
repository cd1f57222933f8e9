"""Issue 13, records that match docs/cdr.md, on the real Asterisk:

- a call the outbound dialer placed carries the campaign's caller ID in ``src``; ``src_id`` names the
  agent who talked to the person, and is empty for a person abandoned while an agent's offer rang; the
  same with the agent's kept session line (DIA-6);
- a supervisor's ``#44`` monitoring call gets its CDR when it ends (not at the next controller start),
  with the monitored agent's extension as ``dst``."""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.models import Cdr, DialerAttempt
from tests.integration.conftest import AgentFactory, PhoneFactory
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System, wait_for

pytestmark = pytest.mark.integration

# Both in queue "progressive" (2002, 2003), progressive, no AMD: "equinox" rings the agent's phone for each
# call, "summer" keeps each agent's line open for the whole session (the default, DIA-6).
RING_CAMPAIGN, RING_CALLER_ID = "equinox", "+48221234504"
SESSION_CAMPAIGN, SESSION_CALLER_ID = "summer", "+48221234503"
# The sipp PSTN answers every number ending in 1 as a person.
ABANDONED, RUNG, KEPT_LINE = "+48221139001", "+48221139011", "+48221139021"


def cdr_to(system: System, dst: str, src: str | None = None) -> Cdr | None:
    with system.db.session() as session:
        query = select(Cdr).where(Cdr.dst == dst)
        if src is not None:
            query = query.where(Cdr.src == src)
        return session.scalars(query.order_by(Cdr.id.desc())).first()


def ended_attempt(system: System, number: str) -> DialerAttempt | None:
    with system.db.session() as session:
        return session.scalars(select(DialerAttempt).where(DialerAttempt.number == number,
                                                           DialerAttempt.ended_at.is_not(None))).first()


def cel_of(system: System, *needles: str) -> str:
    """The CEL lines naming any of ``needles``: what a failed CDR assertion was built from."""
    path = system.layout.cel_log
    if not path.exists():
        return "(no CEL file)"
    lines = [line for line in path.read_text(errors="replace").splitlines() if any(n in line for n in needles)]
    return "\n".join(lines[-80:])


def zone_at_14() -> str:
    """A fixed-offset zone where it is 14 o'clock now, give or take the minutes: inside the calling window."""
    offset = (14 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "+0")  # IANA's Etc/GMT signs are inverted


def dial(system: System, tmp_path: Path, campaign: str, number: str) -> None:
    """Imports one contact and starts the campaign, which calls it at once."""
    listing = tmp_path / f"{number.lstrip('+')}.csv"
    listing.write_text(f"phone,name,tz\n{number},Person {number[-3:]},{zone_at_14()}\n")
    done = system.cli("dialer", "import", campaign, str(listing), "--number", "phone", "--name", "name",
                      "--timezone", "tz")
    assert done.returncode == 0 and "1 imported" in done.stdout, done.stdout + done.stderr
    assert system.cli("dialer", "start", campaign).returncode == 0


async def talk_then_hang_up(client: PanelClient) -> None:
    await client.wait_view(lambda v: (v.get("call") or {}).get("state") == "connected", 30, "a connected call")
    await asyncio.sleep(1.0)
    await client.act("hangup")
    await client.act("wrapup", code="sale", note="issue 13")


async def test_dialer_cdrs_carry_the_campaign_caller_id_and_the_agent_who_talked(
        fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    system = fresh_system
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, sipp.AUDIO_PCAP, sipp.AUDIO_PCAP)
    await pstn.start()
    try:
        # Ring per call, a phone that answers at once: the agent talks to the person.
        quick = await agent("2003")
        dial(system, tmp_path, RING_CAMPAIGN, RUNG)
        await talk_then_hang_up(quick)
        await wait_for(lambda: ended_attempt(system, RUNG), 30, "the rung attempt's end")
        assert system.cli("dialer", "stop", RING_CAMPAIGN).returncode == 0
        # Session mode: the person is put through to the agent's kept line.
        await quick.wait_view(lambda v: v["call"] is None, 15, "no call")
        dial(system, tmp_path, SESSION_CAMPAIGN, KEPT_LINE)
        await talk_then_hang_up(quick)
        await wait_for(lambda: ended_attempt(system, KEPT_LINE), 30, "the kept-line attempt's end")
        assert system.cli("dialer", "stop", SESSION_CAMPAIGN).returncode == 0
        await quick.wait_view(lambda v: v["call"] is None and v.get("session") is None, 15, "no call, no line")
        await quick.act("logout")
        # Ring per call, only a phone that answers after 3 s: its offer is withdrawn at the 2-second deadline
        # (last: after an abandon the campaign brakes).
        await agent("2002", ring_ms=3000)
        dial(system, tmp_path, RING_CAMPAIGN, ABANDONED)
        abandoned = await wait_for(lambda: ended_attempt(system, ABANDONED), 40, "the abandoned attempt's end")
        assert abandoned.outcome == "abandoned", abandoned.outcome
    finally:
        system.cli("dialer", "stop", RING_CAMPAIGN)
        system.cli("dialer", "stop", SESSION_CAMPAIGN)
        await pstn.stop()

    rows: dict[str, tuple[str, str, str, str]] = {}
    for number, caller_id in ((ABANDONED, RING_CALLER_ID), (RUNG, RING_CALLER_ID), (KEPT_LINE, SESSION_CALLER_ID)):
        row = await wait_for(functools.partial(cdr_to, system, number), 15, f"the CDR of the call to {number}",
                             lambda: cel_of(system, "pstn", "dialer-"))
        rows[number] = (row.src_id, row.src, row.clid, row.disposition)
        assert (row.src, row.clid, row.disposition) == (caller_id, caller_id, "ANSWERED"), json.dumps(rows)
    assert {n: r[0] for n, r in rows.items()} == {ABANDONED: "", RUNG: "2003", KEPT_LINE: "2003"}, rows


async def test_a_44_monitoring_call_gets_its_cdr_when_it_ends(fresh_system: System, phone: PhoneFactory) -> None:
    system = fresh_system
    await phone("2002", "answer")
    # A call users dial to each other, monitored by the supervisor 2005, who hangs up first.
    call = sipp.caller(system.sip_port, "2002", user="2001", password=system.password("2001"), hangup_after_ms=9000)
    await call.start()
    await asyncio.sleep(1.0)
    supervisor = sipp.caller(system.sip_port, "#442002", user="2005", password=system.password("2005"),
                             keys=[(1000, "5")], hangup_after_ms=2000)
    result = await supervisor.run(30)
    assert result.ok, result.output
    # The supervisor's CDR is there while the agent's call goes on: written when monitoring ended.
    row = await wait_for(lambda: cdr_to(system, "2002", src="2005"), 5, "the monitoring call's CDR",
                         lambda: cel_of(system, "2005"))
    assert call.proc is not None and call.proc.returncode is None, "the agent's call ended first"
    assert (row.src_id, row.src, row.dst, row.dst_name, row.disposition, row.t_cause) == (
        "2005", "2005", "2002", "Agent Bob", "ANSWERED", "Normal Clearing")
    assert row.billsec >= 2
    assert (await call.wait(30)).ok
