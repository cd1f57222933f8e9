"""The controller's one event bus: how features hear of each other without holding each other.

Three kinds of traffic, all in-process and on the event loop:

- **Domain events** (frozen dataclasses, e.g. ``acd.events.CallConnected``): a feature publishes what
  happened; every subscriber of that type is awaited in subscription order. A subscriber that fails is
  logged with the event and the others still run: one feature's bookkeeping never costs another's call.
- **Requests** (frozen dataclasses, e.g. ``EnterQueue``): one feature asks another to take over a
  channel without importing it; exactly one feature serves each request type and its answer comes back.
- **ARI events** (``ari.events``): routed to the feature that owns the channel.
  A feature takes a channel with ``ChannelClaims.take``; the newest taker owns it (ari/routing.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")

Subscriber = Callable[[Any], Awaitable[None] | None]


class ChannelClaims(Protocol):
    """What a feature needs to own channels: take one when it starts handling it (originated, entered,
    handed over); its ARI events then reach this feature."""

    def take(self, channel_id: str) -> None: ...


class Bus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = {}
        self._servers: dict[type, Callable[[Any], Awaitable[Any]]] = {}
        # ``post``: events from synchronous code, published in order on one task of their own.
        self._posted: deque[object] = deque()
        self._posting: asyncio.Task[None] | None = None

    # -- domain events ------------------------------------------------------------------------------

    def subscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        self._subscribers.setdefault(kind, []).append(handler)

    def has_subscribers(self, kind: type) -> bool:
        return bool(self._subscribers.get(kind))

    async def publish(self, event: object) -> None:
        for handler in self._subscribers.get(type(event), ()):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s failed to handle %s", getattr(handler, "__qualname__", handler), event)

    def post(self, event: object) -> None:
        """Publishes from code that may not await (a state change made before a step's first await):
        subscribers hear it soon after, on their own task, in the order of posting. Nothing is queued
        while nobody subscribes to the type."""
        if not self.has_subscribers(type(event)):
            return
        self._posted.append(event)
        if self._posting is None or self._posting.done():
            self._posting = asyncio.get_running_loop().create_task(self._publish_posted(), name="bus-post")

    async def _publish_posted(self) -> None:
        while self._posted:
            await self.publish(self._posted.popleft())

    # -- requests -----------------------------------------------------------------------------------

    def serve(self, kind: type[E], handler: Callable[[E], Awaitable[Any]]) -> None:
        if kind in self._servers:
            raise ValueError(f"{kind.__name__} is already served")
        self._servers[kind] = handler

    async def ask(self, request: object) -> Any:
        """The answer of the feature that serves this request's type. Raises LookupError when no feature
        serves it (a wiring mistake, found by the first call)."""
        server = self._servers.get(type(request))
        if server is None:
            raise LookupError(f"nobody serves {type(request).__name__}")
        return await server(request)
