"""What the features' query modules share: one page of a list (``ResultPage``, ``paging``), a range of
UTC days as conditions, and a unit of database work run in a thread (``in_thread``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.errors import UserError

T = TypeVar("T")
PER_PAGE_MAX = 500


@dataclass(frozen=True)
class ResultPage(Generic[T]):
    """One page of a list, newest first: ``rows`` of ``total`` matches, page ``page`` of ``pages``."""

    rows: tuple[T, ...]
    page: int
    pages: int
    total: int
    header: tuple[str, ...] = ()


def paging(page: int, per_page: int, total: int, most: int = PER_PAGE_MAX) -> tuple[int, int]:
    """(pages, offset) for a valid page number; raises UserError otherwise."""
    if page < 1 or not 1 <= per_page <= most:
        raise UserError("page must be 1 or more")
    return max(1, -(-total // per_page)), (page - 1) * per_page


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def day_conditions(column: Any, day_from: date | None, day_to: date | None) -> list[ColumnElement[bool]]:
    """``column`` from the start of ``day_from`` to the end of ``day_to`` (UTC, both inclusive, None: open)."""
    conditions: list[ColumnElement[bool]] = []
    if day_from is not None:
        conditions.append(column >= day_start(day_from))
    if day_to is not None:
        conditions.append(column < day_start(day_to) + timedelta(days=1))
    return conditions


async def in_thread(db: Database, work: Callable[[Session], T]) -> T:
    """``work`` in one session and transaction, in a thread: SQLAlchemy never blocks the event loop."""
    def run() -> T:
        with db.session() as session:
            return work(session)

    return await asyncio.to_thread(run)
