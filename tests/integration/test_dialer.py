"""The outbound dialer end to end: a predictive campaign on the real Asterisk, a sipp "PSTN" behind the
trunk answering as people, busy lines, unanswered phones and answering machines (by the dialled number's
last digit), five sipp agent phones (one slow to answer), agents hanging up and wrapping up through the
panel's API. Asserted on the attempts the dialer recorded (with the timestamps that prove the 2-second
rule), the contacts' next steps, the CDRs and recordings, the calling window and the do-not-call list."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.models import Cdr, DialerAttempt, DialerContact, DialerListProblem, Recording
from tests.integration.conftest import AgentFactory
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import CAMPAIGN, System
from tests.support.tones import segments_pcap

pytestmark = pytest.mark.integration


def zone_at_local_hour(hour: int) -> str:
    """A fixed-offset zone where the local time is now ``hour`` o'clock (give or take the minutes)."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "+0")  # IANA's Etc/GMT signs are inverted


def attempts(system: System) -> list[DialerAttempt]:
    with system.db.session() as session:
        return list(session.scalars(select(DialerAttempt).where(DialerAttempt.campaign == CAMPAIGN)
                                    .order_by(DialerAttempt.placed_at)))


def contacts(system: System) -> dict[str, DialerContact]:
    with system.db.session() as session:
        return {c.number: c for c in session.scalars(select(DialerContact).where(DialerContact.campaign == CAMPAIGN))}


