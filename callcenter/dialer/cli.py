"""``callcenter dialer``: campaigns, contact lists, the do-not-call list, reports and the pacing simulator.

    callcenter dialer campaigns
    callcenter dialer start CAMPAIGN [--confirm]     (--confirm: start a campaign over its abandon target)
    callcenter dialer stop CAMPAIGN                  (a running controller follows within 2 seconds)
    callcenter dialer import CAMPAIGN FILE --number COLUMN [--name COLUMN] [--timezone COLUMN] [--keep A,B]
    callcenter dialer dnc add|remove NUMBER... [--campaign CAMPAIGN] [--region CC]
    callcenter dialer dnc import FILE [--campaign CAMPAIGN] [--region CC]
    callcenter dialer dnc list [--campaign CAMPAIGN]
    callcenter dialer report CAMPAIGN [--from DAY] [--to DAY]   (CSV on stdout; docs/dialer-reports.md)
    callcenter dialer simulate [--agents 5,20,100] [--json] [--plot FILE]   (docs/dialer-pacing.md)
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.cli_support import database
from callcenter.dialer.pacing import OVER_TARGET_AGENTS_PER_CALL
from callcenter.errors import UserError

if TYPE_CHECKING:
    from callcenter.config import Settings
    from callcenter.dialer.reports import WindowRate
    from callcenter.dialer.settings import CampaignSpec

# Rows of an import's problems printed at most (all are stored with the list).
SHOWN_PROBLEMS = 200


def _spec(settings: Settings, name: str) -> CampaignSpec:
    spec = settings.campaigns.get(name)
    if spec is None:
        known = ", ".join(settings.campaigns) or "none"
        raise UserError(f"no campaign {name!r} in {settings.source} (configured: {known})")
    return spec


def cmd_campaigns(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from callcenter.db.models import DialerContact
    from callcenter.dialer import store

    with database(settings).session() as session:
        running = store.running_campaigns(session)
        counts: dict[str, dict[str, int]] = {}
        for campaign, status, count in session.execute(
                select(DialerContact.campaign, DialerContact.status, func.count())
                .group_by(DialerContact.campaign, DialerContact.status)):
            counts.setdefault(campaign, {})[status] = count
    if not settings.campaigns:
        print(f"no campaigns are configured in {settings.source} ([campaigns.<name>])")
    for name, spec in settings.campaigns.items():
        state = "running" if name in running else "stopped"
        by_status = ", ".join(f"{s} {n}" for s, n in sorted(counts.get(name, {}).items())) or "no contacts"
        print(f"{name}: {spec.mode}, queue {spec.queue}, {state}; {by_status}")
    return 0


def describe_window(window: WindowRate, target: float) -> str:
    """One abandon window for a person: "24h 5.2% (13 abandoned of 250 people reached; target 3%)"."""
    if window.rate is None:
        return f"{window.window} -- (nobody reached yet; target {target:g}%)"
    state = "; OVER TARGET" if window.over_target else ""
    return (f"{window.window} {window.rate:.1f}% ({window.abandoned:g} abandoned of {window.reached:g} people "
            f"reached; target {target:g}%{state})")


def cmd_start_stop(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.dialer import reports, store

    spec = _spec(settings, args.campaign)
    start = args.action == "start"
    now = datetime.now(UTC)
    with database(settings).session() as session:
        if start:
            others = [n for n in store.running_campaigns(session)
                      if n != spec.name and n in settings.campaigns and settings.campaigns[n].queue == spec.queue]
            if others:
                raise UserError(f"campaign {others[0]} already runs with queue {spec.queue}'s agents; stop it first")
            # The controller's windows live in its own process: these are counted from the same attempts.
            windows = reports.abandon_rates(session, spec, now)
            for window in windows:
                print(f"campaign {spec.name} abandon rate {describe_window(window, spec.abandon_target)}")
            over = [w for w in windows if w.over_target]
            if over and not args.confirm:
                figures = ", ".join(f"{w.window} {w.rate:.1f}%" for w in over)
                raise UserError(f"campaign {spec.name} is over its abandon target of {spec.abandon_target:g}% "
                                f"({figures}): while it is, every mode dials 1 call per "
                                f"{OVER_TARGET_AGENTS_PER_CALL} free agents. Not started; add --confirm to start "
                                "it anyway")
        store.set_running(session, spec.name, start, "cli", now)
    print(f"campaign {spec.name} {'started' if start else 'stopped'} (a running controller follows within 2 s)")
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.dialer import store
    from callcenter.dialer.contacts import ColumnMap

    spec = _spec(settings, args.campaign)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    keep: tuple[str, ...] | None = None
    if args.keep is not None:
        keep = tuple(c.strip() for c in args.keep.split(",") if c.strip())
    mapping = ColumnMap(number=args.number, timezone=args.timezone, name=args.name, keep=keep)
    with database(settings).session() as session, path.open(encoding="utf-8-sig", newline="") as source:
        try:
            done = store.import_list(session, spec.name, path.name, source, mapping, region=spec.region,
                                     timezone=spec.timezone or None, by="cli", now=datetime.now(UTC))
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
    result = done.result
    problems = [("rejected", r) for r in result.rejected] + [("duplicate", r) for r in result.duplicates] + \
        [("do-not-call", r) for r in result.do_not_call]
    for kind, problem in sorted(problems, key=lambda p: p[1].line)[:SHOWN_PROBLEMS]:
        print(f"{path}:{problem.line}: {kind}: {problem.reason}")
    if len(problems) > SHOWN_PROBLEMS:
        print(f"... and {len(problems) - SHOWN_PROBLEMS} more (all are kept with list {done.list_id})")
    print(f"list {done.list_id} into campaign {spec.name}: {result.summary()}")
    return 0


def cmd_dnc(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.dialer import store
    from callcenter.dialer.contacts import normalise_number, parse_dnc

    if args.action in ("add", "remove") and not args.numbers:
        raise UserError(f"dnc {args.action}: give at least one number")
    if args.action == "import" and len(args.numbers) != 1:
        raise UserError("dnc import: give one file")
    campaign = args.campaign or ""
    region = args.region or (_spec(settings, campaign).region if campaign else "US")
    if campaign:
        _spec(settings, campaign)
    now = datetime.now(UTC)
    with database(settings).session() as session:
        if args.action == "list":
            for number in sorted(store.dnc_numbers(session, campaign) if campaign else
                                 store.dnc_numbers(session, "")):
                print(number)
            return 0
        if args.action == "import":
            path = Path(args.numbers[0])
            if not path.is_file():
                raise UserError(f"{path}: no such file")
            with path.open(encoding="utf-8-sig", newline="") as source:
                numbers, rejected = parse_dnc(source, region)
            for problem in rejected:
                print(f"{path}:{problem.line}: rejected: {problem.reason}")
            added = store.add_dnc(session, numbers, campaign, f"import {path.name}", now)
            print(f"{added} number(s) added to the {campaign or 'global'} do-not-call list "
                  f"({len(numbers) - added} already there, {len(rejected)} rejected)")
            return 0
        good: list[str] = []
        for raw in args.numbers:
            try:
                good.append(normalise_number(raw, region))
            except ValueError as exc:
                raise UserError(f"{raw!r}: {exc}") from None
        if args.action == "add":
            added = store.add_dnc(session, good, campaign, "cli", now)
            print(f"{added} number(s) added to the {campaign or 'global'} do-not-call list")
        else:
            removed = sum(store.remove_dnc(session, number, campaign) for number in good)
            print(f"{removed} number(s) removed from the {campaign or 'global'} do-not-call list")
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    import csv
    from datetime import date, timedelta

    from callcenter.dialer import reports

    spec = _spec(settings, args.campaign)
    today = datetime.now(UTC).date()
    try:
        last = date.fromisoformat(args.to) if args.to else today
        first = date.fromisoformat(args.from_) if args.from_ else last - timedelta(days=6)
    except ValueError as exc:
        raise UserError(f"--from/--to: {exc}; use YYYY-MM-DD") from None
    if first > last:
        raise UserError(f"--from {first} is after --to {last}")
    if (last - first).days > 366:
        raise UserError("a report covers a year at most")
    with database(settings).session() as session:
        days = reports.campaign_days(session, spec.name, first, last, target=spec.abandon_target,
                                     windows=spec.abandon_windows,
                                     amd_false_positive_rate=spec.amd_false_positive_rate,
                                     now=datetime.now(UTC))
    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    for row in reports.csv_rows(days):
        writer.writerow(row)
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.dialer.sim import cli as simcli

    return simcli.run(args)


def register(sub: Any) -> None:
    dialer = sub.add_parser("dialer", help="outbound campaigns: lists, do-not-call, start/stop, reports, simulator")
    dialer_sub = dialer.add_subparsers(dest="dialer_action", required=True)
    dialer_sub.add_parser("campaigns", help="configured campaigns, run state and contacts by status") \
        .set_defaults(func=cmd_campaigns)
    for action in ("start", "stop"):
        parser = dialer_sub.add_parser(action, help=f"{action} a campaign")
        parser.add_argument("campaign")
        parser.set_defaults(func=cmd_start_stop, action=action, confirm=False)
        if action == "start":
            parser.add_argument("--confirm", action="store_true",
                                help="start it even though an abandon window is over the target")
    imp = dialer_sub.add_parser("import", help="import a CSV contact list; bad rows are reported, good ones kept")
    imp.add_argument("campaign")
    imp.add_argument("file")
    imp.add_argument("--number", required=True, help="the column with the phone number")
    imp.add_argument("--name", help="the column with the contact's name")
    imp.add_argument("--timezone", help="a column with the contact's time zone (else from the number)")
    imp.add_argument("--keep", help="extra columns kept as contact fields, comma-separated (default: all)")
    imp.set_defaults(func=cmd_import)
    dnc = dialer_sub.add_parser("dnc", help="the do-not-call list (global, or one campaign's)")
    dnc.add_argument("action", choices=("add", "remove", "import", "list"))
    dnc.add_argument("numbers", nargs="*", help="numbers (add, remove) or one file (import)")
    dnc.add_argument("--campaign", help="the campaign's own list (default: the global list)")
    dnc.add_argument("--region", help="country of numbers written without +code (default: the campaign's, or US)")
    dnc.set_defaults(func=cmd_dnc)
    report = dialer_sub.add_parser("report", help="a campaign's figures per day (UTC) as CSV")
    report.add_argument("campaign")
    report.add_argument("--from", dest="from_", help="first day, YYYY-MM-DD (default: 6 days before --to)")
    report.add_argument("--to", help="last day, YYYY-MM-DD (default: today)")
    report.set_defaults(func=cmd_report)
    simulate = dialer_sub.add_parser("simulate", help="compare pacers on a model of agents and contacts")
    from callcenter.dialer.sim import cli as simcli
    simcli.add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

