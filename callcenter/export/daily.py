"""One day's export files, for everyone and per organisational unit, and catching up on missed days.

Under the files directory (and under ``units/<unit id>/`` for each unit, with only its records):

- ``CDRs/YYYY-MM-DD.csv``
- ``QueueCalls/YYYY-MM-DD-queue-calls.zip`` holding ``YYYY-MM-DD-queue_call.csv`` and
  ``YYYY-MM-DD-queue_user_call.csv``

Every file is written as ``<name>.tmp`` and renamed into place once all of the day's files are
complete, so an FTPS reader never sees half a file. The zip is deterministic (fixed entry order,
dates, attributes): exporting a day again gives byte-identical files when its records did not
change. Synchronous: the scheduler runs it in a thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import func, select

from callcenter.db.engine import Database
from callcenter.db.models import ExportRun, OrgUnit
from callcenter.export.cdr import csv_writer, write_cdrs
from callcenter.export.queue_calls import QueueWriters, write_queue_calls
from callcenter.users.units import unit_files_dir

log = logging.getLogger(__name__)

CDR_DIR = "CDRs"
QUEUE_DIR = "QueueCalls"
# The daily job catches up on at most this many days; older ones need `callcenter export`.
MAX_CATCH_UP_DAYS = 31
_BUFFER = 1 << 16


@dataclass(frozen=True)
class ExportResult:
    day: date
    cdr_rows: int
    queue_call_rows: int
    queue_user_call_rows: int
    files: list[Path]


def day_window(day: date) -> tuple[datetime, datetime]:
    """[day 00:00 UTC, next day 00:00 UTC)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def cdr_path(root: Path, day: date) -> Path:
    return root / CDR_DIR / f"{day.isoformat()}.csv"


def queue_zip_path(root: Path, day: date) -> Path:
    return root / QUEUE_DIR / f"{day.isoformat()}-queue-calls.zip"


def queue_member_names(day: date) -> tuple[str, str]:
    return f"{day.isoformat()}-queue_call.csv", f"{day.isoformat()}-queue_user_call.csv"


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _zip_info(name: str, day: date) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever the platform
    info.external_attr = 0o644 << 16
    return info


class _QueueZip:
    """The queue-call zip of one root, written while the calls stream by: ``queue_call.csv`` goes
    straight into the zip, ``queue_user_call.csv`` (the second entry) into an unnamed temporary
    file copied in at the end (a zip is written one entry at a time)."""

    def __init__(self, path: Path, day: date) -> None:
        first, second = queue_member_names(day)
        self._second = _zip_info(second, day)
        self._zip = zipfile.ZipFile(path, "w")
        self._calls = io.TextIOWrapper(self._zip.open(_zip_info(first, day), "w", force_zip64=True),
                                       encoding="utf-8", newline="")
        try:
            self._spool = io.TextIOWrapper(tempfile.TemporaryFile(dir=path.parent), encoding="utf-8", newline="")
        except BaseException:
            self._calls.close()
            self._zip.close()
            raise
        self.writers = QueueWriters(csv_writer(self._calls), csv_writer(self._spool))

    def finish(self) -> None:
        self._calls.close()
        self._spool.flush()
        raw = self._spool.detach()
        try:
            raw.seek(0)
            with self._zip.open(self._second, "w", force_zip64=True) as member:
                shutil.copyfileobj(raw, member, 1 << 20)
        finally:
            raw.close()
        self._zip.close()

    def abort(self) -> None:
        for closer in (self._calls.close, self._spool.close, self._zip.close):
            with contextlib.suppress(Exception):
                closer()


