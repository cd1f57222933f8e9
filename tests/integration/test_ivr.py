"""The IVR end to end: sipp callers press RFC 4733 keys into real Asterisk; the path each call took is
read back from the database."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.db.models import IvrStep, IvrVisit
from callcenter.ivr.flows import load_flow
from tests.integration.conftest import AgentFactory, PhoneFactory
from tests.support import sipp
from tests.support.system import System, wait_for

pytestmark = pytest.mark.integration



def now() -> datetime:
    return datetime.now(UTC) - timedelta(milliseconds=200)


def path(steps: list[IvrStep]) -> list[tuple[str, str]]:
    """(node, action:detail) of the steps that show the way taken (no prompt plays)."""
    return [(s.node, f"{s.action}:{s.detail}" if s.detail else s.action) for s in steps if s.action != "play"]


async def call(system: System, did: str, keys: list[tuple[int, str]], hangup_after_ms: int | None = None,
               wait_bye_ms: int = 30000) -> sipp.SippResult:
    return await sipp.caller(system.sip_port, did, keys=keys, hangup_after_ms=hangup_after_ms,
                             wait_bye_ms=wait_bye_ms).run(90)


def only_visit(system: System, since: datetime) -> tuple[IvrVisit, list[IvrStep]]:
    [(visit, steps)] = system.visits_since(since)
    return visit, steps


# -- the demo flow (ivr_flows/main.yaml, opening hours widened to the whole week) -----------------------

async def test_demo_sales_reaches_the_sales_queue_agent(fresh_system: System, agent: AgentFactory) -> None:
    await agent("2002")
    since = now()
    before = fresh_system.cdr_count()
    result = await call(fresh_system, "1100", [(2500, "1")], hangup_after_ms=6000)
    assert result.ok, result.output
    visit, steps = only_visit(fresh_system, since)
    assert (visit.flow, visit.did, visit.outcome, visit.target) == ("main", "1100", "queue", "sales")
    assert path(steps)[:5] == [("holiday_check", "enter"), ("opening_hours", "enter"),
                               ("opening_hours", "hours:open"), ("welcome", "enter"), ("main_menu", "enter")]
    assert ("main_menu", "key:1") in path(steps)
    [cdr] = fresh_system.wait_cdrs(before)
    assert cdr.disposition == "ANSWERED"
    assert "BRIDGE_ENTER" in fresh_system.call_events(cdr.linkedid)  # the sales phone took the call


async def test_demo_support_and_operator_exits(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2001")
    since = now()
    support = await call(fresh_system, "1100", [(2500, "2")], wait_bye_ms=20000)
    assert support.ok, support.output
    operator = await call(fresh_system, "1100", [(2500, "0")], hangup_after_ms=5000)
    assert operator.ok, operator.output
    (first, _), (second, _) = fresh_system.visits_since(since, 2)
    assert (first.outcome, first.target) == ("queue", "support")
    assert (second.outcome, second.target) == ("extension", "2001")


async def test_demo_account_balance_lookup_succeeds(fresh_system: System) -> None:
    since = now()
    result = await call(fresh_system, "1100", [(2500, "3"), (2000, "123#")], hangup_after_ms=9000)
    assert result.ok, result.output
    _visit, steps = only_visit(fresh_system, since)
    assert ("account", "key:123") in path(steps)
    assert ("lookup", "lookup:ok") in path(steps)
    # 1+2+3 = 6; 6 * 7 + 3 digits = 45 (the demo endpoint's formula)
    assert any(s.action == "play" and s.detail == "number:45" for s in steps)


@pytest.mark.parametrize(("account", "outcome"), [("999", "timeout after 2 s"), ("000", "failed: HTTP 500")])
async def test_demo_lookup_timeout_and_failure_take_the_fallback_in_time(fresh_system: System, account: str,
                                                                         outcome: str) -> None:
    since = now()
    result = await call(fresh_system, "1100", [(2500, "3"), (2000, account + "#")], hangup_after_ms=8000)
    assert result.ok, result.output
    _visit, steps = only_visit(fresh_system, since)
    key = next(s for s in steps if s.node == "account" and s.action == "key")
    lookup = next(s for s in steps if s.node == "lookup" and s.action == "lookup")
    assert lookup.detail.startswith(outcome)
    assert (lookup.at - key.at).total_seconds() < 2.5  # the caller waited no longer than the timeout
    assert ("lookup_failed", "enter") in path(steps)


async def test_demo_language_choice_changes_the_prompts(fresh_system: System) -> None:
    since = now()
    result = await call(fresh_system, "1100", [(2500, "9"), (1500, "2")], hangup_after_ms=3000)
    assert result.ok, result.output
    _visit, steps = only_visit(fresh_system, since)
    assert ("german", "language:de") in path(steps)
    menus = [s.detail for s in steps if s.node == "main_menu" and s.action == "play"]
    assert menus[0].endswith("/en/main-menu") and menus[-1].endswith("/de/main-menu")


async def test_demo_holiday_plays_its_message_and_hangs_up(fresh_system: System) -> None:
    today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    added = fresh_system.cli("holidays", "add", "--date", today, "--name", "Test holiday",
                             "--prompt", "holiday-closed")
    assert added.returncode == 0, added.stderr
    try:
        since = now()
        result = await call(fresh_system, "1100", [], wait_bye_ms=20000)
        assert result.ok, result.output
        visit, steps = only_visit(fresh_system, since)
        assert (visit.outcome, visit.last_node) == ("hangup", "holiday_goodbye")
        assert ("holiday_check", "holiday:Test holiday") in path(steps)
        assert any(s.detail.endswith("/en/holiday-closed") for s in steps)
    finally:
        assert fresh_system.cli("holidays", "remove", "--date", today).returncode == 0


# -- the multi-level test flow ---------------------------------------------------------------------------

async def test_deep_flow_levels_voicemail_goto_flow_and_collect(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2001")
    since = now()
    voicemail = sipp.caller(fresh_system.sip_port, "1101", keys=[(1500, "1"), (1200, "1")], hangup_after_ms=4000)
    await voicemail.start()
    deadline = time.monotonic() + 12
    while "VoiceMail" not in fresh_system.asterisk("core show channels concise"):
        assert time.monotonic() < deadline, "the caller never reached voicemail"
        await asyncio.sleep(0.2)
    assert (await voicemail.wait(30)).ok
    onwards = await call(fresh_system, "1101", [(1500, "1"), (1200, "2")], wait_bye_ms=20000)
    assert onwards.ok, onwards.output
    code = await call(fresh_system, "1101", [(1500, "2"), (1200, "42#")], hangup_after_ms=3000)
    assert code.ok, code.output
    (mailbox, _), (tail, tail_steps), (operator, operator_steps) = fresh_system.visits_since(since, 3)
    assert (mailbox.outcome, mailbox.target, mailbox.last_node) == ("voicemail", "2003", "mailbox")
    assert (tail.outcome, tail.target, tail.last_flow) == ("queue", "support", "tail")
    assert ("onwards", "goto:tail") in path(tail_steps)
    assert (operator.outcome, operator.target) == ("extension", "2001")
    assert ("code", "key:42") in path(operator_steps) and ("check", "branch:42") in path(operator_steps)


async def test_deep_flow_invalid_key_and_silence_retry_then_default(fresh_system: System) -> None:
    since = now()
    result = await call(fresh_system, "1101", [(1500, "7")], wait_bye_ms=20000)
    assert result.ok, result.output
    visit, steps = only_visit(fresh_system, since)
    assert [p for p in path(steps) if p[0] == "level1"] == [
        ("level1", "enter"), ("level1", "invalid:7"), ("level1", "timeout:2")]
    assert (visit.outcome, visit.last_node) == ("hangup", "fallback")


async def test_caller_hanging_up_in_the_ivr_is_recorded_and_reported(fresh_system: System) -> None:
    since = now()
    before = fresh_system.cdr_count()
    result = await call(fresh_system, "1101", [(1500, "1")], hangup_after_ms=3000)
    assert result.ok, result.output
    visit, _steps = only_visit(fresh_system, since)
    assert (visit.outcome, visit.last_flow, visit.last_node) == ("caller_hangup", "deep", "level2")
    # Asterisk logs no cause for a BYE during a prompt; the caller's own hang-up is Normal Clearing.
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.disposition, cdr.t_cause) == ("1101", "ANSWERED", "Normal Clearing")
    report = fresh_system.cli("ivr", "report", "--flow", "deep")
    assert report.returncode == 0, report.stderr
    level2 = next(line for line in report.stdout.splitlines() if line.split()[1:2] == ["level2"])
    assert int(level2.split()[3]) >= 1  # hung up there


# -- business hours, broken edits and hot reload -------------------------------------------------------

HOURS_FLOW = """flow: hours
start: check
nodes:
  check:
    type: hours
    timezone: UTC
    weekly:
      {days}: "{start}-{end}"
    open: open_line
    closed: closed_line
  open_line:
    type: extension
    extension: "2002"
  closed_line:
    type: hangup
    prompts: beep
