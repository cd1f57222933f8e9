"""The export feature: the daily CDR and queue-call files, and the retention purge, on schedule."""

from __future__ import annotations

from callcenter.export.scheduler import ExportScheduler
from callcenter.features import Core


def load(core: Core) -> ExportScheduler:
    scheduler = ExportScheduler(core.db, core.settings.files_dir, core.settings.export)

    async def start() -> None:
        # Daily files at [export] at and the purge at [export] purge_at (UTC); a run missed while the
        # controller was down runs now.
        scheduler.start()

    core.serve(start, scheduler.shutdown)
    return scheduler
