"""The daily jobs: the export of the previous day(s) and the retention purge.

APScheduler 3 on the controller's event loop, with its jobs in the ``apscheduler_jobs`` table of our
own database, so a run missed while the server was down happens as soon as it is back
(``misfire_grace_time=None``, ``coalesce=True``: one run however many were missed; the export job
then catches up every missing day itself). A persistent job names its function by module path, so
the jobs are the module-level ``daily_export`` and ``daily_purge``: they find the running
``ExportScheduler`` in a module-level registry and do the work in a thread.

Restarting keeps a missed run: the stored jobs are replaced (the times may have changed in the
settings) but a next run time already in the past is kept, so the run still happens.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine, create_engine

from callcenter.db.engine import Database, make_engine
from callcenter.export.daily import ExportResult, export_missing_days
from callcenter.export.settings import ExportSettings

if TYPE_CHECKING:
    from callcenter.retention.services import PurgeResult

log = logging.getLogger(__name__)

T = TypeVar("T")

JOBS_TABLE = "apscheduler_jobs"
EXPORT_JOB = "daily-export"
PURGE_JOB = "daily-purge"

# The scheduler whose jobs run in this process (one per process: it owns the job table's jobs).
_active: ExportScheduler | None = None


def _cron(at: str) -> CronTrigger:
    hour, minute, second = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, second=second, timezone=UTC)


def _jobstore_engine(url: str) -> Engine:
    """The job store's own engine (APScheduler disposes of it at shutdown). APScheduler 3 reads and
    writes its jobs on the event loop's thread, a few times a day: a PostgreSQL that cannot be
    reached must fail fast rather than hold the loop."""
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, pool_size=1, connect_args={"connect_timeout": 3})
    return make_engine(url)


def _registered() -> ExportScheduler | None:
    if _active is None:
        log.warning("a daily job fired but no export scheduler is running: skipped")
    return _active


async def daily_export() -> None:
    """The "daily-export" job: exports every day not exported yet, up to yesterday."""
    scheduler = _registered()
    if scheduler is None:
        return
    try:
        await scheduler.run_export_now()
    except Exception:
        log.exception("the daily export failed; the next run catches up the missing days")


async def daily_purge() -> None:
    """The "daily-purge" job: removes the records and files older than the retention policies."""
    scheduler = _registered()
    if scheduler is None:
        return
    try:
        await scheduler.run_purge_now()
    except Exception:
        log.exception("the retention purge failed")


class ExportScheduler:
    def __init__(self, db: Database, files_dir: Path, settings: ExportSettings) -> None:
        self.db = db
        self.files_dir = files_dir
        self.settings = settings
        self.scheduler: AsyncIOScheduler | None = None
        self._work_lock = threading.Lock()  # one export or purge at a time, even if a job was cancelled
        self._tasks: set[asyncio.Future[Any]] = set()

    def jobstore_url(self) -> str:
        """The synchronous SQLAlchemy URL of our database (psycopg 3 for PostgreSQL)."""
        return self.db.engine.url.render_as_string(hide_password=False)

    def start(self) -> None:
        """Starts the jobs; call it inside the running event loop."""
        global _active
        if _active is not None and _active is not self:
            raise RuntimeError("an export scheduler is already running in this process")
        store = SQLAlchemyJobStore(engine=_jobstore_engine(self.jobstore_url()), tablename=JOBS_TABLE)
        scheduler = AsyncIOScheduler(timezone=UTC, jobstores={"default": store},
                                     job_defaults={"coalesce": True, "misfire_grace_time": None,
                                                   "max_instances": 1})
        self.scheduler = scheduler
        _active = self
        try:
            # Paused until the jobs are in place: replacing a stored job would otherwise lose a run
            # missed while we were down (see _schedule).
            scheduler.start(paused=True)
            self._schedule(EXPORT_JOB, daily_export, self.settings.at)
            self._schedule(PURGE_JOB, daily_purge, self.settings.purge_at)
            scheduler.resume()
        except BaseException:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            self.scheduler, _active = None, None
            raise
        for job in scheduler.get_jobs():
            log.info("job %s: next run %s", job.id, job.next_run_time)

    def _schedule(self, job_id: str, func: Callable[[], Any], at: str) -> None:
        assert self.scheduler is not None
        options: dict[str, Any] = {}
        try:
            stored = self.scheduler.get_job(job_id)
        except Exception as exc:  # a stored job that no longer loads (renamed function...): replaced
            log.warning("stored job %s could not be read (%s): replacing it", job_id, exc)
            stored = None
        if stored is not None and stored.next_run_time is not None and stored.next_run_time <= datetime.now(UTC):
            log.info("job %s missed its run at %s: running it now", job_id, stored.next_run_time)
            options["next_run_time"] = stored.next_run_time
        self.scheduler.add_job(f"{func.__module__}:{func.__qualname__}", _cron(at), id=job_id, name=job_id,
                               replace_existing=True, coalesce=True, misfire_grace_time=None, max_instances=1,
                               **options)

    async def shutdown(self) -> None:
        """Stops the jobs and waits for a running export or purge to finish (it runs in a thread
        that cannot be interrupted; an unfinished day would be redone at the next start anyway)."""
        global _active
        if self.scheduler is not None:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self._tasks:
            log.info("waiting for the running export/purge to finish")
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if _active is self:
            _active = None

    async def _in_thread(self, work: Callable[[], T]) -> T:
        def locked() -> T:
            with self._work_lock:
                return work()
        task = asyncio.ensure_future(asyncio.to_thread(locked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # Shielded: cancelling the job (shutdown) must not lose track of the thread.
        return await asyncio.shield(task)

    async def run_export_now(self) -> list[ExportResult]:
        """Exports every day not exported yet, up to yesterday (UTC)."""
        started = time.monotonic()
        today = datetime.now(UTC).date()
        results = await self._in_thread(lambda: export_missing_days(self.db, self.files_dir, today))
        elapsed = time.monotonic() - started
        if results:
            log.info("daily export: %d day(s) %s; %d CDRs, %d queue calls, %d queue places; %.1f s", len(results),
                     ", ".join(r.day.isoformat() for r in results), sum(r.cdr_rows for r in results),
                     sum(r.queue_call_rows for r in results), sum(r.queue_user_call_rows for r in results), elapsed)
        else:
            log.info("daily export: nothing to do, every day up to yesterday is exported (%.1f s)", elapsed)
        return results

    async def run_purge_now(self) -> list[PurgeResult]:
        """Runs the retention purge (callcenter.retention)."""
        from callcenter.retention.services import purge_expired

        started = time.monotonic()
        now = datetime.now(UTC)
        results = await self._in_thread(lambda: purge_expired(self.db, self.files_dir, now))
        log.info("retention purge: %s; %.1f s",
                 "; ".join(f"{r.category} {r.rows} rows, {r.files} files" for r in results) or "nothing to purge",
                 time.monotonic() - started)
        return results
