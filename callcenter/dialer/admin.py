"""The outbound dialer's admin side (dialer/http.py): the configured campaigns with their contacts, the
contact lists uploaded and imported into them, their daily reports, and the do-not-call lists. They apply
to every unit, so only top admins see or change them. Reports and counts are read by ``reports.py``,
imports and do-not-call numbers written by ``store.py``; the SQLAlchemy work runs in a thread."""

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
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.queries import ResultPage, in_thread, paging
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
from callcenter.users.access import require_admin

log = logging.getLogger(__name__)

REPORT_DAYS_MAX = 366
PROBLEMS_PER_PAGE_MAX = 1000
UPLOAD_TOKEN_BYTES = 18
UPLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
UPLOAD_KEEP = timedelta(days=1)
UPLOAD_GONE = "The uploaded file is no longer here (it is kept for a day): upload it again"
COPY_CHUNK = 1 << 16


class DialerAdmin:
    """Campaigns, lists and the do-not-call list on the database. ``campaigns`` are the configured dialer
    campaigns (``Settings.campaigns``); a contact list uploaded for one waits in ``upload_dir`` (default
    ``dialer-uploads`` beside ``files_dir``) until it is imported. Every method takes the id of the
    logged-in user: anyone but a top admin gets ``ActionRefused`` (403), an unknown campaign
    ``ActionRefused`` (404), bad input a ``CallcenterError`` with a message for the user (400)."""

    def __init__(self, db: Database, files_dir: Path, *, campaigns: Mapping[str, CampaignSpec] | None = None,
                 upload_dir: Path | None = None) -> None:
        self.db = db
        self.campaigns: Mapping[str, CampaignSpec] = campaigns or {}
        # Contact lists wait here between their upload and their import (they hold personal data: 0700).
        self.upload_dir = upload_dir or files_dir.parent / "dialer-uploads"

    def _campaign(self, name: str) -> CampaignSpec:
        spec = self.campaigns.get(name)
        if spec is None:
            raise ActionRefused(f"No campaign {name!r} is configured", 404)
        return spec

    async def campaigns_view(self, user_id: int) -> reports.CampaignsView:
        def read(session: Session) -> reports.CampaignsView:
            require_admin(session, user_id, top=True)
            counts = reports.campaign_counts(session, self.campaigns)
            return reports.CampaignsView(
                tuple(reports.CampaignView(spec, counts[name]) for name, spec in sorted(self.campaigns.items())),
                reports.dnc_counts(session))

        return await in_thread(self.db, read)

    async def campaign_view(self, user_id: int, name: str) -> reports.CampaignView:
        def read(session: Session) -> reports.CampaignView:
            require_admin(session, user_id, top=True)
            spec = self._campaign(name)
            return reports.CampaignView(spec, reports.campaign_counts(session, [name])[name],
                                        tuple(reports.lists_of(session, name)))

        return await in_thread(self.db, read)

    def _reports(self, session: Session, user_id: int, name: str, day_from: date,
                 day_to: date) -> list[reports.DayReport]:
        require_admin(session, user_id, top=True)
        spec = self._campaign(name)
        if (day_to - day_from).days >= REPORT_DAYS_MAX:
            raise UserError(f"a report covers at most {REPORT_DAYS_MAX} days")
        return reports.campaign_days(session, name, day_from, day_to, target=spec.abandon_target,
                                     windows=spec.abandon_windows,
                                     amd_false_positive_rate=spec.amd_false_positive_rate)

    async def campaign_report(self, user_id: int, name: str, day_from: date,
                              day_to: date) -> list[reports.DayReport]:
        """One ``DayReport`` per UTC day from ``day_from`` to ``day_to`` (at most ``REPORT_DAYS_MAX``)."""
        return await in_thread(self.db, lambda session: self._reports(session, user_id, name, day_from, day_to))

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
                login = require_admin(session, user_id, top=True).login
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
                require_admin(session, user_id, top=True)
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
                login = require_admin(session, user_id, top=True).login
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
                require_admin(session, user_id, top=True)
            self._upload_meta(user_id, name, token)
            for path in self._upload_paths(token):
                path.unlink(missing_ok=True)

        await asyncio.to_thread(discard)

    async def list_problems(self, user_id: int, name: str, list_id: int, page: int,
                            per_page: int) -> tuple[reports.ListRow, ResultPage[reports.ProblemRow]]:
        """An import and one page of the rows it did not take (rejected, duplicate, do-not-call), by line."""
        def read(session: Session) -> tuple[reports.ListRow, ResultPage[reports.ProblemRow]]:
            require_admin(session, user_id, top=True)
            self._campaign(name)
            row = reports.list_of(session, name, list_id)
            if row is None:
                raise ActionRefused(f"Campaign {name} has no list {list_id}", 404)
            total, _ = reports.list_problems(session, list_id, 0, 0)
            pages, offset = paging(page, per_page, total, PROBLEMS_PER_PAGE_MAX)
            total, problems = reports.list_problems(session, list_id, offset, per_page)
            return row, ResultPage(tuple(problems), page, pages, total)

        return await in_thread(self.db, read)

    def _dnc_campaign(self, campaign: str) -> str:
        if campaign:
            self._campaign(campaign)
        return campaign

    async def dnc_list(self, user_id: int, campaign: str | None, text: str, page: int,
                       per_page: int) -> ResultPage[reports.DncRow]:
        """The do-not-call numbers of ``campaign`` ("" the global list, None every list), newest first."""
        def read(session: Session) -> ResultPage[reports.DncRow]:
            require_admin(session, user_id, top=True)
            if campaign:
                self._campaign(campaign)
            total, _ = reports.search_dnc(session, campaign, text, 0, 0)
            pages, offset = paging(page, per_page, total)
            total, rows = reports.search_dnc(session, campaign, text, offset, per_page)
            return ResultPage(tuple(rows), page, pages, total)

        return await in_thread(self.db, read)

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
            login = require_admin(session, user_id, top=True).login
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

        return await in_thread(self.db, add)

    async def import_dnc(self, user_id: int, campaign: str, region: str, source: IO[bytes]) -> reports.DncAdded:
        """Adds the numbers of a do-not-call file (``contacts.parse_dnc``: one number a line, or a CSV)."""
        def add(session: Session) -> reports.DncAdded:
            login = require_admin(session, user_id, top=True).login
            code = self._region(self._dnc_campaign(campaign), region)
            numbers, rejected = parse_dnc(_read_utf8(source), code)
            return self._add_dnc(session, login, campaign, numbers, rejected)

        return await in_thread(self.db, add)

    async def remove_dnc_number(self, user_id: int, campaign: str, number: str) -> None:
        def remove(session: Session) -> None:
            login = require_admin(session, user_id, top=True).login
            if not store.remove_dnc(session, number, self._dnc_campaign(campaign)):
                raise UserError(f"{number} is not on the {campaign or 'global'} do-not-call list")
            log.info("admin: %s removed %s from the %s do-not-call list", login, number, campaign or "global")

        await in_thread(self.db, remove)


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
