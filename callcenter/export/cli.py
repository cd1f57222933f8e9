"""``callcenter export``: redo the export files of some days, or catch up on the missing ones.

    callcenter export --date 2025-03-01 [--date 2025-03-02 ...]
    callcenter export --from 2025-03-01 [--to 2025-03-31]
    callcenter export --missing
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from callcenter.errors import UserError

if TYPE_CHECKING:
    from callcenter.config import Settings
    from callcenter.export.daily import ExportResult


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a date, use YYYY-MM-DD") from None


def days_to_export(args: argparse.Namespace, today: date) -> list[date]:
    """The days named by --date and --from/--to, in order, each once; only finished (UTC) days."""
    days = {_day("--date", text) for text in args.date or ()}
    if args.to and not args.from_:
        raise UserError("--to needs --from")
    if args.from_:
        first = _day("--from", args.from_)
        last = _day("--to", args.to) if args.to else today - timedelta(days=1)
        if last < first:
            raise UserError(f"--from {first} is after --to {last}")
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    for day in days:
        if day > today:
            raise UserError(f"{day} has not begun yet (UTC): only days up to {today} can be exported")
        if day == today:
            print(f"{day} is not over yet (UTC): its files hold the calls so far; the daily run writes "
                  "the whole day tomorrow", file=sys.stderr)
    return sorted(days)


def _report(result: ExportResult) -> None:
    from callcenter.export.daily import cdr_path, queue_member_names, queue_zip_path

    root = result.files[0].parent.parent
    cdrs, queue_zip = cdr_path(root, result.day).relative_to(root), queue_zip_path(root, result.day).relative_to(root)
    calls, places = queue_member_names(result.day)
    print(f"{result.day}: {cdrs} {result.cdr_rows} rows; {queue_zip}: {calls} {result.queue_call_rows} rows, "
          f"{places} {result.queue_user_call_rows} rows; {len(result.files) // 2 - 1} unit copies")


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.cli_support import database
    from callcenter.export.daily import export_day, export_missing_days

    today = datetime.now(UTC).date()
    days = days_to_export(args, today)
    if not days and not args.missing:
        raise UserError("say which days: --date YYYY-MM-DD (repeatable), --from/--to, or --missing")
    db = database(settings)
    started = time.monotonic()
    try:
        results = [export_day(db, settings.files_dir, day) for day in days]
        if args.missing:
            results += export_missing_days(db, settings.files_dir, today)
    finally:
        db.dispose()
    for result in results:
        _report(result)
    if args.missing and not results:
        print("nothing missing: every day up to yesterday is exported")
    print(f"{len(results)} day(s) in {time.monotonic() - started:.1f} s, files under {settings.files_dir}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds ``export`` to the ``callcenter`` command."""
    parser = sub.add_parser(
        "export", help="write the daily CDR and queue-call CSV files of past days (docs/export.md)",
        description="Writes CDRs/YYYY-MM-DD.csv and QueueCalls/YYYY-MM-DD-queue-calls.zip (and the copies of "
                    "each organisational unit) for days already over (UTC), overwriting existing files.")
    parser.add_argument("--date", action="append", metavar="YYYY-MM-DD", help="redo this day (repeatable)")
    parser.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="redo every day from this one...")
    parser.add_argument("--to", metavar="YYYY-MM-DD", help="...to this one (default: yesterday)")
    parser.add_argument("--missing", action="store_true",
                        help="export the days the daily job has not written yet (at most 31 days back)")
    parser.set_defaults(func=cmd_export)
