"""Asterisk's life under the controller: start it (or adopt the one running), wait until it is ready,
restart it when it dies. A fresh start means the calls of the previous Asterisk are over: the ledger
closes them (``after_fresh_start``), so each still gets its CDR."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from callcenter.ami.client import AmiClient
from callcenter.ari.client import AriClient
from callcenter.asterisk.layout import AsteriskLayout
from callcenter.asterisk.process import AsteriskProcess
from callcenter.config import AsteriskSettings
from callcenter.errors import AriError, AsteriskError

log = logging.getLogger(__name__)


class AsteriskLifecycle:
    def __init__(self, process: AsteriskProcess, layout: AsteriskLayout, ami: AmiClient, ari: AriClient,
                 run: AsteriskSettings, after_fresh_start: Callable[[datetime | None], None]) -> None:
        """``after_fresh_start(stopped_at)`` runs in a worker thread after Asterisk started afresh (not
        adopted); ``stopped_at`` is when the previous one was seen to die, None at the controller's start."""
        self.process = process
        self.layout = layout
        self.ami = ami
        self.ari = ari
        self.run = run
        self.after_fresh_start = after_fresh_start

    @property
    def manage(self) -> bool:
        return self.run.manage

    @property
    def adopted(self) -> bool:
        """Whether Asterisk was running before us (ours to drive, not ours to start)."""
        return self.process.adopted_pid is not None or not self.run.manage

    async def start(self, stopped_at: datetime | None = None) -> None:
        """Starts (or adopts) a managed Asterisk."""
        await self.process.start()
        if self.process.adopted_pid is None:
            await asyncio.to_thread(self.after_fresh_start, stopped_at)

    async def wait_ready(self) -> None:
        """Until AMI says FullyBooted and ARI answers; fails early if the managed Asterisk exits."""
        deadline = time.monotonic() + self.run.boot_timeout
        await self.ami.connect()
        while time.monotonic() < deadline:
            if self.run.manage and not self.process.running:
                raise AsteriskError(f"Asterisk exited during start-up; see {self.process.log_file} and "
                                    f"{self.layout.host('log', 'messages.log')}")
            if self.ami.fully_booted.is_set():
                with contextlib.suppress(AriError):
                    await self.ari.asterisk_info()
                    return
            await asyncio.sleep(0.1)
        raise AsteriskError(f"Asterisk was not ready within {self.run.boot_timeout:.0f} s "
                            f"(AMI: {self.ami.last_error or 'ok'}); see {self.process.log_file}")

    async def watch(self) -> None:
        """Restarts a managed Asterisk that died (crash, kill): calls resume on the new one."""
        delay = 1.0
        while True:
            code = await self.process.wait_exit()
            stopped_at = datetime.now(UTC)
            started = time.monotonic()
            log.error("Asterisk exited with code %s; restarting it (see %s)", code, self.process.log_file)
            await asyncio.sleep(delay)
            try:
                await self.start(stopped_at)
            except Exception:
                log.exception("restarting Asterisk failed")
            # A crash loop backs off; a long healthy run resets the delay.
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)

    async def stop(self) -> None:
        if self.run.manage:
            await self.process.stop()
