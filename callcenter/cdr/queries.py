"""The CDRs an admin may see (the CDR page, cdr/http.py): a page of them and the whole CSV, limited to the
admin's scope by the units a ``cdr_users`` row put each call in when it happened."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import Cdr, CdrUser
from callcenter.db.queries import ResultPage, day_conditions, in_thread, paging
from callcenter.export.cdr import CDR_HEADER, csv_writer, format_cdr_row
from callcenter.users.access import require_admin
from callcenter.users.units import AdminScope

CSV_CHUNK_ROWS = 1000


@dataclass(frozen=True)
class CdrFilters:
    day_from: date | None = None
    day_to: date | None = None
    number: str = ""  # part of src, dst or clid
    disposition: str = ""  # ANSWERED, BUSY, NO ANSWER, FAILED, CONGESTION
    src_id: str = ""  # exact


def cdr_conditions(scope: AdminScope, filters: CdrFilters) -> list[ColumnElement[bool]]:
    conditions = day_conditions(Cdr.calldate, filters.day_from, filters.day_to)
    if not scope.top:  # the units its users were in when the call happened
        conditions.append(exists().where(CdrUser.cdr_id == Cdr.id, CdrUser.unit_id.in_(sorted(scope.unit_ids))))
    if filters.number:
        conditions.append(or_(*(column.contains(filters.number, autoescape=True)
                                for column in (Cdr.src, Cdr.dst, Cdr.clid))))
    if filters.disposition:
        conditions.append(Cdr.disposition == filters.disposition)
    if filters.src_id:
        conditions.append(Cdr.src_id == filters.src_id)
    return conditions


def _cdr_columns() -> Select[Any]:
    """The CDR columns of the CSV (``CDR_HEADER``): rows, not ORM objects, for ``format_cdr_row``."""
    return select(*(getattr(Cdr, name) for name in CDR_HEADER))


class CdrQueries:
    """The CDRs in the database. Every method takes the id of the logged-in user; anyone but an admin gets
    ``ActionRefused`` (403)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_cdr(self, user_id: int, filters: CdrFilters, page: int,
                       per_page: int) -> ResultPage[tuple[str, ...]]:
        """CDR rows as CSV fields (``header`` holds the column names), newest first."""
        def read(session: Session) -> ResultPage[tuple[str, ...]]:
            conditions = cdr_conditions(require_admin(session, user_id), filters)
            total = session.scalar(select(func.count()).select_from(Cdr).where(*conditions)) or 0
            pages, offset = paging(page, per_page, total)
            found = session.execute(_cdr_columns().where(*conditions).order_by(Cdr.calldate.desc(), Cdr.id.desc())
                                    .offset(offset).limit(per_page))
            return ResultPage(tuple(tuple(format_cdr_row(row)) for row in found), page, pages, total,
                              header=CDR_HEADER)

        return await in_thread(self.db, read)

    def _csv_chunks(self, user_id: int, filters: CdrFilters) -> Generator[bytes, None, None]:
        with self.db.session() as session:
            conditions = cdr_conditions(require_admin(session, user_id), filters)
            buffer = io.StringIO()
            writer = csv_writer(buffer)
            writer.writerow(CDR_HEADER)
            query = (_cdr_columns().where(*conditions).order_by(Cdr.calldate, Cdr.id)
                     .execution_options(yield_per=CSV_CHUNK_ROWS))
            for count, row in enumerate(session.execute(query), 1):
                writer.writerow(format_cdr_row(row))
                if count % CSV_CHUNK_ROWS == 0:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()

    async def cdr_csv_chunks(self, user_id: int, filters: CdrFilters) -> AsyncGenerator[bytes, None]:
        """The CSV file (UTF-8, CRLF) of every matching CDR, oldest first. Reads the rows in a thread,
        ``CSV_CHUNK_ROWS`` at a time, so the file is never all in memory. Closing early (the client went
        away) waits for the chunk being read, then ends the query."""
        loop = asyncio.get_running_loop()
        chunks = self._csv_chunks(user_id, filters)
        pending: asyncio.Future[bytes | None] | None = None
        try:
            while True:
                pending = loop.run_in_executor(None, next, chunks, None)
                chunk = await asyncio.shield(pending)
                pending = None
                if chunk is None:
                    return
                yield chunk
        finally:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            await loop.run_in_executor(None, chunks.close)
