"""Writes records in the background, in order, one transaction per batch, off the event loop.

Call handling never waits for the database: a record is queued and the call goes on. When the
database is down the records wait in memory, in order, and are written when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.db.engine import Database

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Operation = Callable[[Session], Any]


class BatchWriter(Generic[Item]):
    """Queues items and stores them in batches with ``_store`` (run in a thread); keeps them while
    storing fails and retries every second."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self.pending: list[Item] = []
        self.wakeup = asyncio.Event()
        self.failing = False
        self.written = 0
        self.added = 0
        self._progress = asyncio.Event()

    def add(self, item: Item) -> None:
        self.pending.append(item)
        self.added += 1
        self.wakeup.set()

    async def caught_up(self, timeout: float = 3.0) -> bool:
        """Waits until what was added before this call is stored (a page about to read what the call handling
        just recorded: the agent's call, seconds after its answer). False after ``timeout`` (the database is
        slow or away): the caller reads what is there."""
        target = self.added
        deadline = asyncio.get_running_loop().time() + timeout
        while self.written < target:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except TimeoutError:
                return False
        return True

    def _store(self, batch: list[Item]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await asyncio.to_thread(self._store, batch)
                self.written += len(batch)
                self._progress.set()
                if self.failing:
                    log.info("%s are stored again", self.name)
                    self.failing = False
            except Exception as exc:
                self.pending = batch + self.pending
                if not self.failing:
                    log.error("storing %s failed (%s); keeping them and retrying", self.name, exc)
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


class _Group:
    def __init__(self) -> None:
        self.operations: list[Operation] = []
        self.open = True


class RecordWriter(BatchWriter[Operation]):
    """Items are operations on a session. One the database refuses for good (a constraint) is logged
    and skipped, so it cannot block the records behind it.

    ``together()`` makes the operations added inside it (by this task, and by the bus subscribers it awaits)
    one operation, so they are written in one transaction or not at all: a fact and what reports it (the
    webhooks' outbox) cannot part."""

    def __init__(self, db: Database, name: str) -> None:
        super().__init__(db, name)
        self._group: ContextVar[_Group | None] = ContextVar(f"{name} group", default=None)

    def add(self, item: Operation) -> None:
        group = self._group.get()
        # A task started inside a group inherits it, and may outlive it: then its operations go on alone.
        if group is not None and group.open:
            group.operations.append(item)
            return
        super().add(item)

    @contextlib.contextmanager
    def together(self) -> Iterator[None]:
        outer = self._group.get()
        if outer is not None and outer.open:
            yield  # already inside one: the outer group writes everything
            return
        group = _Group()
        token = self._group.set(group)
        try:
            yield
        finally:
            group.open = False
            self._group.reset(token)
            if group.operations:
                operations = group.operations

                def all_of(session: Session) -> None:
                    for operation in operations:
                        operation(session)
                        session.flush()
                super().add(all_of)

    def _store(self, batch: list[Operation]) -> None:
        try:
            self._apply(batch)
        except IntegrityError:
            for operation in batch:
                try:
                    self._apply([operation])
                except IntegrityError as exc:
                    log.error("%s: a record was refused and skipped: %s", self.name, exc.orig)

    def _apply(self, batch: list[Operation]) -> None:
        with self.db.session() as session:
            for operation in batch:
                operation(session)
                session.flush()