async def wait_for(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def work_calls(client: PanelClient, stop: asyncio.Event, talk: float = 1.5) -> int:
    """An agent who talks ``talk`` seconds to each customer, hangs up and wraps up with "sale"."""
    handled = 0
    while not stop.is_set():
        view = await client.view()
        call = view.get("call")
        if call and call.get("state") == "connected" and call.get("direction") == "dialer":
            await asyncio.sleep(talk)
            with contextlib.suppress(AssertionError):
                await client.act("hangup")
            with contextlib.suppress(AssertionError):
                await client.act("wrapup", code="sale", note="dialer test")
            handled += 1
        await asyncio.sleep(0.2)
    return handled


async def test_a_predictive_campaign_reaches_people_and_keeps_the_two_second_rule(
        fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    system = fresh_system
    human = segments_pcap(tmp_path / "hello.pcap", [(440, 0.7), (0, 6.0)])  # "Hello?" and listens
    machine = segments_pcap(tmp_path / "machine.pcap", [(440, 1.2), (0, 0.2), (520, 1.4), (0, 0.2), (440, 4.0)])
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, str(human), str(machine))
    await pstn.start()
    inside, outside = zone_at_local_hour(14), zone_at_local_hour(3)
    rows = [
        ("+48221110001", "First Person", inside),   # the slow agent alone: abandoned
        ("+48221110012", "Busy Line", inside),
        ("+48221110013", "Nobody Home", inside),
        ("+48221110014", "Machine", inside),
        ("+48221110021", "Second Person", inside),
        ("+48221110031", "Third Person", inside),
        ("+48221110041", "Fourth Person", inside),
        ("+48221110051", "Fifth Person", inside),
        ("+48221110061", "Night Owl", outside),      # asleep: outside 08:00-21:00 local time
        ("+48221110071", "Blocked Later", inside),   # put on the do-not-call list after the import
        ("+48221110081", "Blocked Before", inside),  # on the do-not-call list at import
        ("not a number", "Bad Row", inside),
        ("+48 22 111 00 21", "Duplicate", inside),
    ]
    listing = tmp_path / "spring.csv"
    listing.write_text("phone,name,tz,product\n" + "".join(f"{n},{name},{tz},gold\n" for n, name, tz in rows))
    try:
        assert system.cli("dialer", "dnc", "add", "+48221110081").returncode == 0
        imported = system.cli("dialer", "import", CAMPAIGN, str(listing), "--number", "phone", "--name", "name",
                              "--timezone", "tz")
        assert imported.returncode == 0, imported.stderr
        assert f"{listing}:13: rejected: " in imported.stdout and f"{listing}:14: duplicate: " in imported.stdout
        assert f"{listing}:12: do-not-call: " in imported.stdout
        assert "10 imported, 1 rejected, 1 duplicate, 1 on the do-not-call list" in imported.stdout, imported.stdout
        assert system.cli("dialer", "dnc", "add", "+48221110071", "--campaign", CAMPAIGN).returncode == 0
        with system.db.session() as session:
            assert sorted(p.line for p in session.scalars(select(DialerListProblem))) == [12, 13, 14]

        # Only the slow agent (answers after 3 s): the first person waits 2 s and is abandoned.
        slow = await agent("2006", ring_ms=3000)
        # --confirm: the shared database may hold this campaign's abandons from an earlier test or run.
        assert system.cli("dialer", "start", CAMPAIGN, "--confirm").returncode == 0
        await wait_for("the first abandon", lambda: any(a.abandoned_at and a.message_at for a in attempts(system)),
                       30)
        # The slow agent leaves (else, longest idle after every offer withdrawn, they would get them all).
        deadline = time.monotonic() + 15
        while True:  # an offer may reach them between two looks
            await slow.wait_view(lambda v: v["call"] is None, 10, "no call")
            try:
                await slow.act("logout")
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the slow agent could not log out"
        clients = [await agent(ext) for ext in ("2001", "2002", "2003", "2004")]
        stop = asyncio.Event()
        workers = [asyncio.create_task(work_calls(c, stop)) for c in clients]

        def settled() -> bool:
            everyone = contacts(system)
            due_now = [c for c in everyone.values() if c.status == "pending" and c.number != "+48221110061"
                       and (c.not_before is None or c.not_before <= datetime.now(UTC))]
            open_now = due_now + [c for c in everyone.values() if c.status == "dialing"]
            return not open_now and all(a.ended_at for a in attempts(system))
        await wait_for("every contact dialled", settled, 75)
        stop.set()
        handled = sum(await asyncio.gather(*workers))
        assert system.cli("dialer", "stop", CAMPAIGN).returncode == 0
    finally:
        system.cli("dialer", "stop", CAMPAIGN)
        await pstn.stop()

    made = attempts(system)
    by_number: dict[str, list[DialerAttempt]] = {}
    for attempt in made:
        by_number.setdefault(attempt.number, []).append(attempt)
    everyone = contacts(system)
    # Calling window and do-not-call: never dialled.
    assert "+48221110061" not in by_number and everyone["+48221110061"].status == "pending"
    assert everyone["+48221110061"].not_before is not None and everyone["+48221110061"].not_before > datetime.now(UTC)
    assert "+48221110071" not in by_number and everyone["+48221110071"].status == "dnc"
    assert "+48221110081" not in everyone
    # Busy: retried after 2 s, twice in all, then closed.
    assert [a.outcome for a in by_number["+48221110012"]] == ["busy", "busy"]
    assert everyone["+48221110012"].status == "failed"
    # No answer: rang at least 15 s before the dialer gave up; called again in an hour.
    (unanswered,) = by_number["+48221110013"]
    assert unanswered.outcome == "no_answer" and unanswered.ended_at is not None
    assert (unanswered.ended_at - unanswered.placed_at).total_seconds() >= 15
    assert everyone["+48221110013"].status == "pending"
    # The machine: AMD said so, the campaign's message was played.
    (machine_call,) = by_number["+48221110014"]
    assert (machine_call.amd_status, machine_call.outcome) == ("MACHINE", "machine"), machine_call.amd_cause
    assert machine_call.message_at is not None
    # People: connected within 2 s of the end of their greeting, or abandoned at 2 s with the message.
    people = [a for a in made if a.human_at is not None]
    assert {a.number for a in people} >= {"+48221110001", "+48221110021", "+48221110031", "+48221110041",
                                          "+48221110051"}
    abandoned = [a for a in people if a.outcome == "abandoned"]
    connected = [a for a in people if a.connected_at is not None]
    assert abandoned and connected and handled == len(connected)
    for a in people:
        assert a.amd_status in ("HUMAN", "NOTSURE"), (a.number, a.amd_status, a.amd_cause)
        if a.connected_at is not None:
            assert (a.connected_at - a.human_at).total_seconds() <= 2.0, a.number
            assert a.outcome == "human" and a.agent_id is not None and a.wrapup_code == "sale"
        else:
            assert a.abandoned_at is not None and a.message_at is not None, a.number
            wait = (a.abandoned_at - a.human_at).total_seconds()
            assert 1.9 <= wait <= 3.0, (a.number, wait)
    for number in {a.number for a in connected}:
        assert everyone[number].status == "done"
    for number in {a.number for a in abandoned} - {a.number for a in connected}:
        assert everyone[number].status == "pending" and everyone[number].last_outcome == "abandoned"
    # Like every call: CDRs, and recordings (the campaign records always).
    deadline = time.monotonic() + 15
    while True:
        with system.db.session() as session:
            cdr_numbers = set(session.scalars(select(Cdr.dst).where(Cdr.calldate >= made[0].placed_at
                                                                    - timedelta(seconds=1))))
            recorded = list(session.scalars(select(Recording).where(
                Recording.acd_call_id.in_([a.acd_call_id for a in connected]))))
        if ({a.number for a in connected} <= cdr_numbers and len(recorded) == len(connected)
                and all(r.status == "ready" for r in recorded)) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    assert {a.number for a in connected} <= cdr_numbers, cdr_numbers
    assert len(recorded) == len(connected) and all(r.status == "ready" for r in recorded), \
        [(r.status, r.path) for r in recorded]
    # The day's report counts the same calls.
    day = made[0].placed_at.date().isoformat()
    report = system.cli("dialer", "report", CAMPAIGN, "--from", day, "--to", day)
    assert report.returncode == 0, report.stderr
    rows = list(csv.reader(io.StringIO(report.stdout)))
    figures = dict(zip(rows[0], rows[1], strict=True))
    that_day = [a for a in made if a.placed_at.date().isoformat() == day]
    assert figures["attempts"] == str(len(that_day))
    assert figures["abandoned"] == str(sum(1 for a in that_day if a.abandoned_at is not None))
    assert figures["connects"] == str(sum(1 for a in that_day if a.connected_at is not None))


def import_list(system: System, campaign: str, tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    zone = zone_at_local_hour(14)
    listing = tmp_path / f"{campaign}.csv"
    listing.write_text("phone,name,tz,offer\n" + "".join(f"{n},{name},{zone},{campaign}-offer\n" for n, name in rows))
    done = system.cli("dialer", "import", campaign, str(listing), "--number", "phone", "--name", "name",
                      "--timezone", "tz")
    assert done.returncode == 0 and f"{len(rows)} imported" in done.stdout, done.stdout + done.stderr


def campaign_attempts(system: System, campaign: str) -> list[DialerAttempt]:
    with system.db.session() as session:
        return list(session.scalars(select(DialerAttempt).where(DialerAttempt.campaign == campaign)
                                    .order_by(DialerAttempt.placed_at)))


def campaign_contacts(system: System, campaign: str) -> dict[str, DialerContact]:
    with system.db.session() as session:
        return {c.number: c for c in session.scalars(select(DialerContact).where(DialerContact.campaign == campaign))}


async def test_preview_and_progressive_campaigns(fresh_system: System, agent: AgentFactory, tmp_path: Path) -> None:
    """Side by side: an agent previews contacts, skips one, dials the next and books a callback for
    themself; two agents get one call each at most from a progressive campaign (no AMD)."""
    system = fresh_system
    pstn = sipp.pstn_mix(system.sip_port, system.settings.sip.trunk_port, sipp.AUDIO_PCAP, sipp.AUDIO_PCAP)
    await pstn.start()
    import_list(system, "autumn", tmp_path, [("+48221120001", "Skipped Sue"), ("+48221120011", "Dialled Dan")])
    import_list(system, "winter", tmp_path, [("+48221130001", "Win One"), ("+48221130012", "Win Busy"),
                                             ("+48221130021", "Win Two"), ("+48221130031", "Win Three")])
    alice = await agent("2001")
    bob, carol = await agent("2002"), await agent("2003")
    stop = asyncio.Event()
    workers = [asyncio.create_task(work_calls(c, stop)) for c in (bob, carol)]
    try:
        for campaign in ("autumn", "winter"):
            assert system.cli("dialer", "start", campaign, "--confirm").returncode == 0
        view = await alice.wait_view(lambda v: v.get("preview") is not None, 10, "a preview")
        assert (view["preview"]["name"], view["preview"]["fields"]) == ("Skipped Sue", {"offer": "autumn-offer"})
        await alice.act("preview_skip")
        view = await alice.wait_view(lambda v: (v.get("preview") or {}).get("name") == "Dialled Dan", 10, "Dan")
        await alice.act("preview_dial")
        view = await alice.wait_view(lambda v: (v.get("call") or {}).get("state") == "connected", 20, "connected")
        assert view["call"]["campaign"] == "autumn" and ["offer", "autumn-offer"] in view["call"]["contact_fields"]
        await alice.act("hangup")
        callback_at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        await alice.act("wrapup", code="other", note="call me later", callback_at=callback_at.isoformat(),
                        callback_mine="1")

        def winter_done() -> bool:
            everyone = campaign_contacts(system, "winter")
            return all(c.status in ("done", "failed") or (c.status == "pending" and c.last_outcome == "busy")
                       for c in everyone.values()) and all(a.ended_at for a in campaign_attempts(system, "winter"))
        await wait_for("the progressive campaign's contacts", winter_done, 40)
    finally:
        for campaign in ("autumn", "winter"):
            system.cli("dialer", "stop", campaign)
        stop.set()
        await asyncio.gather(*workers)
        await pstn.stop()

    autumn = campaign_contacts(system, "autumn")
    sue, dan = autumn["+48221120001"], autumn["+48221120011"]
    assert sue.status == "pending" and sue.not_before is not None and sue.not_before > datetime.now(UTC)
    assert sue.attempts == 0 and not campaign_attempts(system, "autumn")[1:]
    (dialled,) = campaign_attempts(system, "autumn")
    assert (dialled.number, dialled.mode, dialled.outcome, dialled.wrapup_code) == (
        "+48221120011", "preview", "human", "other")
    with system.db.session() as session:
        alice_id = session.scalar(select(DialerAttempt.agent_id).where(DialerAttempt.id == dialled.id))
    assert dan.status == "callback" and dan.callback_agent_id == alice_id
    assert dan.not_before == callback_at
    # Progressive: never more calls in progress than the two agents, no AMD.
    made = campaign_attempts(system, "winter")
    assert {a.number for a in made} == {"+48221130001", "+48221130012", "+48221130021", "+48221130031"}
    moments = sorted([(a.placed_at, 1) for a in made] + [(a.connected_at or a.ended_at, -1) for a in made])
    in_flight = peak = 0
    for _, step in moments:
        in_flight += step
        peak = max(peak, in_flight)
    assert peak <= 2, peak
    for a in made:
        assert a.amd_status == "off"
        if a.outcome == "human":
            assert a.human_at is not None and a.connected_at is not None and a.wrapup_code == "sale"
    assert campaign_contacts(system, "winter")["+48221130012"].last_outcome == "busy"
