"""Server-Sent Events plumbing for any page: one open stream (``EventStream``), and views computed once
per version of what they show and shared by every stream that shows them.

``Changes`` is a source that counts its changes (the ACD's ``version`` and ``wait_change``).
``SharedFeed`` is one view every viewer shares (the wallboard): computed once per version by one producer
task (``SharedFeed.run``) and serialized once per version and scope (``text_for``): viewers with the same
scope share one string; each only waits for the version to change and writes its string to its socket.
``PersonalViews`` is one view per user (the agent page): computed and serialized at most once per user and
version, however many of that user's streams (tabs) and requests ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Any, Protocol, TypeVar

from aiohttp import web

log = logging.getLogger(__name__)

PING_INTERVAL = 15.0
T = TypeVar("T")


class Changes(Protocol):
    @property
    def version(self) -> int:
        """Grows on every change a view could show."""

    async def wait_change(self, version: int, timeout: float) -> int:
        """Returns the current version as soon as it differs from ``version`` (or at ``timeout``)."""


class ViewFilter(Protocol):
    """The part of a shared view one viewer may see; viewers with the same ``key`` see the same."""

    @property
    def key(self) -> Hashable: ...

    @property
    def apply(self) -> Callable[[dict[str, Any]], dict[str, Any]]: ...


def to_json(view: Any) -> str:
    """One line of JSON (SSE data must not hold a newline); odd values (datetimes...) become strings."""
    return json.dumps(view, separators=(",", ":"), ensure_ascii=False, default=str)


async def wait_first(waiting: Awaitable[T], stop: asyncio.Event, timeout: float | None) -> T | None:
    """``waiting``'s result, or None when ``stop`` is set first or ``timeout`` passes (``waiting`` is then
    cancelled). Errors of ``waiting`` propagate."""
    task = asyncio.ensure_future(waiting)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()
    return task.result() if task in done else None


class EventStream:
    """An open ``text/event-stream`` response. Writes raise ConnectionError once the client has gone."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request = request
        self.response = response

    @classmethod
    async def open(cls, request: web.Request) -> EventStream:
        response = web.StreamResponse(headers={"X-Accel-Buffering": "no"})
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        await response.prepare(request)
        return cls(request, response)

    @property
    def closed(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, event: str, data: str) -> None:
        await self.response.write(f"event: {event}\ndata: {data}\n\n".encode())

    async def ping(self) -> None:
        await self.response.write(b": ping\n\n")


class SharedFeed:
    """``compute()`` as JSON text, computed once per version of ``changes`` and shared by all viewers.

    ``seq`` grows each time the text changes; ``next(seq)`` waits for a newer one. A single producer
    (``run``) follows the version while at least one viewer watches; ``snapshot`` brings the text up to
    date on demand (a new viewer, a GET of the view) and computes only if the version moved.
    """

    def __init__(self, changes: Changes, compute: Callable[[], dict[str, Any]],
                 ping_interval: float = PING_INTERVAL, name: str = "feed") -> None:
        self._changes = changes
        self._compute = compute
        self.name = name
        self.ping_interval = ping_interval
        self._version: int | None = None
        self.text = ""  # the whole view, unfiltered
        self.view: dict[str, Any] = {}
        self._texts: dict[object, str] = {}  # this seq's text per filter key
        self.seq = 0
        self.computed = 0
        self.viewers = 0
        self._changed = asyncio.Event()
        self._watched = asyncio.Event()

    def snapshot(self) -> tuple[int, str]:
        version = self._changes.version
        if version != self._version:
            view = self._compute()
            text = to_json(view)
            self._version = version
            self.computed += 1
            if text != self.text:
                self.text, self.view, self._texts = text, view, {}
                self.seq += 1
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
        return self.seq, self.text

    def text_for(self, view_filter: ViewFilter) -> str:
        """The current view as one viewer may see it, serialized once per seq and filter key."""
        text = self._texts.get(view_filter.key)
        if text is None:
            text = self.text if view_filter.key == "all" else to_json(view_filter.apply(self.view))
            self._texts[view_filter.key] = text
        return text

    def poke(self) -> None:
        """Wakes every viewer with the same text under a new ``seq``: what a viewer may see changed (their
        scope), not the view. Filtered texts are made afresh."""
        self._texts = {}
        self.seq += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def next(self, seq: int, timeout: float, stop: asyncio.Event) -> tuple[int, str] | None:
        """The shared text once it is newer than ``seq``; None at ``timeout`` or when ``stop`` is set."""
        if self.seq == seq:
            await wait_first(self._changed.wait(), stop, timeout)
        if self.seq == seq or stop.is_set():
            return None
        return self.seq, self.text

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        self.viewers += 1
        self._watched.set()
        try:
            yield
        finally:
            self.viewers -= 1
            if not self.viewers:
                self._watched.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """The producer: while someone watches, waits for the next version and publishes it."""
        failing = False
        while not stop.is_set():
            if not self.viewers:
                await wait_first(self._watched.wait(), stop, None)
                continue
            try:
                since = self._version if self._version is not None else self._changes.version
                await wait_first(self._changes.wait_change(since, self.ping_interval), stop, None)
                if self.viewers and not stop.is_set():
                    self.snapshot()
                if failing:
                    log.info("%s: the backend answers again", self.name)
                    failing = False
            except Exception:
                if not failing:
                    log.exception("%s: the backend failed; retrying every second", self.name)
                    failing = True
                await wait_first(stop.wait(), stop, 1.0)


class PersonalViews:
    """``compute(user_id)`` as (event, JSON text), computed at most once per user and version of ``changes``:
    every stream (and tab) of one user shares it, and a stream that gets back the text it sent last sends
    nothing. ``computed`` counts the computations."""

    def __init__(self, changes: Changes, compute: Callable[[int], tuple[str, str]]) -> None:
        self._changes = changes
        self._compute = compute
        self._texts: dict[int, tuple[int, str, str]] = {}  # user id: (version, event, text)
        self.computed = 0

    def get(self, user_id: int) -> tuple[str, str]:
        version = self._changes.version
        cached = self._texts.get(user_id)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        event, text = self._compute(user_id)
        self.computed += 1
        self._texts[user_id] = (version, event, text)
        return event, text