"""


def write_flow(system: System, name: str, text: str) -> Path:
    path = Path(system.settings.paths.ivr_dir) / f"{name}.yaml"
    path.write_text(text)
    stamp = time.time() + 1  # a new mtime even within the same second
    os.utime(path, (stamp, stamp))
    return path


def flow_version(path: Path) -> str:
    """The version calls of this file record (callcenter.ivr.flows hashes the text)."""
    return load_flow(path, lambda _prompt: True, {path.stem}).version


async def load_now(system: System, name: str, text: str) -> str:
    """Writes a flow and has the controller load it at once (`callcenter ivr reload`): a flow's first
    load logs nothing else to wait for. Returns its version."""
    mark = system.log_size()
    path = write_flow(system, name, text)
    reload = system.cli("ivr", "reload")
    assert reload.returncode == 0, reload.stderr
    await system.wait_log("IVR flows reloaded: ", mark)
    return flow_version(path)


async def edit_flow(system: System, name: str, text: str) -> str:
    """Writes a new version of a loaded flow and waits for the file watcher to say new calls get it.
    Returns its version."""
    mark = system.log_size()
    path = write_flow(system, name, text)
    version = flow_version(path)
    await system.wait_log(f"flow {name}: version {version} replaces ", mark)
    return version


def open_visit_in(system: System, since: datetime, node: str) -> str | None:
    """The version of a visit since ``since`` that has entered ``node`` and not ended yet."""
    with system.db.session() as session:
        return session.scalar(select(IvrVisit.version).join(IvrStep, IvrStep.visit_id == IvrVisit.id)
                              .where(IvrVisit.started_at >= since, IvrVisit.ended_at.is_(None),
                                     IvrStep.node == node, IvrStep.action == "enter").limit(1))


async def test_business_hours_open_and_closed_by_the_clock(fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002")
    utc = datetime.now(UTC)
    days = "mon-sun"
    open_text = HOURS_FLOW.format(days=days, start="00:00", end="24:00")
    hour = utc.hour
    closed_start, closed_end = ((hour + 2) % 24, (hour + 3) % 24) if hour < 20 else (1, 2)
    closed_text = HOURS_FLOW.format(days=days, start=f"{closed_start:02d}:00", end=f"{closed_end:02d}:00")
    closed_version = await load_now(fresh_system, "hours", closed_text)
    since, before = now(), fresh_system.cdr_count()
    closed = await call(fresh_system, "1102", [], wait_bye_ms=15000)
    assert closed.ok, closed.output  # the beep, then Asterisk's BYE
    visit, steps = only_visit(fresh_system, since)
    assert (visit.version, visit.outcome, visit.target, visit.last_node) == (
        closed_version, "hangup", "", "closed_line")
    assert path(steps) == [("check", "enter"), ("check", "hours:closed"), ("closed_line", "enter")]
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.disposition, cdr.t_cause) == ("1102", "ANSWERED", "Normal Clearing")
    # Open around the clock now: the watcher hands the edited file to new calls by itself.
    open_version = await edit_flow(fresh_system, "hours", open_text)
    since, before = now(), fresh_system.cdr_count()
    opened = await call(fresh_system, "1102", [], hangup_after_ms=2000)
    assert opened.ok, opened.output  # 2002's phone took the call; the caller hung up
    visit, steps = only_visit(fresh_system, since)
    assert (visit.version, visit.outcome, visit.target, visit.last_node) == (
        open_version, "extension", "2002", "open_line")
    assert path(steps) == [("check", "enter"), ("check", "hours:open"), ("open_line", "enter")]
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.dst, cdr.disposition, cdr.t_cause) == ("1102", "ANSWERED", "Normal Clearing")
    assert "BRIDGE_ENTER" in fresh_system.call_events(cdr.linkedid)


async def test_broken_edit_is_reported_and_the_running_version_keeps_answering(fresh_system: System,
                                                                             phone: PhoneFactory) -> None:
    await phone("2002")
    good = HOURS_FLOW.format(days="mon-sun", start="00:00", end="24:00")
    good_version = await load_now(fresh_system, "hours", good)
    broken = good.replace("type: hangup", "type: hangupp")
    mark = fresh_system.log_size()
    path_ = write_flow(fresh_system, "hours", broken)
    expected = f"{path_}:15: node 'closed_line': unknown type 'hangupp'"
    await fresh_system.wait_log(expected, mark)
    [reported] = [line for line in fresh_system.log_since(mark).splitlines() if expected in line]
    assert reported.endswith(" (the previous version keeps running)"), reported
    check = fresh_system.cli("ivr", "check", str(path_))
    assert check.returncode == 1 and expected in check.stdout
    since = now()
    result = await call(fresh_system, "1102", [], hangup_after_ms=2000)
    assert result.ok, result.output
    visit, _ = only_visit(fresh_system, since)
    # The good version still routes callers.
    assert (visit.version, visit.outcome, visit.target, visit.last_node) == (
        good_version, "extension", "2002", "open_line")
    write_flow(fresh_system, "hours", good)


async def test_hot_reload_new_calls_get_the_new_version_calls_in_progress_keep_theirs(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002")
    await phone("2004")
    first = HOURS_FLOW.format(days="mon-sun", start="00:00", end="24:00").replace(
        "  check:\n", "  wait:\n    type: menu\n    prompts: beep\n    choices:\n      \"1\": check\n"
        "    timeout: 3\n    default: check\n  check:\n").replace("start: check", "start: wait")
    first_version = await load_now(fresh_system, "hours", first)
    since = now()
    # This caller enters version 1, then the file changes while it sits in the menu.
    in_progress = sipp.caller(fresh_system.sip_port, "1102", keys=[(2500, "1")], hangup_after_ms=1500)
    await in_progress.start()
    in_menu = await wait_for(lambda: open_visit_in(fresh_system, since, "wait"), 10, "caller in the menu",
                             fresh_system.log_tail)
    assert in_menu == first_version
    second = first.replace('extension: "2002"', 'extension: "2004"')
    second_version = await edit_flow(fresh_system, "hours", second)
    assert open_visit_in(fresh_system, since, "wait") == first_version  # still in the menu meanwhile
    first_result = await in_progress.wait(30)
    assert first_result.ok, first_result.output
    result = await call(fresh_system, "1102", [(300, "1")], hangup_after_ms=1500)
    assert result.ok, result.output
    (old, _), (new, _) = fresh_system.visits_since(since, 2)
    assert (old.version, old.outcome, old.target, old.last_node) == (first_version, "extension", "2002", "open_line")
    assert (new.version, new.outcome, new.target, new.last_node) == (second_version, "extension", "2004", "open_line")
    reload = fresh_system.cli("ivr", "reload")
    assert reload.returncode == 0 and "reloads its flows" in reload.stdout
