"""Data retention (RET-1, RET-2): how long each category of records is kept, and removing them.

A policy says how many days (1-999) a category is kept; no policy, or ``days`` None, keeps it for
ever. ``purge_expired`` runs daily (``[export] purge_at``) and removes what is older than each
policy; ``delete_all`` removes a whole category once the admin has typed YES. Both work in batches
of ``BATCH`` rows per transaction, so a large purge neither holds one long lock nor loads every row,
and delete files only after the transaction that removed their rows committed: a crash can leave an
orphan file, never a row pointing at nothing. See docs/retention.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdAttempt,
    AcdCall,
    AcdDestination,
    AgentWorkLog,
    Call,
    CallEvent,
    CallLeg,
    Cdr,
    CdrUser,
    IvrStep,
    IvrVisit,
    PurgeLog,
    Recording,
    RecordingPause,
    RetentionPolicy,
)
from callcenter.errors import UserError

log = logging.getLogger(__name__)

CATEGORIES: dict[str, str] = {
    "cdrs": "Call detail records (CDRs)",
    "recordings": "Call recordings",
    "queue_calls": "Queue call records",
    "ivr_paths": "IVR paths",
    "work_logs": "Agent work logs",
    "call_events": "Call events",
}
DAYS_MIN = 1
DAYS_MAX = 999
# Rows removed per transaction.
BATCH = 2000
CONFIRMATION = "YES"


@dataclass(frozen=True)
class PurgeResult:
    category: str
    kind: str  # "expired" | "delete_all"
    cutoff: datetime | None  # rows older than this went; None: every row
    rows: int
    files: int


# -- policies -------------------------------------------------------------------------------------


def _check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise UserError(f"unknown retention category {category!r}: use one of {', '.join(CATEGORIES)}")
    return category


def _check_days(days: object) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not DAYS_MIN <= days <= DAYS_MAX:
        raise UserError(f"keep {days!r}: give a number of days from {DAYS_MIN} to {DAYS_MAX}, or forever")
    return days


def parse_days(text: str) -> int | None:
    """What an admin typed for a policy: "forever" or empty -> None, "30" -> 30."""
    value = text.strip()
    if value.lower() in ("", "forever"):
        return None
    if not re.fullmatch(r"[0-9]+", value):
        raise UserError(f"keep {text!r}: give a number of days from {DAYS_MIN} to {DAYS_MAX}, or forever")
    return _check_days(int(value))


def keep_label(days: int | None) -> str:
    """"forever", "1 day", "30 days"."""
    if days is None:
        return "forever"
    return "1 day" if days == 1 else f"{days} days"


def get_policies(session: Session) -> dict[str, int | None]:
    """Days kept per category, every category in CATEGORIES order; None is for ever."""
    stored = {category: days for category, days in session.execute(
        select(RetentionPolicy.category, RetentionPolicy.days))}
    policies: dict[str, int | None] = {}
    for category in CATEGORIES:
        days = stored.get(category)
        if days is not None and not DAYS_MIN <= days <= DAYS_MAX:
            # Never let a hand-edited 0 or -1 turn the daily purge into "delete everything".
            log.warning("retention: %s has an invalid policy of %s days: kept forever", category, days)
            days = None
        policies[category] = days
    return policies


def set_policy(session: Session, category: str, days: int | None, by: str) -> None:
    """Keeps ``category`` for ``days`` days (1-999), or for ever (None)."""
    _check_category(category)
    days = _check_days(days)
    now = datetime.now(UTC)
    policy = session.get(RetentionPolicy, category)
    if policy is None:
        session.add(RetentionPolicy(category=category, days=days, updated_at=now, updated_by=by))
    else:
        policy.days, policy.updated_at, policy.updated_by = days, now, by
    log.info("retention: %s now kept %s (set by %s)", category, keep_label(days), by)


def purge_log(session: Session, limit: int = 50) -> list[PurgeLog]:
    """The latest purges and deletions, newest first."""
    return list(session.scalars(select(PurgeLog).order_by(PurgeLog.at.desc(), PurgeLog.id.desc()).limit(limit)))


def last_purges(session: Session) -> dict[str, PurgeLog]:
    """The latest purge or deletion of each category that had one."""
    latest = select(func.max(PurgeLog.id)).group_by(PurgeLog.category)
    return {entry.category: entry for entry in session.scalars(select(PurgeLog).where(PurgeLog.id.in_(latest)))}


# -- what each category is -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    """Where a category's rows are and what goes with them."""

    key: QueryableAttribute[Any]  # the primary key: batches walk it in order
    time: QueryableAttribute[datetime]  # what the cutoff is compared to
    children: tuple[tuple[type[Any], QueryableAttribute[Any]], ...] = ()  # rows pointing at key: go first
    # Rows the controller is still writing (a call in progress): "delete all" leaves them.
    live: ColumnElement[bool] | None = None
    path: QueryableAttribute[str] | None = None  # a file under the files directory (and units' copies)


