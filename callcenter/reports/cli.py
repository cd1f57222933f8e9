"""`callcenter reports rebuild --from YYYY-MM-DD --to YYYY-MM-DD` (docs/kpis.md): the 15-minute interval
tables of those UTC days, deleted and built again from the ACD's records in one transaction."""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING, Any

from callcenter.cli_support import database
from callcenter.errors import CallcenterError

if TYPE_CHECKING:
    from callcenter.config import Settings


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_reports(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.reports.intervals import rebuild

    if args.to < args.start:
        raise CallcenterError(f"--to {args.to} is before --from {args.start}")
    if args.short_abandon < 0:
        raise CallcenterError("--short-abandon must be 0 or more seconds")
    db: Any = database(settings)
    with db.session() as session:
        done = rebuild(session, args.start, args.to, short_abandon=args.short_abandon)
    print(f"rebuilt {done.days} day(s) {args.start}..{args.to} (UTC): {done.calls} queue calls, "
          f"{done.queue_rows} queue intervals, {done.agent_rows} agent intervals")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("reports", help="the reports' interval tables (docs/kpis.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="delete and rebuild the 15-minute intervals of UTC days")
    rebuild.add_argument("--from", dest="start", type=day, required=True, help="first UTC day, YYYY-MM-DD")
    rebuild.add_argument("--to", type=day, required=True, help="last UTC day (included), YYYY-MM-DD")
    rebuild.add_argument("--short-abandon", type=float, default=5.0,
                         help="abandons under this many seconds are short abandons (default 5)")
    parser.set_defaults(func=cmd_reports)