class _Staged:
    """Files written under ``<name>.tmp``, moved into place together by ``commit``."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def tmp(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.paths.append(path)
        return _tmp(path)

    def commit(self) -> None:
        for path in self.paths:
            os.replace(_tmp(path), path)

    def discard(self) -> None:
        for path in self.paths:
            _tmp(path).unlink(missing_ok=True)


@contextlib.contextmanager
def _text_files(paths: dict[int | None, Path]) -> Iterator[dict[int | None, TextIO]]:
    with contextlib.ExitStack() as stack:
        yield {key: stack.enter_context(open(path, "w", encoding="utf-8", newline="", buffering=_BUFFER))
               for key, path in paths.items()}


def export_day(db: Database, files_dir: Path, day: date) -> ExportResult:
    """Writes the day's CDR file and queue-call zip, for everyone and for every unit (header only
    when it has no records), then records the run. Rerunning a day overwrites its files."""
    started = time.monotonic()
    start, end = day_window(day)
    staged = _Staged()
    zips: dict[int | None, _QueueZip] = {}
    try:
        with db.session() as session:
            # One snapshot for all queries (PostgreSQL; SQLite reads what is committed).
            options = {"isolation_level": "REPEATABLE READ"} if db.engine.dialect.name == "postgresql" else None
            connection = session.connection(execution_options=options)
            unit_ids = list(connection.execute(select(OrgUnit.id).order_by(OrgUnit.id)).scalars())
            roots: dict[int | None, Path] = {None: files_dir}
            roots.update({unit_id: unit_files_dir(files_dir, unit_id) for unit_id in unit_ids})

            with _text_files({key: staged.tmp(cdr_path(root, day)) for key, root in roots.items()}) as outs:
                cdr_counts = write_cdrs(connection, start, end, {key: csv_writer(out) for key, out in outs.items()})
            for key, root in roots.items():
                zips[key] = _QueueZip(staged.tmp(queue_zip_path(root, day)), day)
            queue_counts = write_queue_calls(connection, start, end,
                                             {key: queue_zip.writers for key, queue_zip in zips.items()})
            for queue_zip in zips.values():
                queue_zip.finish()
        staged.commit()
    except BaseException:
        for queue_zip in zips.values():
            queue_zip.abort()
        staged.discard()
        raise

    files = [path for root in roots.values() for path in (cdr_path(root, day), queue_zip_path(root, day))]
    result = ExportResult(day, cdr_counts[None], queue_counts[None][0], queue_counts[None][1], files)
    if datetime.now(UTC) < day_window(day)[1]:
        # Today, on request: a partial file. Not counted as exported, so the daily job still writes
        # the whole day once it is over.
        log.info("exported %s so far (the day is not over: the daily run writes it again)", day)
        return result
    with db.session() as session:
        run = session.get(ExportRun, day)
        if run is None:
            run = ExportRun(day=day)
            session.add(run)
        run.finished_at = datetime.now(UTC)
        run.cdr_rows, run.queue_call_rows = result.cdr_rows, result.queue_call_rows
        run.queue_user_call_rows = result.queue_user_call_rows
    log.info("exported %s: %d CDRs, %d queue calls, %d queue places; %d unit copies; %.1f s", day,
             result.cdr_rows, result.queue_call_rows, result.queue_user_call_rows, len(unit_ids),
             time.monotonic() - started)
    return result


def missing_days(last_exported: date | None, today: date) -> list[date]:
    """The days the daily job exports: yesterday when nothing was ever exported, else every day
    after the last exported one up to yesterday, at most ``MAX_CATCH_UP_DAYS`` back."""
    yesterday = today - timedelta(days=1)
    if last_exported is None:
        return [yesterday]
    first = last_exported + timedelta(days=1)
    oldest = today - timedelta(days=MAX_CATCH_UP_DAYS)
    if first < oldest:
        log.warning("the days %s to %s were never exported and are more than %d days old: not caught up "
                    "automatically; run `callcenter export --date YYYY-MM-DD` for each (or "
                    "`callcenter export --from %s --to %s`)", first, oldest - timedelta(days=1), MAX_CATCH_UP_DAYS,
                    first, oldest - timedelta(days=1))
        first = oldest
    return [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]


def export_missing_days(db: Database, files_dir: Path, today: date) -> list[ExportResult]:
    """Exports every day the daily job has not written yet (see ``missing_days``)."""
    with db.session() as session:
        last = session.scalar(select(func.max(ExportRun.day)))
    return [export_day(db, files_dir, day) for day in missing_days(last, today)]
