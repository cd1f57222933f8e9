"""The database side of the admin pages (web/admin.py): ``AdminService`` implements ``AdminBackend``.

Every read is limited to the asking admin's scope (users/units.py): a top admin (explicit all-units
grant) sees every row, a unit admin the recordings made in their units, the CDRs that a ``cdr_users``
row puts in one of their units, and the monitoring sessions whose supervisor or agent was in one of
their units, always by the unit stored on the record when it was made; an admin with no unit nothing.
Retention, units, monitoring groups and the outbound dialer's campaigns (their lists, reports and the
do-not-call list: ``dialer/reports.py``, ``dialer/store.py``) are global, so only top admins see or
change them. The
SQLAlchemy work is synchronous and runs in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from callcenter.db.engine import Database
from callcenter.db.models import Cdr, CdrUser, MonitorEvent, MonitorGroup, MonitorSession, Recording, User
from callcenter.dialer import reports, store
from callcenter.dialer.contacts import (
    ColumnMap,
    ContactListError,
    Rejected,
    check_region,
    normalise_number,
    parse_dnc,
    read_header,
)
from callcenter.dialer.settings import CampaignSpec
from callcenter.errors import ActionRefused, UserError
from callcenter.export.cdr import CDR_HEADER, csv_writer, format_cdr_row
from callcenter.monitor import groups as monitor_groups
from callcenter.retention import services as retention
from callcenter.users import units
from callcenter.users.units import AdminScope, admin_scope
from callcenter.web.backend import (
    AdminAccess,
    CdrFilters,
    MonitorGroupRow,
    MonitorLogRow,
    PurgeRow,
    RecordingFilters,
    RecordingRow,
    ResultPage,
    RetentionRow,
    RetentionView,
    UnitRow,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
CSV_CHUNK_ROWS = 1000
PURGES_SHOWN = 50
PER_PAGE_MAX = 500
NOT_ADMIN = "This page is for admins"
NOT_TOP = "Only a top admin may see or change this: it applies to every unit"
REPORT_DAYS_MAX = 366
PROBLEMS_PER_PAGE_MAX = 1000
UPLOAD_TOKEN_BYTES = 18
UPLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
UPLOAD_KEEP = timedelta(days=1)
UPLOAD_GONE = "The uploaded file is no longer here (it is kept for a day): upload it again"
COPY_CHUNK = 1 << 16


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _day_conditions(column: Any, day_from: date | None, day_to: date | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if day_from is not None:
        conditions.append(column >= day_start(day_from))
    if day_to is not None:
        conditions.append(column < day_start(day_to) + timedelta(days=1))
    return conditions


def recording_conditions(scope: AdminScope, filters: RecordingFilters) -> list[ColumnElement[bool]]:
    conditions = _day_conditions(Recording.started_at, filters.day_from, filters.day_to)
    if not scope.top:  # the unit the recording was made in, wherever its agent is now
        conditions.append(Recording.unit_id.in_(sorted(scope.unit_ids)))
    if filters.agent:
        agent = filters.agent
        agents = select(User.id).where(or_(User.extension == agent, User.login == agent,
                                           User.name.icontains(agent, autoescape=True)))
        conditions.append(or_(Recording.user_id.in_(agents), Recording.sip_username == agent))
    if filters.number:
        conditions.append(or_(Recording.caller.contains(filters.number, autoescape=True),
                              Recording.called.contains(filters.number, autoescape=True)))
    if filters.queue:
        conditions.append(Recording.queue == filters.queue)
    return conditions


def cdr_conditions(scope: AdminScope, filters: CdrFilters) -> list[ColumnElement[bool]]:
    conditions = _day_conditions(Cdr.calldate, filters.day_from, filters.day_to)
    if not scope.top:  # the units its users were in when the call happened
        conditions.append(exists().where(CdrUser.cdr_id == Cdr.id, CdrUser.unit_id.in_(sorted(scope.unit_ids))))
    if filters.number:
        conditions.append(or_(*(column.contains(filters.number, autoescape=True)
                                for column in (Cdr.src, Cdr.dst, Cdr.clid))))
    if filters.disposition:
        conditions.append(Cdr.disposition == filters.disposition)
    if filters.src_id:
        conditions.append(Cdr.src_id == filters.src_id)
    return conditions


def _cdr_columns() -> Select[Any]:
    """The CDR columns of the CSV (``CDR_HEADER``): rows, not ORM objects, for ``format_cdr_row``."""
    return select(*(getattr(Cdr, name) for name in CDR_HEADER))


def _paging(page: int, per_page: int, total: int, most: int = PER_PAGE_MAX) -> tuple[int, int]:
    """(pages, offset) for a valid page number; raises UserError otherwise."""
    if page < 1 or not 1 <= per_page <= most:
        raise UserError("page must be 1 or more")
    return max(1, -(-total // per_page)), (page - 1) * per_page


def _agent_label(name: str | None, extension: str | None, sip_username: str) -> str:
    if name is None:
        return sip_username
    return f"{name} ({extension})" if extension else name


class AdminService:
    """``AdminBackend`` on the database; ``files_dir`` holds the recordings' MP3s (``Recording.path``).
    ``on_monitor_groups_changed`` is called (on the event loop, after the commit) when a monitoring group
    was saved or removed, so the running controller reloads who may monitor whom. ``campaigns`` are the
    configured dialer campaigns (``Settings.campaigns``); a contact list uploaded for one waits in
    ``upload_dir`` (default ``dialer-uploads`` beside ``files_dir``) until it is imported."""

    def __init__(self, db: Database, files_dir: Path, *,
                 on_monitor_groups_changed: Callable[[], None] | None = None,
                 campaigns: Mapping[str, CampaignSpec] | None = None, upload_dir: Path | None = None) -> None:
        self.db = db
        self.files_dir = files_dir
        self.on_monitor_groups_changed = on_monitor_groups_changed
        self.campaigns: Mapping[str, CampaignSpec] = campaigns or {}
        # Contact lists wait here between their upload and their import (they hold personal data: 0700).
        self.upload_dir = upload_dir or files_dir.parent / "dialer-uploads"

    # --- scope ---------------------------------------------------------------------------------------

    def _scope(self, session: Session, user_id: int) -> AdminScope | None:
        user = session.get(User, user_id)
        return admin_scope(session, user) if user is not None else None

    def _require(self, session: Session, user_id: int, top: bool = False) -> AdminScope:
        scope = self._scope(session, user_id)
        if scope is None:
            raise ActionRefused(NOT_ADMIN, 403)
        if top and not scope.top:
            raise ActionRefused(NOT_TOP, 403)
        return scope

    async def _run(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.db.session() as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def scope(self, user_id: int) -> AdminAccess | None:
        def read(session: Session) -> AdminAccess | None:
            scope = self._scope(session, user_id)
            if scope is None:
                return None
            return AdminAccess(scope.login, scope.top, tuple(unit.name for unit in scope.units), scope.empty)

        return await self._run(read)

    # --- recordings ----------------------------------------------------------------------------------

    async def search_recordings(self, user_id: int, filters: RecordingFilters, page: int,
                                per_page: int) -> ResultPage[RecordingRow]:
        def read(session: Session) -> ResultPage[RecordingRow]:
            conditions = recording_conditions(self._require(session, user_id), filters)
            total = session.scalar(select(func.count()).select_from(Recording).where(*conditions)) or 0
            pages, offset = _paging(page, per_page, total)
            found = session.execute(
                select(Recording, User.name, User.extension).outerjoin(User, User.id == Recording.user_id)
                .where(*conditions).order_by(Recording.started_at.desc(), Recording.id.desc())
                .offset(offset).limit(per_page)).all()
            rows = tuple(
                RecordingRow(rec.id, rec.started_at, _agent_label(name, extension, rec.sip_username), rec.caller,
                             rec.called, rec.queue or "", float(rec.seconds) if rec.seconds is not None else None,
                             rec.size, rec.status)
                for rec, name, extension in found)
            return ResultPage(rows, page, pages, total)

        return await self._run(read)

    async def recording_file(self, user_id: int, recording_id: str) -> tuple[Path, str] | None:
        def find(session: Session) -> tuple[Path, str] | None:
            scope = self._scope(session, user_id)
            recording = session.get(Recording, recording_id)
            if scope is None or recording is None or not scope.covers(recording.unit_id):
                return None
            if recording.status != "ready" or not recording.path:
                return None
            root = self.files_dir.resolve()
            path = (root / recording.path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                return None
            return path, path.name

        return await self._run(find)

    # --- CDRs ----------------------------------------------------------------------------------------

    async def list_cdr(self, user_id: int, filters: CdrFilters, page: int,
                       per_page: int) -> ResultPage[tuple[str, ...]]:
        def read(session: Session) -> ResultPage[tuple[str, ...]]:
            conditions = cdr_conditions(self._require(session, user_id), filters)
            total = session.scalar(select(func.count()).select_from(Cdr).where(*conditions)) or 0
            pages, offset = _paging(page, per_page, total)
            found = session.execute(_cdr_columns().where(*conditions).order_by(Cdr.calldate.desc(), Cdr.id.desc())
                                    .offset(offset).limit(per_page))
            return ResultPage(tuple(tuple(format_cdr_row(row)) for row in found), page, pages, total,
                              header=CDR_HEADER)

        return await self._run(read)

    def _csv_chunks(self, user_id: int, filters: CdrFilters) -> Generator[bytes, None, None]:
        with self.db.session() as session:
            conditions = cdr_conditions(self._require(session, user_id), filters)
            buffer = io.StringIO()
            writer = csv_writer(buffer)
            writer.writerow(CDR_HEADER)
            query = (_cdr_columns().where(*conditions).order_by(Cdr.calldate, Cdr.id)
                     .execution_options(yield_per=CSV_CHUNK_ROWS))
            for count, row in enumerate(session.execute(query), 1):
                writer.writerow(format_cdr_row(row))
                if count % CSV_CHUNK_ROWS == 0:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()

    async def cdr_csv_chunks(self, user_id: int, filters: CdrFilters) -> AsyncGenerator[bytes, None]:
        """Reads the rows in a thread, ``CSV_CHUNK_ROWS`` at a time, so the file is never all in memory.
        Closing early (the client went away) waits for the chunk being read, then ends the query."""
        loop = asyncio.get_running_loop()
        chunks = self._csv_chunks(user_id, filters)
        pending: asyncio.Future[bytes | None] | None = None
        try:
            while True:
                pending = loop.run_in_executor(None, next, chunks, None)
                chunk = await asyncio.shield(pending)
                pending = None
                if chunk is None:
                    return
                yield chunk
        finally:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            await loop.run_in_executor(None, chunks.close)

    # --- retention -----------------------------------------------------------------------------------

    async def retention(self, user_id: int) -> RetentionView:
        def read(session: Session) -> RetentionView:
            self._require(session, user_id, top=True)
            policies = retention.get_policies(session)
            return RetentionView(
                tuple(RetentionRow(code, label, policies.get(code)) for code, label in retention.CATEGORIES.items()),
                tuple(PurgeRow(p.at, p.category, p.kind, p.cutoff, p.rows, p.files, p.by)
                      for p in retention.purge_log(session, limit=PURGES_SHOWN)))

        return await self._run(read)

    async def set_retention(self, user_id: int, days: Mapping[str, str]) -> None:
        def save(session: Session) -> None:
            scope = self._require(session, user_id, top=True)
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

        await self._run(save)

    async def delete_all(self, user_id: int, category: str, confirmation: str) -> PurgeRow:
        def delete() -> PurgeRow:
            with self.db.session() as session:
                login = self._require(session, user_id, top=True).login
            if category not in retention.CATEGORIES:
                raise UserError(f"unknown retention category {category!r}")
            result = retention.delete_all(self.db, self.files_dir, category, confirmation, by=login)
            log.info("admin: %s deleted all %s: %d rows, %d files", login, category, result.rows, result.files)
            return PurgeRow(datetime.now(UTC), result.category, result.kind, result.cutoff, result.rows,
                            result.files, login)

        return await asyncio.to_thread(delete)

    # --- units ---------------------------------------------------------------------------------------

    async def units(self, user_id: int) -> list[UnitRow]:
        def read(session: Session) -> list[UnitRow]:
            self._require(session, user_id, top=True)
            return [UnitRow(unit.name, unit.members, unit.admins) for unit in units.list_units(session)]

        return await self._run(read)

    async def save_unit(self, user_id: int, name: str, members: Sequence[str], admins: Sequence[str]) -> None:
        def save(session: Session) -> None:
            login = self._require(session, user_id, top=True).login
            units.save_unit(session, name, members=list(members), admins=list(admins))
            log.info("admin: %s saved unit %s: members %s, admins %s", login, name.strip(),
                     ",".join(members) or "-", ",".join(admins) or "-")

        await self._run(save)

    async def unit_managers(self, user_id: int, name: str) -> list[str]:
        def read(session: Session) -> list[str]:
            self._require(session, user_id, top=True)
            return units.unit_managers(session, name)

        return await self._run(read)

    async def remove_unit(self, user_id: int, name: str, *, managers_to: str | None = None,
                          drop_managers: bool = False) -> None:
        def remove(session: Session) -> None:
            login = self._require(session, user_id, top=True).login
            units.remove_unit(session, name, managers_to=managers_to, drop_managers=drop_managers)
            log.info("admin: %s removed unit %s (managers %s)", login, name,
                     f"moved to {managers_to}" if managers_to else "dropped" if drop_managers else "none")

        await self._run(remove)

    # --- monitoring (MON-2, MON audit) ---------------------------------------------------------------

    async def monitor_groups(self, user_id: int) -> list[MonitorGroupRow]:
        def read(session: Session) -> list[MonitorGroupRow]:
            self._require(session, user_id, top=True)
            return [MonitorGroupRow(g.name, g.supervisors, g.agents, g.all_agents, g.from_config)
                    for g in monitor_groups.list_groups(session)]

        return await self._run(read)

    def _monitor_groups_changed(self) -> None:
        if self.on_monitor_groups_changed is None:
            return
        try:
            self.on_monitor_groups_changed()
        except Exception:  # the change is saved; the next start (or change) loads it
            log.exception("admin: reloading the monitoring permissions failed")

    async def save_monitor_group(self, user_id: int, name: str, supervisors: Sequence[str],
                                 agents: Sequence[str]) -> None:
        def save(session: Session) -> None:
            login = self._require(session, user_id, top=True).login
            name_ = name.strip()
            group = session.scalar(select(MonitorGroup).where(MonitorGroup.name == name_))
            # A group from the configuration stays marked as such: the next start writes it again.
            from_config = group is not None and group.from_config
            monitor_groups.save_group(session, name_, list(supervisors), list(agents), from_config=from_config)
            log.info("admin: %s saved monitoring group %s: supervisors %s, agents %s", login, name_,
                     ",".join(supervisors) or "-", ",".join(agents) or "-")

        await self._run(save)
        self._monitor_groups_changed()

    async def remove_monitor_group(self, user_id: int, name: str) -> None:
        def remove(session: Session) -> None:
            login = self._require(session, user_id, top=True).login
            monitor_groups.remove_group(session, name)
            log.info("admin: %s removed monitoring group %s", login, name)

        await self._run(remove)
        self._monitor_groups_changed()

    async def monitor_log(self, user_id: int, page: int, per_page: int) -> ResultPage[MonitorLogRow]:
        def read(session: Session) -> ResultPage[MonitorLogRow]:
            scope = self._require(session, user_id)
            conditions: list[ColumnElement[bool]] = []
            if not scope.top:  # both users' units when the session started
                in_scope = sorted(scope.unit_ids)
                conditions.append(or_(MonitorSession.supervisor_unit_id.in_(in_scope),
                                      MonitorSession.agent_unit_id.in_(in_scope)))
            total = session.scalar(select(func.count()).select_from(MonitorSession).where(*conditions)) or 0
            pages, offset = _paging(page, per_page, total)
            supervisor, agent = aliased(User), aliased(User)
            found = session.execute(
                select(MonitorSession, supervisor.name, agent.name)
                .outerjoin(supervisor, supervisor.id == MonitorSession.supervisor_id)
                .outerjoin(agent, agent.id == MonitorSession.agent_id)
                .where(*conditions).order_by(MonitorSession.started_at.desc(), MonitorSession.id.desc())
                .offset(offset).limit(per_page)).all()
            modes: dict[str, list[tuple[str, datetime]]] = {}
            ids = [row[0].id for row in found]
            if ids:
                for event in session.scalars(select(MonitorEvent).where(MonitorEvent.session_id.in_(ids))
                                             .order_by(MonitorEvent.at, MonitorEvent.id)):
                    modes.setdefault(event.session_id, []).append((event.mode, event.at))
            rows = tuple(
                MonitorLogRow(ms.id, ms.started_at, _agent_label(supervisor_name, ms.supervisor, ms.supervisor),
                              _agent_label(agent_name, ms.agent, ms.agent), ms.customer, ms.origin,
                              tuple(modes.get(ms.id, ())), ms.ended_at, ms.outcome)
                for ms, supervisor_name, agent_name in found)
            return ResultPage(rows, page, pages, total)

        return await self._run(read)

    # --- outbound dialer: campaigns, lists, reports and the do-not-call list (top admins only) -------------

    def _campaign(self, name: str) -> CampaignSpec:
        spec = self.campaigns.get(name)
        if spec is None:
            raise ActionRefused(f"No campaign {name!r} is configured", 404)
        return spec

    async def campaigns_view(self, user_id: int) -> reports.CampaignsView:
        def read(session: Session) -> reports.CampaignsView:
            self._require(session, user_id, top=True)
            counts = reports.campaign_counts(session, self.campaigns)
            return reports.CampaignsView(
                tuple(reports.CampaignView(spec, counts[name]) for name, spec in sorted(self.campaigns.items())),
                reports.dnc_counts(session))

        return await self._run(read)

    async def campaign_view(self, user_id: int, name: str) -> reports.CampaignView:
        def read(session: Session) -> reports.CampaignView:
            self._require(session, user_id, top=True)
            spec = self._campaign(name)
            return reports.CampaignView(spec, reports.campaign_counts(session, [name])[name],
                                        tuple(reports.lists_of(session, name)))

        return await self._run(read)

    def _reports(self, session: Session, user_id: int, name: str, day_from: date,
                 day_to: date) -> list[reports.DayReport]:
        self._require(session, user_id, top=True)
        spec = self._campaign(name)
        if (day_to - day_from).days >= REPORT_DAYS_MAX:
            raise UserError(f"a report covers at most {REPORT_DAYS_MAX} days")
        return reports.campaign_days(session, name, day_from, day_to, target=spec.abandon_target,
                                     windows=spec.abandon_windows,
                                     amd_false_positive_rate=spec.amd_false_positive_rate)

    async def campaign_report(self, user_id: int, name: str, day_from: date,
                              day_to: date) -> list[reports.DayReport]:
        """One ``DayReport`` per UTC day from ``day_from`` to ``day_to`` (at most ``REPORT_DAYS_MAX``)."""
        return await self._run(lambda session: self._reports(session, user_id, name, day_from, day_to))

    async def campaign_report_csv(self, user_id: int, name: str, day_from: date, day_to: date) -> str:
        """The report as CSV text (``reports.CSV_HEADER``; a few hundred rows at most, so not streamed)."""
        found = await self.campaign_report(user_id, name, day_from, day_to)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(reports.csv_rows(found))
        return buffer.getvalue()

    # Uploaded lists: <token>.csv and <token>.json (who, which campaign, the file's name) in upload_dir.

    def _upload_paths(self, token: str) -> tuple[Path, Path]:
        if not UPLOAD_TOKEN.fullmatch(token):
            raise ActionRefused(UPLOAD_GONE, 404)
        return self.upload_dir / f"{token}.csv", self.upload_dir / f"{token}.json"

    def _upload_meta(self, user_id: int, name: str, token: str) -> tuple[Path, dict[str, Any]]:
        data, meta_path = self._upload_paths(token)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise ActionRefused(UPLOAD_GONE, 404) from None
        if not data.is_file() or meta.get("user") != user_id or meta.get("campaign") != name:
            raise ActionRefused(UPLOAD_GONE, 404)
        return data, meta

    def _sweep_uploads(self, now: datetime) -> None:
        """Removes uploads older than ``UPLOAD_KEEP`` (never imported)."""
        cutoff = (now - UPLOAD_KEEP).timestamp()
        for path in self.upload_dir.glob("*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def _preview(self, token: str, data: Path, file_name: str) -> reports.UploadPreview:
        with data.open(encoding="utf-8", newline="") as text:
            header = read_header(text)
        return reports.UploadPreview(token, file_name, tuple(header), data.stat().st_size)

    async def upload_list(self, user_id: int, name: str, file_name: str,
                          source: IO[bytes]) -> reports.UploadPreview:
        """Keeps an uploaded contact list (UTF-8 CSV) under a random token and reads its header; the file
        stays until ``import_upload`` or ``discard_upload``, or ``UPLOAD_KEEP``."""
        def store_file() -> reports.UploadPreview:
            with self.db.session() as session:
                login = self._require(session, user_id, top=True).login
            self._campaign(name)
            now = datetime.now(UTC)
            self.upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._sweep_uploads(now)
            token = secrets.token_urlsafe(UPLOAD_TOKEN_BYTES)
            data, meta = self._upload_paths(token)
            try:
                with os.fdopen(os.open(data, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    _copy_utf8(source, out.write)
                preview = self._preview(token, data, file_name)
            except (ContactListError, OSError):
                data.unlink(missing_ok=True)
                raise
            meta.write_text(json.dumps({"user": user_id, "campaign": name, "name": file_name,
                                        "at": now.isoformat()}))
            log.info("admin: %s uploaded contact list %r for campaign %s (%d bytes, token %s...)", login,
                     file_name, name, preview.size, token[:6])
            return preview

        return await asyncio.to_thread(store_file)

    async def upload_preview(self, user_id: int, name: str, token: str) -> reports.UploadPreview:
        """The columns of a list uploaded earlier (to show the mapping form again)."""
        def read() -> reports.UploadPreview:
            with self.db.session() as session:
                self._require(session, user_id, top=True)
            data, meta = self._upload_meta(user_id, name, token)
            return self._preview(token, data, str(meta.get("name", "")))

        return await asyncio.to_thread(read)

    async def import_upload(self, user_id: int, name: str, token: str, list_name: str,
                            mapping: ColumnMap) -> reports.ListRow:
        """Imports an uploaded list into the campaign (``store.import_list`` with the campaign's region and
        time zone); the file is deleted once the import is saved. A mapping the header does not match raises
        ContactListError and keeps the file."""
        def work() -> reports.ListRow:
            with self.db.session() as session:
                login = self._require(session, user_id, top=True).login
                spec = self._campaign(name)
                data, meta = self._upload_meta(user_id, name, token)
                with data.open(encoding="utf-8", newline="") as text:
                    done = store.import_list(session, name, list_name.strip() or str(meta.get("name", "")), text,
                                             mapping, region=spec.region, timezone=spec.timezone or None, by=login,
                                             now=datetime.now(UTC))
                session.flush()
                row = reports.list_of(session, name, done.list_id)
            for path in self._upload_paths(token):
                path.unlink(missing_ok=True)
            assert row is not None
            log.info("admin: %s imported list %d into campaign %s: %s", login, row.id, name, done.result.summary())
            return row

        return await asyncio.to_thread(work)

    async def discard_upload(self, user_id: int, name: str, token: str) -> None:
        def discard() -> None:
            with self.db.session() as session:
                self._require(session, user_id, top=True)
            self._upload_meta(user_id, name, token)
            for path in self._upload_paths(token):
                path.unlink(missing_ok=True)

        await asyncio.to_thread(discard)

    async def list_problems(self, user_id: int, name: str, list_id: int, page: int,
                            per_page: int) -> tuple[reports.ListRow, ResultPage[reports.ProblemRow]]:
        """An import and one page of the rows it did not take (rejected, duplicate, do-not-call), by line."""
        def read(session: Session) -> tuple[reports.ListRow, ResultPage[reports.ProblemRow]]:
            self._require(session, user_id, top=True)
            self._campaign(name)
            row = reports.list_of(session, name, list_id)
            if row is None:
                raise ActionRefused(f"Campaign {name} has no list {list_id}", 404)
            total, _ = reports.list_problems(session, list_id, 0, 0)
            pages, offset = _paging(page, per_page, total, PROBLEMS_PER_PAGE_MAX)
            total, problems = reports.list_problems(session, list_id, offset, per_page)
            return row, ResultPage(tuple(problems), page, pages, total)

        return await self._run(read)

    def _dnc_campaign(self, campaign: str) -> str:
        if campaign:
            self._campaign(campaign)
        return campaign

    async def dnc_list(self, user_id: int, campaign: str | None, text: str, page: int,
                       per_page: int) -> ResultPage[reports.DncRow]:
        """The do-not-call numbers of ``campaign`` ("" the global list, None every list), newest first."""
        def read(session: Session) -> ResultPage[reports.DncRow]:
            self._require(session, user_id, top=True)
            if campaign:
                self._campaign(campaign)
            total, _ = reports.search_dnc(session, campaign, text, 0, 0)
            pages, offset = _paging(page, per_page, total)
            total, rows = reports.search_dnc(session, campaign, text, offset, per_page)
            return ResultPage(tuple(rows), page, pages, total)

        return await self._run(read)

    def _region(self, campaign: str, region: str) -> str:
        wanted = region.strip() or (self.campaigns[campaign].region if campaign else "")
        if not wanted:
            raise UserError("Region: give the country (like PL, GB or US) of numbers written without one")
        try:
            return check_region(wanted)
        except ValueError as error:
            raise UserError(f"Region: {error}") from None

    def _add_dnc(self, session: Session, login: str, campaign: str, numbers: set[str],
                 rejected: list[Rejected]) -> reports.DncAdded:
        added = store.add_dnc(session, numbers, campaign, f"admin {login}", datetime.now(UTC))
        log.info("admin: %s added %d number(s) to the %s do-not-call list (%d already there, %d lines refused)",
                 login, added, campaign or "global", len(numbers) - added, len(rejected))
        return reports.DncAdded(added, len(numbers) - added, tuple(rejected))

    async def add_dnc_numbers(self, user_id: int, campaign: str, region: str, text: str) -> reports.DncAdded:
        """Adds the numbers of ``text`` (one per line) to ``campaign``'s list ("" the global one); a line
        without a valid number is refused with its line number, the others are added."""
        def add(session: Session) -> reports.DncAdded:
            login = self._require(session, user_id, top=True).login
            code = self._region(self._dnc_campaign(campaign), region)
            numbers: set[str] = set()
            rejected: list[Rejected] = []
            for line, raw in enumerate(text.splitlines(), 1):
                if not raw.strip():
                    continue
                try:
                    numbers.add(normalise_number(raw, code))
                except ValueError as error:
                    rejected.append(Rejected(line, str(error)))
            return self._add_dnc(session, login, campaign, numbers, rejected)

        return await self._run(add)

    async def import_dnc(self, user_id: int, campaign: str, region: str, source: IO[bytes]) -> reports.DncAdded:
        """Adds the numbers of a do-not-call file (``contacts.parse_dnc``: one number a line, or a CSV)."""
        def add(session: Session) -> reports.DncAdded:
            login = self._require(session, user_id, top=True).login
            code = self._region(self._dnc_campaign(campaign), region)
            numbers, rejected = parse_dnc(_read_utf8(source), code)
            return self._add_dnc(session, login, campaign, numbers, rejected)

        return await self._run(add)

    async def remove_dnc_number(self, user_id: int, campaign: str, number: str) -> None:
        def remove(session: Session) -> None:
            login = self._require(session, user_id, top=True).login
            if not store.remove_dnc(session, number, self._dnc_campaign(campaign)):
                raise UserError(f"{number} is not on the {campaign or 'global'} do-not-call list")
            log.info("admin: %s removed %s from the %s do-not-call list", login, number, campaign or "global")

        await self._run(remove)



def _copy_utf8(source: IO[bytes], write: Callable[[bytes], object]) -> None:
    """Copies ``source`` in chunks, checking that it is UTF-8 text (ContactListError if not)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while chunk := source.read(COPY_CHUNK):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as error:
            raise ContactListError(f"the file is not UTF-8 text (byte {offset + error.start + 1}): in Excel, "
                                   "save it as \u201cCSV UTF-8\u201d") from None
        offset += len(chunk)
        write(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ContactListError("the file is not UTF-8 text: it ends in the middle of a character") from None


def _read_utf8(source: IO[bytes]) -> str:
    """The whole of a small uploaded file as text (the do-not-call list), checked like ``_copy_utf8``."""
    data = io.BytesIO()
    _copy_utf8(source, data.write)
    return data.getvalue().decode("utf-8")
