"""Writes records in the background, in order, one transaction per batch, off the event loop.

Call handling never waits for the database: a record is queued and the call goes on. When the
database is down the records wait in memory, in order, and are written when it is back; a record
the database refuses for good (a constraint) is logged and skipped so it cannot block the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from callcenter.db.engine import Database

log = logging.getLogger(__name__)

Operation = Callable[[Session], Any]


class RecordWriter:
    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self.pending: list[Operation] = []
        self.wakeup = asyncio.Event()
        self.failing = False
        self.written = 0

    def add(self, operation: Operation) -> None:
        self.pending.append(operation)
        self.wakeup.set()

    def _store(self, batch: list[Operation]) -> None:
        with self.db.session() as session:
            for operation in batch:
                operation(session)
                session.flush()

    def _store_one_by_one(self, batch: list[Operation]) -> None:
        for operation in batch:
            try:
                self._store([operation])
            except IntegrityError as exc:
                log.error("%s: a record was refused and skipped: %s", self.name, exc.orig)

    async def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                try:
                    await asyncio.to_thread(self._store, batch)
                except IntegrityError:
                    await asyncio.to_thread(self._store_one_by_one, batch)
                self.written += len(batch)
                if self.failing:
                    log.info("%s: records are stored again", self.name)
                    self.failing = False
            except (DBAPIError, OSError) as exc:
                self.pending = batch + self.pending
                if not self.failing:
                    log.error("%s: storing records failed (%s); keeping them and retrying", self.name, exc)
                    self.failing = True
                raise

    async def run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(1.0)
                self.wakeup.set()
