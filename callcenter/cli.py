"""The `callcenter` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from callcenter.cli_support import database
from callcenter.config import Settings, load_settings
from callcenter.errors import AlreadyRunning, CallcenterError, UserError

log = logging.getLogger("callcenter")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(),
            "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(settings: Settings | None, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings is not None and settings.log.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or (settings.log.level if settings else "info")).upper())
    # panoramisk logs every reconnect attempt; we log once when AMI goes and once when it is back.
    logging.getLogger("callcenter.ami.panoramisk").setLevel(logging.CRITICAL)
    logging.getLogger("panoramisk").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextlib.contextmanager
def single_instance(path: Path) -> Iterator[IO[str]]:
    """Holds an exclusive lock for the controller's lifetime; the file names the holder's pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(f"a controller is already running (pid {pid}, lock {path})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield handle
    finally:
        handle.close()


def running_controller_pid(path: Path) -> int | None:
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


# -- commands ---------------------------------------------------------------------------------------

def cmd_install(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.asterisk.install import Installer
    from callcenter.sounds.build import build_prompts

    started = time.monotonic()
    report = Installer(settings).install()
    made = build_prompts(Path(settings.paths.sounds_dir))
    if made:
        report.did(f"made prompts {', '.join(made)}")
    elapsed = time.monotonic() - started
    print(f"Asterisk: {report.asterisk}")
    print("; ".join(report.actions) + f" ({elapsed:.1f} s)" if report.actions
          else f"everything already installed ({elapsed:.2f} s)")
    return 0


def cmd_sounds(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.sounds.build import build_prompts

    made = build_prompts(Path(settings.paths.sounds_dir))
    print("made " + ", ".join(made) if made else "prompts up to date")
    return 0


def cmd_config_check(settings: Settings, _args: argparse.Namespace) -> int:
    print(f"{settings.source}: ok")
    return 0


async def _run_controller(settings: Settings) -> int:
    from callcenter.app import Controller

    controller = Controller(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    reloads: set[asyncio.Task[list[str]]] = set()

    def reload_done(task: asyncio.Task[list[str]]) -> None:
        reloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reloading users failed: %s", task.exception())

    def reload() -> None:
        task = asyncio.ensure_future(controller.reload_users())
        reloads.add(task)
        task.add_done_callback(reload_done)

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, controller.reload_flows)
    try:
        await controller.start()
    except BaseException:
        await controller.stop()
        raise
    print(controller.banner(), flush=True)
    await stop.wait()
    log.info("stopping")
    await controller.stop()
    return 0


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.app import lock_path

    with single_instance(lock_path(settings)):
        return asyncio.run(_run_controller(settings))


def _notify_controller(settings: Settings) -> None:
    from callcenter.app import lock_path

    pid = running_controller_pid(lock_path(settings))
    if pid:
        os.kill(pid, signal.SIGHUP)
        print(f"the running controller (pid {pid}) reloads its phones now")


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.users import services as users

    db = database(settings)
    if args.action == "list":
        with db.session() as session:
            rows = users.list_users(session)
            # No SIP passwords: only their digests are stored (`users passwd --generate` makes a new one).
            print(f"{'login':<12} {'ext':<6} {'name':<22} {'roles':<20} org unit")
            for u in rows:
                print(f"{u.login:<12} {u.extension or '-':<6} {u.name:<22} {u.roles:<20} "
                      f"{u.org_unit.name if u.org_unit else '-'}")
        return 0
    with db.session() as session:
        if args.action == "add":
            created = users.add_user(session, name=args.name, extension=args.extension, login=args.login,
                                     roles=args.roles.split(","), org_unit=args.org_unit,
                                     sip_password=args.sip_password, panel_password=args.password)
            print(f"added {created.user.login} ({created.user.name})")
            if created.sip_password:
                print(f"  SIP user {created.user.extension}, password {created.sip_password}")
            print(f"  panel login {created.user.login}, password {created.panel_password}")
            print("  (shown this once: only hashes of the passwords are stored)")
        elif args.action == "passwd":
            changed = users.set_passwords(session, args.user, sip_password=args.sip_password,
                                          panel_password=args.password, generate=args.generate)
            if changed.sip_password:
                print(f"SIP password of {changed.user.extension}: {changed.sip_password}")
            if changed.panel_password:
                print(f"panel password of {changed.user.login}: {changed.panel_password}")
            print("(shown this once: only hashes of the passwords are stored)")
        elif args.action == "remove":
            removed = users.remove_user(session, args.user)
            print(f"removed {removed.login}")
        elif args.action == "roles":
            user = users.set_roles(session, args.user, args.roles.split(","))
            print(f"{user.login}: {user.roles}")
        elif args.action in ("disable", "enable"):
            user = users.set_disabled(session, args.user, args.action == "disable")
            print(f"{user.login}: {'disabled, sessions ended' if user.disabled else 'enabled'}")
        elif args.action in ("grant-all-units", "revoke-all-units"):
            from callcenter.users import units
            user = units.grant_all_units(session, args.user, args.action == "grant-all-units")
            print(f"{user.login}: {'every unit' if user.all_units else 'only the units they manage'}")
    _notify_controller(settings)
    return 0


def cmd_units(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.users import units

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [n.strip() for n in text.split(",") if n.strip()]
    with database(settings).session() as session:
        if args.action == "list":
            for view in units.list_units(session):
                print(f"{view.name} (id {view.id})\n  members: {', '.join(view.members) or '-'}\n"
                      f"  managers: {', '.join(view.admins) or '-'}")
        elif args.action == "save":
            saved = units.save_unit(session, args.name, members=names(args.members), admins=names(args.admins))
            print(f"saved unit {saved.name} (id {saved.id})")
        elif args.action == "remove":
            units.remove_unit(session, args.name, managers_to=args.managers_to, drop_managers=args.drop_managers)
            print(f"removed unit {args.name}")
    # Nothing to tell a running controller: it reads units from the database whenever it needs one.
    return 0


def cmd_monitor_groups(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.monitor import groups

    with database(settings).session() as session:
        if args.action == "list":
            for view in groups.list_groups(session):
                agents = "every agent" if view.all_agents else ", ".join(view.agents) or "-"
                origin = " (from the configuration)" if view.from_config else ""
                print(f"{view.name}{origin}\n  supervisors: {', '.join(view.supervisors)}\n  agents:      {agents}")
        elif args.action == "save":
            groups.save_group(session, args.name, [s.strip() for s in args.supervisors.split(",") if s.strip()],
                              [a.strip() for a in args.agents.split(",") if a.strip()])
            print(f"saved monitoring group {args.name}")
        elif args.action == "remove":
            groups.remove_group(session, args.name)
            print(f"removed monitoring group {args.name}")
    if args.action != "list":
        _notify_controller(settings)  # the running controller reloads who may monitor whom
    return 0


def _prompt_catalog(settings: Settings) -> Any:
    from callcenter.asterisk.layout import resolve_layout
    from callcenter.errors import ProvisioningError
    from callcenter.ivr.prompts import PromptCatalog

    library: Path | None = Path("/usr/share/asterisk/sounds")
    try:
        layout = resolve_layout(settings)
        if layout.root is not None:
            library = layout.root / "usr/share/asterisk/sounds"
    except ProvisioningError:
        pass  # checking flows works without Asterisk: only our own prompts count then
    return PromptCatalog(Path(settings.paths.sounds_dir).resolve(), "", library)


def cmd_ivr(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.app import lock_path
    from callcenter.ivr.records import ivr_report
    from callcenter.ivr.registry import check_files

    if args.action == "check":
        directory = Path(settings.paths.ivr_dir)
        files = [Path(f) for f in args.files] or sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        problems = check_files(files, _prompt_catalog(settings).exists)
        for problem in problems:
            print(problem)
        print(f"{len(files)} flow file(s), {len(problems)} problem(s)", file=sys.stderr)
        return 1 if problems else 0
    if args.action == "reload":
        pid = running_controller_pid(lock_path(settings))
        if not pid:
            print("no controller is running: flows are loaded when it starts")
            return 1
        os.kill(pid, signal.SIGUSR1)
        print(f"the running controller (pid {pid}) reloads its flows now; problems go to its log")
        return 0
    since = None
    if args.days:
        from datetime import UTC, datetime, timedelta
        since = datetime.now(UTC) - timedelta(days=args.days)
    with database(settings).session() as session:
        rows = ivr_report(session, since=since, flow=args.flow)
    print(f"{'flow':<14} {'node':<20} {'passed':>7} {'hung up':>8}  keys")
    for row in rows:
        keys = ", ".join(f"{k}: {n}" for k, n in sorted(row.keys.items()))
        print(f"{row.flow:<14} {row.node:<20} {row.passed:>7} {row.hangups:>8}  {keys}")
    return 0


def cmd_holidays(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from sqlalchemy import select

    from callcenter.db.models import Holiday

    with database(settings).session() as session:
        if args.action == "add":
            try:
                day = date.fromisoformat(args.date)
            except ValueError:
                raise UserError(f"--date {args.date!r}: use YYYY-MM-DD") from None
            if session.scalar(select(Holiday).where(Holiday.day == day)) is not None:
                raise UserError(f"{day} is already a holiday")
            session.add(Holiday(day=day, name=args.name, prompt=args.prompt or ""))
            print(f"added {day} {args.name}")
        elif args.action == "remove":
            holiday = session.scalar(select(Holiday).where(Holiday.day == date.fromisoformat(args.date)))
            if holiday is None:
                raise UserError(f"no holiday on {args.date}")
            session.delete(holiday)
            print(f"removed {args.date}")
        else:
            for holiday in session.scalars(select(Holiday).order_by(Holiday.day)):
                print(f"{holiday.day}  {holiday.name:<30} prompt {holiday.prompt or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description="Call-centre server on Asterisk")
    parser.add_argument("--config", help="settings file (default config/callcenter.toml or $CALLCENTER_CONFIG)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="start Asterisk, the controller and the panel").set_defaults(func=cmd_run)
    ast = sub.add_parser("asterisk", help="Asterisk provisioning")
    ast_sub = ast.add_subparsers(dest="action", required=True)
    ast_sub.add_parser("install", help="install Asterisk 20+ and the tools we use (idempotent)") \
        .set_defaults(func=cmd_install)
    sub.add_parser("sounds", help="make our prompts from sounds/prompts.toml").set_defaults(func=cmd_sounds)
    config = sub.add_parser("config", help="configuration")
    config.add_subparsers(dest="action", required=True).add_parser("check", help="validate the settings") \
        .set_defaults(func=cmd_config_check)

    users = sub.add_parser("users", help="manage users and their phones")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="add a user")
    add.add_argument("--name", required=True)
    add.add_argument("--extension", help="SIP extension (omit for a panel-only user)")
    add.add_argument("--login", help="panel login (default: the extension)")
    add.add_argument("--roles", default="agent", help="comma-separated: agent, supervisor, admin")
    add.add_argument("--org-unit")
    add.add_argument("--sip-password", help="default: generated")
    add.add_argument("--password", help="panel password (default: generated)")
    users_sub.add_parser("list", help="list users")
    passwd = users_sub.add_parser("passwd", help="set a user's passwords")
    passwd.add_argument("user", help="extension or login")
    passwd.add_argument("--sip-password")
    passwd.add_argument("--password", help="panel password")
    passwd.add_argument("--generate", action="store_true", help="generate new passwords")
    remove = users_sub.add_parser("remove", help="remove a user")
    remove.add_argument("user", help="extension or login")
    roles = users_sub.add_parser("roles", help="set a user's roles (the last top admin keeps admin)")
    roles.add_argument("user", help="extension or login")
    roles.add_argument("--roles", required=True, help="comma-separated: agent, supervisor, admin")
    for action, text in (("disable", "disable a user: no login anywhere, every session ended"),
                         ("enable", "enable a disabled user"),
                         ("grant-all-units", "give an admin or supervisor every unit (top scope)"),
                         ("revoke-all-units", "take the grant of every unit back")):
        users_sub.add_parser(action, help=text).add_argument("user", help="extension or login")
    users.set_defaults(func=cmd_users)

    units = sub.add_parser("units", help="organisational units: members, and the admins and supervisors "
                           "who manage them")
    units_sub = units.add_subparsers(dest="action", required=True)
    units_sub.add_parser("list", help="list units")
    save = units_sub.add_parser("save", help="create or change a unit")
    save.add_argument("name")
    save.add_argument("--members", help="comma-separated logins or extensions (replaces the list)")
    save.add_argument("--admins", help="comma-separated logins of its managers, admins and supervisors "
                      "(replaces the list)")
    remove_unit = units_sub.add_parser("remove", help="remove a unit (its users stay)")
    remove_unit.add_argument("name")
    managers = remove_unit.add_mutually_exclusive_group()
    managers.add_argument("--managers-to", metavar="UNIT", help="its managers manage UNIT instead")
    managers.add_argument("--drop-managers", action="store_true", help="its managers lose it")
    units.set_defaults(func=cmd_units)

    monitor = sub.add_parser("monitor-groups", help="who may monitor whom (#44 + extension, the panel)")
    monitor_sub = monitor.add_subparsers(dest="action", required=True)
    monitor_sub.add_parser("list", help="list groups")
    save_group = monitor_sub.add_parser("save", help="create or replace a group")
    save_group.add_argument("name")
    save_group.add_argument("--supervisors", required=True, help="comma-separated extensions or logins")
    save_group.add_argument("--agents", required=True, help='comma-separated extensions, or "*" for every agent')
    remove_group = monitor_sub.add_parser("remove", help="remove a group")
    remove_group.add_argument("name")
    monitor.set_defaults(func=cmd_monitor_groups)

    ivr = sub.add_parser("ivr", help="IVR flows")
    ivr_sub = ivr.add_subparsers(dest="action", required=True)
    check = ivr_sub.add_parser("check", help="validate flow files (default: every file in ivr_flows/)")
    check.add_argument("files", nargs="*")
    ivr_sub.add_parser("reload", help="make the running controller load changed flows now")
    report = ivr_sub.add_parser("report", help="per flow and node: callers, keys, hang-ups")
    report.add_argument("--flow")
    report.add_argument("--days", type=int, help="only the last N days")
    ivr.set_defaults(func=cmd_ivr)

    holidays = sub.add_parser("holidays", help="days the IVR's holiday nodes treat as holidays")
    holidays_sub = holidays.add_subparsers(dest="action", required=True)
    add_holiday = holidays_sub.add_parser("add")
    add_holiday.add_argument("--date", required=True, help="YYYY-MM-DD")
    add_holiday.add_argument("--name", required=True)
    add_holiday.add_argument("--prompt", help="prompt played on that day (e.g. holiday-closed)")
    holidays_sub.add_parser("list")
    remove_holiday = holidays_sub.add_parser("remove")
    remove_holiday.add_argument("--date", required=True)
    holidays.set_defaults(func=cmd_holidays)

    from callcenter.dialer.cli import register as register_dialer
    from callcenter.export.cli import register as register_export
    from callcenter.reports.cli import register as register_reports
    from callcenter.retention.cli import register as register_retention
    from callcenter.users.tokens_cli import register as register_api_tokens
    from callcenter.webhooks.cli import register as register_webhooks
    register_export(sub)
    register_retention(sub)
    register_dialer(sub)
    register_api_tokens(sub)
    register_webhooks(sub)
    register_reports(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        setup_logging(settings, args.log_level)
        return int(args.func(settings, args))
    except AlreadyRunning as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 3
    except UserError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2
    except CallcenterError as exc:
        if settings is None:
            setup_logging(None)
        print(f"callcenter: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
