"""The clock every feature runs on: ``Timers`` is what the domain asks for (the time now, an action later),
``LoopTimers`` the real one on the event loop; unit tests pass a fake that they advance by hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)


class Timers(Protocol):
    def now(self) -> datetime: ...
    def later(self, delay: float, action: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Runs ``action`` after ``delay`` seconds; returns a function that cancels it."""


class LoopTimers:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def later(self, delay: float, action: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        async def run() -> None:
            await asyncio.sleep(delay)
            try:
                await action()
            except Exception:
                log.exception("timer failed")
        task = asyncio.get_running_loop().create_task(run())

        def cancel() -> None:
            task.cancel()
        return cancel
