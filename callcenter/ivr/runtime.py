"""Runs one caller through an IVR flow. Plain asyncio over two small interfaces: ``CallerIO`` (play,
read keys, hand over, hang up: the ARI adapter implements it) and ``PathRecorder`` (what the caller
did, stored by the records module). Unit tests drive it with scripted fakes."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp

from callcenter.ivr.flows import PASSTHROUGH_MEDIA, Flow, Node

log = logging.getLogger(__name__)

MAX_STEPS = 1000  # a flow that keeps a caller this long is broken; the validator makes it unlikely


class CallerGone(Exception):
    """The caller hung up: whatever the flow was doing stops."""


class CallerIO(Protocol):
    async def answer(self) -> None: ...
    async def play(self, media: list[str], interruptible: bool) -> str | None:
        """Plays media; returns the key pressed during it (only when interruptible), else None."""
    async def get_digit(self, timeout: float) -> str | None: ...
    async def hand_over(self, kind: str, target: str, priority: int = 0) -> None: ...
    async def hangup(self) -> None: ...


class PathRecorder(Protocol):
    def step(self, flow: str, node: str, action: str, detail: str = "") -> None: ...
    def finish(self, outcome: str, target: str, flow: str, node: str) -> None: ...


class PromptResolver(Protocol):
    def media(self, name: str, lang: str = "en") -> str: ...


@dataclass(frozen=True)
class HolidayInfo:
    name: str
    prompt: str


HolidayLookup = Callable[[date], Awaitable[HolidayInfo | None]]
FlowLookup = Callable[[str], Flow | None]


@dataclass(frozen=True)
class Outcome:
    kind: str  # queue, extension, voicemail, hangup, caller_hangup, error
    target: str
    flow: str
    node: str


@dataclass
class CallContext:
    caller: str
    did: str
    panel_url: str
    language: str
    variables: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        if name == "caller":
            return self.caller
        if name == "did":
            return self.did
        if name == "panel":
            return self.panel_url
        if name == "language":
            return self.language
        if name.startswith("vars."):
            return self.variables.get(name[5:], "")
        return ""

    def render(self, template: str, quote: bool = False) -> str:
        def replace(match: re.Match[str]) -> str:
            value = self.value(match.group(1))
            return urllib.parse.quote(value, safe="") if quote else value
        return re.sub(r"\{([a-z_][a-z0-9_.]*)\}", replace, template)


def json_path(data: Any, path: str) -> Any:
    """'a.b.0.c' into nested JSON; KeyError when it is not there."""
    for part in str(path).split(".") if path else []:
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            raise KeyError(path)
    return data


class IvrSession:
    def __init__(self, flow: Flow, io: CallerIO, recorder: PathRecorder, prompts: PromptResolver,
                 context: CallContext, *, flows: FlowLookup, holidays: HolidayLookup,
                 clock: Callable[[], datetime], http: aiohttp.ClientSession | None = None) -> None:
        self.flow = flow
        self.io = io
        self.recorder = recorder
        self.prompts = prompts
        self.context = context
        self.flows = flows
        self.holidays = holidays
        self.clock = clock
        self.http = http
        self.node_name = flow.start
        # A key that cut a plain prompt short belongs to whatever asks for keys next (type-ahead).
        self.typeahead: str | None = None

    def _media(self, names: Any) -> list[str]:
        media = []
        for name in names or ():
            text = self.context.render(str(name))
            media.append(text if text.startswith(PASSTHROUGH_MEDIA)
                         else self.prompts.media(text.removeprefix("sound:"), self.context.language))
        return media

    async def _play(self, node: Node, names: Any, interruptible: bool) -> str | None:
        if interruptible and self.typeahead is not None:
            digit, self.typeahead = self.typeahead, None
            return digit
        media = self._media(names)
        if not media:
            return None
        for item in media:
            self.recorder.step(self.flow.name, node.name, "play", item)
        return await self.io.play(media, interruptible)

    async def run(self) -> Outcome:
        """Runs the flow to an exit; a hang-up on the way ends it as ``caller_hangup``."""
        try:
            await self.io.answer()
            for _ in range(MAX_STEPS):
                node = self.flow.nodes[self.node_name]
                self.recorder.step(self.flow.name, node.name, "enter")
                handler = getattr(self, f"_node_{node.type}")
                result = await handler(node)
                if isinstance(result, Outcome):
                    self.recorder.finish(result.kind, result.target, result.flow, result.node)
                    return result
                self.node_name = result
            outcome = Outcome("error", "too many steps", self.flow.name, self.node_name)
            await self.io.hangup()
        except CallerGone:
            outcome = Outcome("caller_hangup", "", self.flow.name, self.node_name)
        self.recorder.finish(outcome.kind, outcome.target, outcome.flow, outcome.node)
        return outcome

    # -- nodes: each returns the next node's name, or an Outcome for an exit --------------------------

    async def _node_play(self, node: Node) -> str:
        self.typeahead = await self._play(node, node.prompts, bool(node.get("interruptible", True)))
        return str(node.get("next"))

    async def _node_menu(self, node: Node) -> str:
        retries = int(node.get("retries", 2))
        timeout = float(node.get("timeout", 5.0))
        choices: Mapping[str, str] = node.get("choices")
        for attempt in range(retries + 1):
            digit = await self._play(node, node.prompts, True)
            if digit is None:
                digit = await self.io.get_digit(timeout)
            if digit is None:
                self.recorder.step(self.flow.name, node.name, "timeout", str(attempt + 1))
                if attempt < retries:
                    await self._play(node, node.get("no_input_prompts"), True)
                continue
            if digit in choices:
                self.recorder.step(self.flow.name, node.name, "key", digit)
                return choices[digit]
            self.recorder.step(self.flow.name, node.name, "invalid", digit)
            if attempt < retries:
                await self._play(node, node.get("invalid_prompts"), True)
        return str(node.get("default"))

    async def _node_collect(self, node: Node) -> str:
        retries = int(node.get("retries", 2))
        timeout = float(node.get("timeout", 5.0))
        low, high = int(node.get("min_length", 1)), int(node.get("max_length", 20))
        terminator = str(node.get("terminator", "#"))
        pattern = node.get("pattern")
        for attempt in range(retries + 1):
            first = await self._play(node, node.prompts, True)
            digits = await self._read(first, high, terminator, timeout)
            valid = low <= len(digits) <= high and (pattern is None or re.fullmatch(str(pattern), digits))
            if valid:
                self.context.variables[str(node.get("variable"))] = digits
                self.recorder.step(self.flow.name, node.name, "key", digits)
                return str(node.get("next"))
            self.recorder.step(self.flow.name, node.name, "invalid" if digits else "timeout", digits)
            if attempt < retries:
                await self._play(node, node.get("invalid_prompts"), True)
        return str(node.get("on_failure"))

    async def _read(self, first: str | None, most: int, terminator: str, timeout: float) -> str:
        digits = ""
        digit = first
        while True:
            if digit is None:
                digit = await self.io.get_digit(timeout)
            if digit is None or (terminator and digit == terminator):
                return digits
            digits += digit
            if len(digits) >= most:
                return digits
            digit = None

    async def _node_hours(self, node: Node) -> str:
        is_open = self.flow.hours[node.name].is_open(self.clock())
        self.recorder.step(self.flow.name, node.name, "hours", "open" if is_open else "closed")
        return str(node.get("open" if is_open else "closed"))

    async def _node_holiday(self, node: Node) -> str:
        zone = ZoneInfo(str(node.get("timezone", "UTC")))
        holiday = await self.holidays(self.clock().astimezone(zone).date())
        if holiday is None:
            return str(node.get("next"))
        self.recorder.step(self.flow.name, node.name, "holiday", holiday.name)
        if holiday.prompt:
            await self._play(node, [holiday.prompt], False)
        return str(node.get("holiday"))

    async def _node_set(self, node: Node) -> str:
        if node.get("language"):
            self.context.language = str(node.get("language"))
            self.recorder.step(self.flow.name, node.name, "language", self.context.language)
        for name, value in (node.get("variables") or {}).items():
            self.context.variables[str(name)] = self.context.render(str(value))
        return str(node.get("next"))

    async def _node_http(self, node: Node) -> str:
        method = str(node.get("method", "GET")).upper()
        url = self._url(str(node.get("url")))
        body = {k: self.context.render(str(v)) for k, v in (node.get("body") or {}).items()}
        timeout = float(node.get("timeout", 3.0))
        try:
            if self.http is None:
                raise RuntimeError("no HTTP client")
            async with self.http.request(method, url, json=body if method == "POST" else None,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status >= 400:
                    raise RuntimeError(f"HTTP {response.status}")
                data = json.loads(await response.text()) if node.get("save") else None
            for name, path in (node.get("save") or {}).items():
                self.context.variables[str(name)] = str(json_path(data, str(path)))
        except TimeoutError:
            self.recorder.step(self.flow.name, node.name, "lookup", f"timeout after {timeout:g} s")
            return str(node.get("on_failure"))
        except (aiohttp.ClientError, RuntimeError, KeyError, ValueError) as exc:
            self.recorder.step(self.flow.name, node.name, "lookup", f"failed: {exc}"[:300])
            return str(node.get("on_failure"))
        self.recorder.step(self.flow.name, node.name, "lookup", "ok")
        return str(node.get("next"))

    def _url(self, template: str) -> str:
        """Fills a URL template: the base ({panel}) as is, values URL-encoded."""
        head, sep, query = template.partition("?")
        head = self.context.render(head)
        if not sep:
            return head
        return head + "?" + self.context.render(query, quote=True)

    async def _node_branch(self, node: Node) -> str:
        name = str(node.get("variable"))
        value = self.context.variables.get(name, self.context.value(name))
        self.recorder.step(self.flow.name, node.name, "branch", value[:300])
        cases = {str(k): str(v) for k, v in (node.get("cases") or {}).items()}
        return cases.get(value, str(node.get("default")))

    async def _node_say(self, node: Node) -> str:
        names: list[str] = list(node.prompts)
        if node.get("number") is not None:
            raw = self.context.render(str(node.get("number")))
            try:
                names.append(f"number:{round(float(raw))}")
            except ValueError:
                log.warning("say: %r is not a number", raw)
        if node.get("digits") is not None:
            digits = re.sub(r"[^0-9*#]", "", self.context.render(str(node.get("digits"))))
            if digits:
                names.append(f"digits:{digits}")
        self.typeahead = await self._play(node, names, True)
        return str(node.get("next"))

    async def _exit(self, node: Node, kind: str, target: str, priority: int = 0) -> Outcome:
        await self._play(node, node.prompts, False)
        await self.io.hand_over(kind, target, priority)
        return Outcome(kind, target, self.flow.name, node.name)

    async def _node_queue(self, node: Node) -> Outcome:
        return await self._exit(node, "queue", str(node.get("queue")), int(node.get("priority") or 0))

    async def _node_extension(self, node: Node) -> Outcome:
        return await self._exit(node, "extension", str(node.get("extension")))

    async def _node_voicemail(self, node: Node) -> Outcome:
        return await self._exit(node, "voicemail", str(node.get("mailbox")))

    async def _node_hangup(self, node: Node) -> Outcome:
        await self._play(node, node.prompts, False)
        await self.io.hangup()
        return Outcome("hangup", "", self.flow.name, node.name)

    async def _node_goto_flow(self, node: Node) -> str | Outcome:
        target = self.flows(str(node.get("flow")))
        if target is None:
            log.error("flow %s: node %s goes to flow %s, which is not loaded", self.flow.name, node.name,
                      node.get("flow"))
            await self.io.hangup()
            return Outcome("error", f"no flow {node.get('flow')}", self.flow.name, node.name)
        self.recorder.step(self.flow.name, node.name, "goto", target.name)
        self.flow = target
        return target.start
