"""`callcenter retention ...`: show and set how long records are kept, purge now, delete a category."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from callcenter.cli_support import database, operator, utc

if TYPE_CHECKING:
    from callcenter.config import Settings

# The category codes, spelled here too so building the parser needs no database import.
_CATEGORY_CODES = ("cdrs", "recordings", "queue_calls", "ivr_paths", "work_logs", "call_events")


def cmd_show(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.retention import services

    with database(settings).session() as session:
        policies = services.get_policies(session)
        last = services.last_purges(session)
        print(f"{'category':<12} {'records':<28} {'keep':<10} last purge")
        for code, label in services.CATEGORIES.items():
            entry = last.get(code)
            done = (f"{utc(entry.at, zone=True)} {entry.kind.replace('_', ' ')}: {entry.rows} rows, "
                    f"{entry.files} files ({entry.by})" if entry else "-")
            print(f"{code:<12} {label:<28} {services.keep_label(policies[code]):<10} {done}")
    return 0


def cmd_set(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.retention import services

    days = services.parse_days(args.days)
    with database(settings).session() as session:
        services.set_policy(session, args.category, days, operator())
    print(f"{services.CATEGORIES[args.category]}: kept {services.keep_label(days)}")
    return 0


def cmd_purge(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.retention import services

    results = services.purge_expired(database(settings), settings.files_dir, datetime.now(UTC), by=operator())
    if not results:
        print("nothing to purge: every category is kept forever")
    for result in results:
        cutoff = utc(result.cutoff, zone=True) if result.cutoff else "-"
        print(f"{result.category}: {result.rows} rows and {result.files} files older than {cutoff} deleted")
    return 0


def cmd_delete_all(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.retention import services

    label = services.CATEGORIES[args.category]
    confirmation = args.confirm
    if confirmation is None:
        try:
            confirmation = input(f"Type {services.CONFIRMATION} to delete every {label}: ")
        except EOFError:
            confirmation = ""
    if confirmation != services.CONFIRMATION:
        print(f"callcenter: type {services.CONFIRMATION} to delete every {label}; nothing was deleted", file=sys.stderr)
        return 2
    result = services.delete_all(database(settings), settings.files_dir, args.category, confirmation, operator())
    print(f"{label}: {result.rows} rows and {result.files} files deleted")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `retention` to the `callcenter` command."""
    retention = sub.add_parser("retention", help="how long records are kept; purge; delete a category")
    actions = retention.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="each category: how long it is kept, its last purge").set_defaults(func=cmd_show)
    set_ = actions.add_parser("set", help="keep a category N days (1-999) or forever")
    set_.add_argument("category", choices=_CATEGORY_CODES)
    set_.add_argument("days", help="1-999 or forever")
    set_.set_defaults(func=cmd_set)
    actions.add_parser("purge", help="delete what is past its retention now (the daily job does it too)") \
        .set_defaults(func=cmd_purge)
    delete = actions.add_parser("delete-all", help="delete every record and file of a category")
    delete.add_argument("category", choices=_CATEGORY_CODES)
    delete.add_argument("--confirm", metavar="TEXT", help="YES to skip the question (anything else deletes nothing)")
    delete.set_defaults(func=cmd_delete_all)