_ROWS: dict[str, _Rows] = {
    "cdrs": _Rows(Cdr.id, Cdr.calldate, ((CdrUser, CdrUser.cdr_id),)),
    "recordings": _Rows(Recording.id, Recording.started_at, ((RecordingPause, RecordingPause.recording_id),),
                        live=Recording.status == "recording", path=Recording.path),
    # The attempts and destinations would go by ON DELETE CASCADE; deleting them first does not
    # depend on SQLite's foreign_keys pragma and is one statement per batch instead of a cascade.
    "queue_calls": _Rows(AcdCall.id, AcdCall.entered_at,
                         ((AcdAttempt, AcdAttempt.call_id), (AcdDestination, AcdDestination.call_id)),
                         live=AcdCall.ended_at.is_(None)),
    "ivr_paths": _Rows(IvrVisit.id, IvrVisit.started_at, ((IvrStep, IvrStep.visit_id),),
                       live=IvrVisit.ended_at.is_(None)),
    "work_logs": _Rows(AgentWorkLog.id, AgentWorkLog.at),
    "call_events": _Rows(CallEvent.id, CallEvent.event_time),
}

# Export files named by the day they cover (UTC): folder under each files root, and name pattern.
_DAY_FILES: dict[str, tuple[str, re.Pattern[str]]] = {
    "cdrs": ("CDRs", re.compile(r"(\d{4}-\d{2}-\d{2})\.csv")),
    "queue_calls": ("QueueCalls", re.compile(r"(\d{4}-\d{2}-\d{2})-queue-calls\.zip")),
}


# -- removing --------------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _file_roots(files_dir: Path) -> list[Path]:
    """The files directory and every unit's copy of it (units/<id>/, hard links of recordings)."""
    units = files_dir / "units"
    if not units.is_dir():
        return [files_dir]
    return [files_dir, *sorted(path for path in units.iterdir() if path.is_dir())]


def _unlink(path: Path) -> bool:
    """Deletes one file; a file already gone is fine."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("retention: cannot delete %s: %s", path, exc)
        return False
    return True


def _delete_recording_files(roots: Sequence[Path], paths: Iterable[str]) -> int:
    deleted = 0
    day_folders: set[Path] = set()
    for text in paths:
        if not text:
            continue
        relative = PurePosixPath(text)
        if relative.is_absolute() or ".." in relative.parts:
            log.warning("retention: recording path %r is outside the files directory: not deleted", text)
            continue
        for root in roots:
            path = root.joinpath(*relative.parts)
            if _unlink(path):
                deleted += 1
                if len(relative.parts) >= 3:  # Recordings/<day>/<name>.mp3: the day folder may go
                    day_folders.add(path.parent)
    for folder in day_folders:
        with contextlib.suppress(OSError):  # not empty (or gone): it stays
            folder.rmdir()
    return deleted


def _delete_day_files(roots: Sequence[Path], category: str, before: date | None) -> int:
    """Deletes the category's daily export files of days before ``before`` (every one for None)."""
    folder, pattern = _DAY_FILES[category]
    deleted = 0
    for root in roots:
        directory = root / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            match = pattern.fullmatch(path.name)
            if match is None or not path.is_file():
                continue
            try:
                day = date.fromisoformat(match[1])
            except ValueError:
                continue
            if (before is None or day < before) and _unlink(path):
                deleted += 1
    return deleted


def _delete_rows(db: Database, rows: _Rows, cutoff: datetime | None, roots: Sequence[Path]) -> tuple[int, int]:
    """Deletes the rows older than ``cutoff`` (every row but live ones for None), BATCH per transaction."""
    removed = files = 0
    after: Any = None
    while True:
        columns: list[Any] = [rows.key] if rows.path is None else [rows.key, rows.path]
        query = select(*columns).order_by(rows.key).limit(BATCH)
        if after is not None:
            query = query.where(rows.key > after)
        if cutoff is not None:
            query = query.where(rows.time < cutoff)
        elif rows.live is not None:
            query = query.where(~rows.live)
        with db.session() as session:
            batch = session.execute(query).all()
            ids = [row[0] for row in batch]
            if ids:
                for model, column in rows.children:
                    session.execute(delete(model).where(column.in_(ids)).execution_options(synchronize_session=False))
                session.execute(delete(rows.key.class_).where(rows.key.in_(ids))
                                .execution_options(synchronize_session=False))
        # Committed: only now do the files go.
        if rows.path is not None:
            files += _delete_recording_files(roots, (row[1] for row in batch))
        removed += len(ids)
        if len(ids) < BATCH:
            return removed, files
        after = ids[-1]


