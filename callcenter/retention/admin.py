"""The retention page's side of the database (retention/http.py): the policies, the latest purges, and
"delete all" of a category. Retention applies to every unit, so only top admins see or change it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.errors import UserError
from callcenter.retention import services as retention
from callcenter.users.access import require_admin

log = logging.getLogger(__name__)

PURGES_SHOWN = 50


@dataclass(frozen=True)
class RetentionRow:
    category: str
    label: str
    days: int | None  # None: kept for ever


@dataclass(frozen=True)
class PurgeRow:
    at: datetime
    category: str
    kind: str  # expired, delete_all
    cutoff: datetime | None
    rows: int
    files: int
    by: str


@dataclass(frozen=True)
class RetentionView:
    policies: tuple[RetentionRow, ...]
    purges: tuple[PurgeRow, ...]


class RetentionAdmin:
    """Retention settings on the database; ``files_dir`` holds the files a purge deletes. Every method takes
    the id of the logged-in user; anyone but a top admin gets ``ActionRefused`` (403), bad input a
    ``UserError`` with a message for the user (400)."""

    def __init__(self, db: Database, files_dir: Path) -> None:
        self.db = db
        self.files_dir = files_dir

    async def retention(self, user_id: int) -> RetentionView:
        """The retention policy of every category and the latest purges."""
        def read(session: Session) -> RetentionView:
            require_admin(session, user_id, top=True)
            policies = retention.get_policies(session)
            return RetentionView(
                tuple(RetentionRow(code, label, policies.get(code)) for code, label in retention.CATEGORIES.items()),
                tuple(PurgeRow(p.at, p.category, p.kind, p.cutoff, p.rows, p.files, p.by)
                      for p in retention.purge_log(session, limit=PURGES_SHOWN)))

        return await in_thread(self.db, read)

    async def set_retention(self, user_id: int, days: Mapping[str, str]) -> None:
        """Sets the categories' policies from the form's text ("forever" or 1-999 days); all or none."""
        def save(session: Session) -> None:
            scope = require_admin(session, user_id, top=True)
            unknown = sorted(set(days) - set(retention.CATEGORIES))
            if unknown:
                raise UserError(f"unknown retention category {unknown[0]!r}")
            wanted: dict[str, int | None] = {}
            problems = []
            for code, label in retention.CATEGORIES.items():
                if code in days:
                    try:
                        wanted[code] = retention.parse_days(days[code])
                    except UserError as error:
                        problems.append(f"{label}: {error}")
            if problems:
                raise UserError("; ".join(problems))
            current = retention.get_policies(session)
            for code, value in wanted.items():
                if value != current.get(code):
                    retention.set_policy(session, code, value, by=scope.login)
                    log.info("admin: %s kept %s %s", scope.login, code,
                             "for ever" if value is None else f"{value} days")

        await in_thread(self.db, save)

    async def delete_all(self, user_id: int, category: str, confirmation: str) -> PurgeRow:
        """Deletes every record (and file) of a category; refused unless ``confirmation`` is "YES"."""
        def delete() -> PurgeRow:
            with self.db.session() as session:
                login = require_admin(session, user_id, top=True).login
            if category not in retention.CATEGORIES:
                raise UserError(f"unknown retention category {category!r}")
            result = retention.delete_all(self.db, self.files_dir, category, confirmation, by=login)
            log.info("admin: %s deleted all %s: %d rows, %d files", login, category, result.rows, result.files)
            return PurgeRow(datetime.now(UTC), result.category, result.kind, result.cutoff, result.rows,
                            result.files, login)

        return await asyncio.to_thread(delete)
