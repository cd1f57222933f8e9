"""What every `callcenter` subcommand shares: the migrated database, who is acting (for the audit columns)
and times printed in UTC. Imported lazily by the commands, so `callcenter --help` stays fast."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.config import Settings
    from callcenter.db.engine import Database


def database(settings: Settings) -> Database:
    from callcenter.db.engine import Database

    db = Database(settings.database_url)
    db.migrate()
    return db


def operator() -> str:
    """``cli:<login>`` of whoever runs the command (``cli`` in a bare container with no user name)."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def utc(at: datetime | None, seconds: bool = False, zone: bool = False) -> str:
    """``YYYY-MM-DD HH:MM[:SS][ UTC]``, or ``-`` for no time."""
    if at is None:
        return "-"
    text = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if zone else text