def _collect_calls(db: Database, ended_before: datetime | None) -> int:
    """Deletes raw calls (and their legs) that are over and have neither a CDR nor an event left."""
    removed = 0
    after = 0
    while True:
        query = (select(Call.id)
                 .where(Call.id > after, Call.state != "active", Call.ended_at.is_not(None),
                        ~exists().where(Cdr.call_id == Call.id), ~exists().where(CallEvent.call_id == Call.id))
                 .order_by(Call.id).limit(BATCH))
        if ended_before is not None:
            query = query.where(Call.ended_at < ended_before)
        with db.session() as session:
            ids = list(session.scalars(query))
            legs = session.execute(select(CallLeg.id, CallLeg.call_id).where(CallLeg.call_id.in_(ids))).all() \
                if ids else []
            # An event of another call can name one of these legs (LINKEDID_END of a channel that moved):
            # such a call stays until that event is purged.
            referenced: set[int | None] = set()
            for chunk in _chunks([leg_id for leg_id, _ in legs]):
                referenced.update(session.scalars(select(CallEvent.leg_id).where(CallEvent.leg_id.in_(chunk))
                                                  .distinct()))
            kept = {call_id for leg_id, call_id in legs if leg_id in referenced}
            doomed = [call_id for call_id in ids if call_id not in kept]
            if doomed:
                session.execute(delete(CallLeg).where(CallLeg.call_id.in_(doomed))
                                .execution_options(synchronize_session=False))
                session.execute(delete(Call).where(Call.id.in_(doomed)).execution_options(synchronize_session=False))
        removed += len(doomed)
        if len(ids) < BATCH:
            break
        after = ids[-1]
    if removed:
        log.info("retention: %d raw call(s) with no CDR and no events left deleted", removed)
    return removed


def _purge_category(db: Database, files_dir: Path, category: str, cutoff: datetime | None) -> tuple[int, int]:
    roots = _file_roots(files_dir)
    rows, files = _delete_rows(db, _ROWS[category], cutoff, roots)
    if category in _DAY_FILES:
        # A day's file holds that whole day (UTC): it goes once the whole day is past the cutoff.
        files += _delete_day_files(roots, category, None if cutoff is None else cutoff.astimezone(UTC).date())
    return rows, files


def _record(db: Database, result: PurgeResult, at: datetime, by: str) -> None:
    with db.session() as session:
        session.add(PurgeLog(at=at, category=result.category, kind=result.kind, cutoff=result.cutoff,
                             rows=result.rows, files=result.files, by=by))


def purge_expired(db: Database, files_dir: Path, now: datetime, by: str = "scheduler") -> list[PurgeResult]:
    """Removes, in every category with a policy, the rows and files older than ``now`` minus its days."""
    if now.tzinfo is None:
        raise ValueError("purge_expired needs a timezone-aware now")
    with db.session() as session:
        policies = get_policies(session)
    results: list[PurgeResult] = []
    for category, days in policies.items():
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        rows, files = _purge_category(db, files_dir, category, cutoff)
        result = PurgeResult(category, "expired", cutoff, rows, files)
        _record(db, result, now, by)
        log.info("retention: %s older than %s (%s): %d row(s) and %d file(s) deleted", category,
                 cutoff.astimezone(UTC).isoformat(timespec="seconds"), keep_label(days), rows, files)
        results.append(result)
    cutoffs = [result.cutoff for result in results if result.cutoff is not None]
    if cutoffs:
        _collect_calls(db, min(cutoffs))
    return results


def delete_all(db: Database, files_dir: Path, category: str, confirmation: str, by: str) -> PurgeResult:
    """Removes every row and file of ``category``; ``confirmation`` must be exactly YES.

    Records the controller is still writing (a recording in progress, a call still queued or in the
    IVR) are left: they belong to calls that are not over yet.
    """
    label = CATEGORIES[_check_category(category)]
    if confirmation != CONFIRMATION:
        raise UserError(f"type {CONFIRMATION} to delete every {label}; nothing was deleted")
    rows, files = _purge_category(db, files_dir, category, None)
    result = PurgeResult(category, "delete_all", None, rows, files)
    _record(db, result, datetime.now(UTC), by)
    log.warning("retention: %s deleted every %s: %d row(s) and %d file(s)", by, label, rows, files)
    if category in ("cdrs", "call_events"):  # what keeps a raw call worth having
        _collect_calls(db, None)
    return result
