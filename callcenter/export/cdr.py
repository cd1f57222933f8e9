"""The CDR CSV (CDR-2): one row per call of the ``cdr`` table, in the column order of CDR-1.

RFC 4180: ``csv.writer`` with CRLF line ends and minimal quoting, UTF-8 without BOM, header first.
Timestamps ``YYYY-MM-DD HH:MM:SS`` in UTC, ``rate`` and ``charge`` with four decimals, NULL as an
empty field. The panel's CSV download reuses ``CDR_HEADER``, ``format_cdr_row`` and ``csv_writer``.
``format_cdr_row`` gives the values as they are (the panel also shows them in its pages); the writer
of ``csv_writer`` neutralises the cells a spreadsheet would run as formulas (``export.cells``).

Rows are streamed (``yield_per``: server-side cursors on PostgreSQL), so memory does not grow with
the number of rows; one pass writes the file of every CDR and the copies of several units at once.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TextIO

from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import Session

from callcenter.cdr.builder import CDR_COLUMNS
from callcenter.db.models import Cdr, CdrUser
from callcenter.export.cells import safe_row

CDR_HEADER: tuple[str, ...] = CDR_COLUMNS
# Rows fetched per round trip when streaming.
YIELD_PER = 2000


class RowWriter(Protocol):
    """What ``csv.writer`` returns."""

    def writerow(self, row: Iterable[Any], /) -> Any: ...


class _SafeCsvWriter:
    """``csv.writer`` that neutralises formula cells: the one place every CSV row of the exports and
    of the panel's CDR download passes, whatever column a caller-controlled text lands in."""

    __slots__ = ("_writerow",)

    def __init__(self, out: TextIO) -> None:
        self._writerow = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow

    def writerow(self, row: Iterable[Any], /) -> Any:
        return self._writerow(safe_row(row))


def csv_writer(out: TextIO) -> RowWriter:
    """An RFC 4180 writer that neutralises formula cells (``export.cells.safe_cell``): open ``out``
    with ``newline=""`` and ``encoding="utf-8"``."""
    return _SafeCsvWriter(out)


def format_timestamp(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not UTC and value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "seconds")[:19]


def format_decimal4(value: Decimal | float | None) -> str:
    return "" if value is None else f"{value:.4f}"


class CdrLike(Protocol):
    """A ``Cdr`` or a row with its columns."""

    @property
    def id(self) -> int: ...
    @property
    def calldate(self) -> datetime: ...
    @property
    def src_id(self) -> str: ...
    @property
    def src(self) -> str: ...
    @property
    def clid(self) -> str: ...
    @property
    def dst(self) -> str: ...
    @property
    def dst_name(self) -> str: ...
    @property
    def duration(self) -> int: ...
    @property
    def billsec(self) -> int: ...
    @property
    def disposition(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def rate(self) -> Decimal | float | None: ...
    @property
    def charge(self) -> Decimal | float | None: ...
    @property
    def t_cause(self) -> str: ...


def format_cdr_row(cdr: CdrLike) -> list[str]:
    """The CSV fields of one CDR, in ``CDR_HEADER`` order."""
    return _fields(tuple(getattr(cdr, name) for name in CDR_HEADER))


def _fields(values: tuple[Any, ...]) -> list[str]:
    # The hot loop of the export: plain unpacking and inline tests (a million rows a day).
    (cdr_id, calldate, src_id, src, clid, dst, dst_name, duration, billsec, disposition, destination, rate, charge,
     t_cause) = values
    return [str(cdr_id), format_timestamp(calldate), src_id or "", src or "", clid or "", dst or "", dst_name or "",
            "" if duration is None else str(duration), "" if billsec is None else str(billsec), disposition or "",
            destination or "", "" if rate is None else f"{rate:.4f}", "" if charge is None else f"{charge:.4f}",
            t_cause or ""]


def cdr_query(start: datetime, end: datetime) -> Select[Any]:
    """The CDRs whose calldate is in [start, end), in file order."""
    return (select(*(getattr(Cdr, name) for name in CDR_HEADER))
            .where(Cdr.calldate >= start, Cdr.calldate < end)
            .order_by(Cdr.calldate, Cdr.id))


def _unit_links(connection: Connection, start: datetime, end: datetime,
                unit_ids: Iterable[int]) -> Iterator[Any]:
    """(calldate, cdr id, unit id) of the CDRs that involve a user who was in one of these units at
    the time of the call, in file order."""
    # The unit stored on the link at call time, not the user's unit now: a call stays with the unit
    # it was made in when its user moves on.
    return iter(connection.execute(
        select(Cdr.calldate, Cdr.id, CdrUser.unit_id)
        .join(CdrUser, CdrUser.cdr_id == Cdr.id)
        .where(Cdr.calldate >= start, Cdr.calldate < end, CdrUser.unit_id.in_(sorted(unit_ids)))
        .order_by(Cdr.calldate, Cdr.id)
        .execution_options(yield_per=YIELD_PER)))


def write_cdrs(connection: Connection, start: datetime, end: datetime,
               writers: Mapping[int | None, RowWriter]) -> dict[int | None, int]:
    """Writes the header and the CDRs of [start, end) to each writer in one pass: key ``None`` gets
    every CDR, a unit id those of calls a user took part in while in that unit. Returns the rows
    written per key."""
    counts: dict[int | None, int] = dict.fromkeys(writers, 0)
    for writer in writers.values():
        writer.writerow(CDR_HEADER)
    everyone = writers.get(None)
    unit_ids = [key for key in writers if key is not None]
    links = _unit_links(connection, start, end, unit_ids) if unit_ids else iter(())
    link = next(links, None)
    rows = connection.execute(cdr_query(start, end).execution_options(yield_per=YIELD_PER))
    for row in rows:
        values = tuple(row)
        fields = _fields(values)
        if everyone is not None:
            everyone.writerow(fields)
            counts[None] += 1
        if link is None:
            continue
        # Both streams are in (calldate, id) order: take this CDR's links, skip any of a CDR the
        # first stream did not see (written between the two queries).
        cdr_id, calldate = values[0], values[1]
        units: set[int] = set()
        while link is not None:
            link_date, link_id, link_unit = link
            if link_id == cdr_id:
                units.add(link_unit)
            elif (link_date, link_id) > (calldate, cdr_id):
                break
            link = next(links, None)
        for unit_id in sorted(units):
            writers[unit_id].writerow(fields)
            counts[unit_id] += 1
    return counts


def write_cdr_csv(session: Session, out: TextIO, start: datetime, end: datetime, unit_id: int | None) -> int:
    """Streams the CSV of the CDRs of [start, end) to ``out`` (opened with ``newline=""``): all of
    them, or only those of a unit's users. Returns the number of rows (header not counted)."""
    return write_cdrs(session.connection(), start, end, {unit_id: csv_writer(out)})[unit_id]
