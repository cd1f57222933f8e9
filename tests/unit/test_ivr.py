import asyncio
import textwrap
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callcenter.ivr.flows import Flow, FlowErrors, load_flow
from callcenter.ivr.hours import HoursError, WeeklyHours
from callcenter.ivr.registry import FlowRegistry
from callcenter.ivr.runtime import CallContext, CallerGone, HolidayInfo, IvrSession, json_path

REPO = Path(__file__).resolve().parents[2]
KNOWN_PROMPTS = {"hello", "menu", "invalid", "no-input", "bye", "enter", "closed", "holiday-closed", "beep"}


def prompt_exists(name: str) -> bool:
    return name in KNOWN_PROMPTS


def write(tmp_path: Path, text: str, name: str = "test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
flow: test
start: menu
nodes:
  menu:
    type: menu
    prompts: menu
    choices:
      "1": sales
      "2": account
      "3": lookup
      "4": german
      "5": other
    timeout: 1
    retries: 1
    invalid_prompts: invalid
    no_input_prompts: no-input
    default: bye
  sales:
    type: queue
    queue: sales
  account:
    type: collect
    prompts: enter
    variable: account
    min_length: 3
    max_length: 5
    pattern: "[0-9]+"
    retries: 1
    next: say
    on_failure: bye
  say:
    type: say
    digits: "{vars.account}"
    next: bye
  lookup:
    type: http
    url: "{panel}/balance?account={caller}"
    timeout: 0.3
    save:
      balance: data.balance
    next: branch
    on_failure: failed
  branch:
    type: branch
    variable: balance
    cases:
      "42": sales
    default: bye
  failed:
    type: voicemail
    mailbox: "2001"
  german:
    type: set
    language: de
    next: menu
  other:
    type: goto_flow
    flow: second
  bye:
    type: hangup
    prompts: bye
"""


def load(tmp_path: Path, text: str = GOOD, flows: tuple[str, ...] = ("test", "second")) -> Flow:
    return load_flow(write(tmp_path, text), prompt_exists, flows)


# -- validation --------------------------------------------------------------------------------------

def test_good_flow_loads(tmp_path: Path) -> None:
    flow = load(tmp_path)
    assert flow.name == "test" and flow.start == "menu" and len(flow.nodes) == 10
    assert flow.nodes["menu"].get("choices")["1"] == "sales"


def test_demo_flow_is_valid() -> None:
    flow = load_flow(REPO / "ivr_flows" / "main.yaml", lambda name: (REPO / "sounds" / "en" / f"{name}.wav").exists()
                     or name in ("x",), ["main"])
    assert flow.start == "holiday_check"


@pytest.mark.parametrize(("change", "line", "message"), [
    (("type: menu", "type: menuu"), 5, "node 'menu': unknown type 'menuu'"),
    (("      \"5\": other", "      \"5\": nowhere"), 12, "node 'menu': goes to 'nowhere', which does not exist"),
    (("    retries: 1\n    invalid", "    retries: -1\n    invalid"), 14, "retries must be a whole number"),
    (("    prompts: enter", "    prompts: enter-missing"), 23, "prompt 'enter-missing' is missing in every language"),
    (("    min_length: 3", "    min_length: 9"), 25, "min_length > max_length"),
    (("    pattern: \"[0-9]+\"", "    pattern: \"[0-9\""), 27, "pattern is not a regular expression"),
    (("    flow: second", "    flow: third"), 58, "no flow named 'third'"),
    (("    queue: sales", "    queue: sales\n    colour: red"), 21, "unknown key 'colour' for a queue"),
    (("    url: \"{panel}", "    url: \"ftp://x"), 37, "url must start with"),
    (("start: menu", "start: nothing"), 2, "`start` must name a node"),
    (("      \"4\": german", "      \"x\": german"), 11, "'x' is not a key"),
])
def test_problems_name_file_line_and_what(tmp_path: Path, change: tuple[str, str], line: int, message: str) -> None:
    text = textwrap.dedent(GOOD).lstrip()
    assert change[0] in text
    path = write(tmp_path, text.replace(change[0], change[1], 1))
    with pytest.raises(FlowErrors) as errors:
        load_flow(path, prompt_exists, ("test", "second"))
    rendered = [str(p) for p in errors.value.problems]
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in rendered), rendered


def test_unreachable_nodes_and_loops_without_exit(tmp_path: Path) -> None:
    path = write(tmp_path, """
        start: a
        nodes:
          a:
            type: play
            prompts: hello
            next: b
          b:
            type: play
            prompts: hello
            next: a
          lonely:
            type: hangup
        """)
    with pytest.raises(FlowErrors) as errors:
        load_flow(path, prompt_exists)
    rendered = "\n".join(str(p) for p in errors.value.problems)
    assert f"{path}:3: node 'a' is in a loop with no way out" in rendered
    assert f"{path}:7: node 'b' is in a loop with no way out" in rendered
    assert f"{path}:11: node 'lonely' is unreachable from 'a'" in rendered


def test_bad_yaml_and_bad_hours_are_reported_with_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "start: a\nnodes:\n  a: [unclosed\n")
    with pytest.raises(FlowErrors, match=rf"{path}:\d+: not valid YAML"):
        load_flow(path, prompt_exists)
    path = write(tmp_path, """
        start: h
        nodes:
          h:
            type: hours
            timezone: Europe/Berlin
            weekly:
              mon-fri: "08:00-18:00"
              sun: "18:00-08:00"
            open: bye
            closed: bye
          bye:
            type: hangup
        """, "hours.yaml")
    with pytest.raises(FlowErrors) as errors:
        load_flow(path, prompt_exists)
    assert str(errors.value.problems[0]).startswith(f"{path}:8: node 'h': sun: '18:00-08:00' ends before it starts")


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "start: a\nnodes:\n  a:\n    type: hangup\n  a:\n    type: hangup\n")
    with pytest.raises(FlowErrors, match=rf"{path}:5: 'a' appears twice"):
        load_flow(path, prompt_exists)


# -- hours -------------------------------------------------------------------------------------------

def test_weekly_hours_in_a_time_zone() -> None:
    hours = WeeklyHours.parse({"mon-fri": "08:00-12:00, 13:00-18:00", "sat": "09:00-24:00"}, "Europe/Berlin")
    monday_9_berlin = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert hours.is_open(monday_9_berlin)
    assert not hours.is_open(datetime(2026, 11, 23, 11, 30, tzinfo=UTC))  # 12:30 lunch
    assert not hours.is_open(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 18:00 closed
    assert hours.is_open(datetime(2026, 11, 28, 22, 59, tzinfo=UTC))  # Saturday 23:59
    assert not hours.is_open(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))  # Sunday
    with pytest.raises(HoursError):
        WeeklyHours.parse({"mon": "8-12"}, "UTC")
    with pytest.raises(HoursError):
        WeeklyHours.parse({"fri-mon": "08:00-12:00"}, "UTC")
    with pytest.raises(HoursError):
        WeeklyHours.parse({"mon": "08:00-12:00"}, "Mars/Olympus")


# -- runtime -----------------------------------------------------------------------------------------

class ScriptedCaller:
    """Presses keys as scripted: one entry per prompt or wait (None: silence, 'gone': hangs up)."""

    def __init__(self, script: list[str | None]) -> None:
        self.script = list(script)
        self.played: list[list[str]] = []
        self.handed_over: tuple[str, str] | None = None
        self.hung_up = False

    def _next(self) -> str | None:
        item = self.script.pop(0) if self.script else None
        if item == "gone":
            raise CallerGone
        return item

    async def answer(self) -> None:
        pass

    async def play(self, media: list[str], interruptible: bool) -> str | None:
        self.played.append(media)
        return self._next() if interruptible else None

    async def get_digit(self, timeout: float) -> str | None:
        return self._next()

    async def hand_over(self, kind: str, target: str, priority: int = 0) -> None:
        self.handed_over = (kind, target)

    async def hangup(self) -> None:
        self.hung_up = True


class Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[str, str, str, str]] = []
        self.finished: tuple[str, str, str, str] | None = None

    def step(self, flow: str, node: str, action: str, detail: str = "") -> None:
        self.steps.append((flow, node, action, detail))

    def finish(self, outcome: str, target: str, flow: str, node: str) -> None:
        self.finished = (outcome, target, flow, node)


class Media:
    def media(self, name: str, lang: str = "en") -> str:
        return f"sound:{lang}/{name}"


SECOND = """
flow: second
start: out
nodes:
  out:
    type: extension
    extension: "2005"
"""


async def run(tmp_path: Path, script: list[str | None], *, panel: str = "http://127.0.0.1:9",
              holiday: HolidayInfo | None = None, http: aiohttp.ClientSession | None = None,
              text: str = GOOD) -> tuple[ScriptedCaller, Recorder, Any]:
    flow = load(tmp_path, text)
    second = load_flow(write(tmp_path, SECOND, "second.yaml"), prompt_exists, ("test", "second"))
    caller, recorder = ScriptedCaller(script), Recorder()

    async def holidays(day: date) -> HolidayInfo | None:
        return holiday

    session = IvrSession(flow, caller, recorder, Media(), CallContext("0049301234", "1000", panel, "en"),
                         flows={"second": second}.get, holidays=holidays,
                         clock=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC), http=http)
    outcome = await session.run()
    return caller, recorder, outcome


async def test_menu_choice_reaches_its_exit(tmp_path: Path) -> None:
    caller, recorder, outcome = await run(tmp_path, ["1"])
    assert (outcome.kind, outcome.target, outcome.node) == ("queue", "sales", "sales")
    assert caller.handed_over == ("queue", "sales")
    assert ("test", "menu", "key", "1") in recorder.steps
    assert recorder.finished == ("queue", "sales", "test", "sales")


async def test_invalid_keys_and_silence_retry_then_take_the_default(tmp_path: Path) -> None:
    caller, recorder, outcome = await run(tmp_path, ["9", None, None, None])
    assert outcome.kind == "hangup" and caller.hung_up
    assert [s[2:] for s in recorder.steps if s[1] == "menu" and s[2] in ("invalid", "timeout")] == [
        ("invalid", "9"), ("timeout", "2")]
    assert ["sound:en/invalid"] in caller.played


async def test_collect_validates_length_and_pattern(tmp_path: Path) -> None:
    # "12" then "#" is too short; the retry collects 4711 ended by "#".
    caller, recorder, outcome = await run(tmp_path, ["2", "1", "2", "#", "4", "7", "1", "1", "#"])
    assert ("test", "account", "invalid", "12") in recorder.steps
    assert ("test", "account", "key", "4711") in recorder.steps
    assert ["digits:4711"] in caller.played
    assert outcome.kind == "hangup"


async def test_collect_failure_goes_to_on_failure(tmp_path: Path) -> None:
    _caller, recorder, outcome = await run(tmp_path, ["2", None, None])
    assert outcome.node == "bye"
    assert [s[2] for s in recorder.steps if s[1] == "account"][-1] == "timeout"


async def test_language_choice_changes_prompts(tmp_path: Path) -> None:
    caller, recorder, _ = await run(tmp_path, ["4", "1"])
    assert ("test", "german", "language", "de") in recorder.steps
    assert caller.played[0] == ["sound:en/menu"] and caller.played[1] == ["sound:de/menu"]


async def test_goto_flow_continues_in_the_other_flow(tmp_path: Path) -> None:
    _caller, recorder, outcome = await run(tmp_path, ["5"])
    assert (outcome.kind, outcome.target, outcome.flow) == ("extension", "2005", "second")
    assert ("test", "other", "goto", "second") in recorder.steps


async def test_caller_hanging_up_is_recorded_with_the_node(tmp_path: Path) -> None:
    _caller, recorder, outcome = await run(tmp_path, ["2", "gone"])
    assert (outcome.kind, outcome.node) == ("caller_hangup", "account")
    assert recorder.finished == ("caller_hangup", "", "test", "account")


@pytest.fixture
async def lookup_server() -> Any:
    async def balance(request: web.Request) -> web.Response:
        account = request.query["account"]
        if account == "slow":
            await asyncio.sleep(2)
        if account == "broken":
            return web.json_response({"error": "x"}, status=500)
        return web.json_response({"data": {"balance": 42}})

    app = web.Application()
    app.router.add_get("/balance", balance)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        yield f"http://127.0.0.1:{port}", http
    await runner.cleanup()


async def test_http_lookup_success_timeout_and_failure(tmp_path: Path, lookup_server: Any) -> None:
    panel, http = lookup_server
    _caller, recorder, outcome = await run(tmp_path, ["3"], panel=panel, http=http)
    assert ("test", "lookup", "lookup", "ok") in recorder.steps
    assert ("test", "branch", "branch", "42") in recorder.steps
    assert outcome.target == "sales"

    slow = GOOD.replace("{caller}", "slow")
    started = asyncio.get_running_loop().time()
    _c, recorder, outcome = await run(tmp_path, ["3"], panel=panel, http=http, text=slow)
    assert asyncio.get_running_loop().time() - started < 1.0  # the 0.3 s timeout held
    assert ("test", "lookup", "lookup", "timeout after 0.3 s") in recorder.steps
    assert (outcome.kind, outcome.target) == ("voicemail", "2001")

    broken = GOOD.replace("{caller}", "broken")
    _c, recorder, outcome = await run(tmp_path, ["3"], panel=panel, http=http, text=broken)
    assert any(s[2] == "lookup" and s[3].startswith("failed: HTTP 500") for s in recorder.steps)
    assert outcome.kind == "voicemail"


async def test_holiday_plays_its_message_then_takes_the_holiday_branch(tmp_path: Path) -> None:
    text = GOOD.replace("start: menu", "start: holiday_check").replace("nodes:\n", """nodes:
  holiday_check:
    type: holiday
    holiday: bye
    next: menu
""", 1)
    caller, recorder, outcome = await run(tmp_path, [], holiday=HolidayInfo("Christmas", "holiday-closed"),
                                          text=text)
    assert caller.played[0] == ["sound:en/holiday-closed"]
    assert ("test", "holiday_check", "holiday", "Christmas") in recorder.steps
    assert outcome.node == "bye"
    _caller, _recorder, outcome = await run(tmp_path, ["1"], text=text)
    assert outcome.target == "sales"


def test_json_path() -> None:
    assert json_path({"a": [{"b": 3}]}, "a.0.b") == 3
    with pytest.raises(KeyError):
        json_path({"a": 1}, "b")


def test_registry_keeps_the_running_version_when_an_edit_breaks(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows, GOOD.replace("flow: test\n", "").replace("    type: goto_flow\n    flow: second",
                                                          "    type: hangup"), "test.yaml")
    registry = FlowRegistry(flows, prompt_exists)
    assert registry.reload().loaded == ["test"]
    first = registry.get("test")
    assert first is not None
    path = flows / "test.yaml"
    path.write_text(path.read_text().replace("type: queue", "type: queuee"))
    import os
    os.utime(path, (first_mtime := path.stat().st_mtime + 5, first_mtime))
    report = registry.reload()
    assert report.loaded == [] and "unknown type 'queuee'" in str(report.problems[0])
    assert registry.get("test") is first
    path.write_text(path.read_text().replace("type: queuee", "type: queue").replace("retries: 1", "retries: 3"))
    os.utime(path, (first_mtime + 5, first_mtime + 5))
    assert registry.reload().loaded == ["test"]
    second = registry.get("test")
    assert second is not None and second.version != first.version


async def test_the_flow_watcher_reads_and_parses_files_off_the_event_loop(tmp_path: Path) -> None:
    """Before: the controller reloaded flows on the event loop every second (app.py _watch_flows)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows, GOOD.replace("flow: test\n", "").replace("    type: goto_flow\n    flow: second",
                                                          "    type: hangup"), "test.yaml")
    loop_thread = threading.get_ident()
    checked_in: set[int] = set()

    def slow_prompt_exists(name: str) -> bool:
        checked_in.add(threading.get_ident())
        time.sleep(0.05)  # a slow disk: the loop must keep running meanwhile
        return True

    registry = FlowRegistry(flows, slow_prompt_exists)
    watcher = asyncio.create_task(registry.watch(interval=0.01))
    ticks = 0
    while registry.get("test") is None:
        await asyncio.sleep(0.005)
        ticks += 1
    watcher.cancel()
    assert checked_in and loop_thread not in checked_in
    assert ticks > 5  # the loop ran while the flow was being parsed


async def test_a_key_that_cuts_a_prompt_short_is_kept_for_the_menu(tmp_path: Path) -> None:
    text = GOOD.replace("start: menu", "start: hello").replace("nodes:\n", """nodes:
  hello:
    type: play
    prompts: hello
    next: menu
""", 1)
    caller, _recorder, outcome = await run(tmp_path, ["1"], text=text)
    assert caller.played == [["sound:en/hello"]]  # the menu prompt was not needed
    assert outcome.target == "sales"
