"""The admin pages of the panel: recordings (search, listen, download), the CDR list and its CSV, the
retention settings, the organisational units, the monitoring permission groups and the monitoring log, and
the outbound dialer's campaigns (lists, reports) and do-not-call list.

Only HTTP lives here: every query goes through the ``AdminBackend`` protocol (backend.py), which limits
it to the admin's scope. Sessions, roles and CSRF are the panel's (panel.py ``guard``); docs/panel.md
describes the pages.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiMapping

from callcenter.dialer.contacts import ColumnMap, Rejected
from callcenter.dialer.reports import (
    CONTACT_STATUSES,
    CampaignsView,
    CampaignView,
    DayReport,
    DncAdded,
    DncRow,
    ListRow,
    ProblemRow,
    UploadPreview,
)
from callcenter.errors import ActionRefused, CallcenterError
from callcenter.users.units import NO_SCOPE
from callcenter.web.backend import (
    AdminAccess,
    AdminBackend,
    CdrFilters,
    MonitorGroupRow,
    MonitorLogRow,
    RecordingFilters,
    RecordingRow,
    ResultPage,
    RetentionView,
)
from callcenter.web.panel import CSP, Handler, Login, guard, redirect, render

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PAGE = 1_000_000
DISPOSITIONS = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "CONGESTION")
RECORDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NOT_ADMIN = "This page is for admins"
NOT_TOP = "This page is for top admins: its settings apply to every unit"
NO_RECORDING = "No such recording"
NOTHING_DELETED = "Nothing was deleted"
UNIT_LIST_MAX = 5000
PROBLEMS_PER_PAGE = 1000
LIST_UPLOAD_MAX = 64 * 1024 * 1024  # a contact list: about a million rows
DNC_UPLOAD_MAX = 16 * 1024 * 1024
DNC_TEXT_MAX = 200_000  # characters typed or pasted into the do-not-call form
REPORT_DAYS = 7  # the campaign page's report: the last week, today included
REPORT_DAYS_MAX = 366
ALL_LISTS = "*"  # the do-not-call search over every list ("" is the global list)
GROUP_NAME_MAX = 40
MODE_LABELS = {"silent": "listen", "whisper": "whisper", "barge": "three-way"}

# (query field, label, longest value) of the searches
RECORDING_FIELDS = (("from", "From", 10), ("to", "To", 10), ("agent", "Agent", 100), ("number", "Number", 80),
                    ("queue", "Queue", 40))
CDR_FIELDS = (("from", "From", 10), ("to", "To", 10), ("number", "Number", 80),
              ("disposition", "Disposition", 20), ("src_id", "Source id", 80))


@runtime_checkable
class CampaignBackend(Protocol):
    """What the campaign and do-not-call pages need (admin/backend.py ``AdminService``); top admins only:
    anyone else gets ``ActionRefused`` (403), an unknown campaign ``ActionRefused`` (404), bad input a
    ``CallcenterError`` with a message for the user (400)."""

    async def campaigns_view(self, user_id: int) -> CampaignsView: ...

    async def campaign_view(self, user_id: int, name: str) -> CampaignView: ...

    async def campaign_report(self, user_id: int, name: str, day_from: date, day_to: date) -> list[DayReport]: ...

    async def campaign_report_csv(self, user_id: int, name: str, day_from: date, day_to: date) -> str: ...

    async def upload_list(self, user_id: int, name: str, file_name: str, source: IO[bytes]) -> UploadPreview: ...

    async def upload_preview(self, user_id: int, name: str, token: str) -> UploadPreview: ...

    async def import_upload(self, user_id: int, name: str, token: str, list_name: str,
                            mapping: ColumnMap) -> ListRow: ...

    async def discard_upload(self, user_id: int, name: str, token: str) -> None: ...

    async def list_problems(self, user_id: int, name: str, list_id: int, page: int,
                            per_page: int) -> tuple[ListRow, ResultPage[ProblemRow]]: ...

    async def dnc_list(self, user_id: int, campaign: str | None, text: str, page: int,
                       per_page: int) -> ResultPage[DncRow]: ...

    async def add_dnc_numbers(self, user_id: int, campaign: str, region: str, text: str) -> DncAdded: ...

    async def import_dnc(self, user_id: int, campaign: str, region: str, source: IO[bytes]) -> DncAdded: ...

    async def remove_dnc_number(self, user_id: int, campaign: str, number: str) -> None: ...


class AdminState:
    def __init__(self, backend: AdminBackend) -> None:
        self.backend = backend
        self.per_page = PER_PAGE
        # The campaign pages, when the backend has them (the real AdminService does).
        self.campaigns: CampaignBackend | None = backend if isinstance(backend, CampaignBackend) else None
        self.problems_per_page = PROBLEMS_PER_PAGE
        self.today: Callable[[], date] = lambda: datetime.now(UTC).date()


ADMIN: web.AppKey[AdminState] = web.AppKey("admin", AdminState)

AdminHandler = Callable[[web.Request, Login, AdminAccess], Awaitable[web.StreamResponse]]


class BadInput(Exception):
    """A search field or form value the page refuses, with the message shown above the form (400)."""


def add_admin(app: web.Application, backend: AdminBackend) -> None:
    """The admin routes; needs the panel (``add_panel``) for sessions, templates and the 403 page."""
    app[ADMIN] = AdminState(backend)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/admin", admin_home)
    app.router.add_get("/admin/recordings", recordings_page)
    app.router.add_get("/admin/recordings/{id}/audio", recording_audio)
    app.router.add_get("/admin/cdr", cdr_page)
    app.router.add_get("/admin/cdr.csv", cdr_csv)
    app.router.add_get("/admin/retention", retention_page)
    app.router.add_post("/admin/retention", retention_save)
    app.router.add_post("/admin/retention/delete", retention_delete)
    app.router.add_get("/admin/units", units_page)
    app.router.add_post("/admin/units", unit_save)
    app.router.add_post("/admin/units/remove", unit_remove)
    app.router.add_get("/admin/monitoring", monitoring_page)
    app.router.add_post("/admin/monitoring", monitor_group_save)
    app.router.add_post("/admin/monitoring/remove", monitor_group_remove)
    app.router.add_get("/admin/monitoring/log", monitor_log_page)
    app.router.add_get("/admin/campaigns", campaigns_page)
    app.router.add_get("/admin/campaigns/{name}", campaign_page)
    app.router.add_get("/admin/campaigns/{name}/report.csv", campaign_report_csv)
    app.router.add_post("/admin/campaigns/{name}/upload", list_upload)
    app.router.add_get("/admin/campaigns/{name}/import", list_map_page)
    app.router.add_post("/admin/campaigns/{name}/import", list_import)
    app.router.add_post("/admin/campaigns/{name}/discard", upload_discard)
    app.router.add_get("/admin/campaigns/{name}/lists/{list_id}", list_page)
    app.router.add_get("/admin/dnc", dnc_page)
    app.router.add_post("/admin/dnc", dnc_add)
    app.router.add_post("/admin/dnc/upload", dnc_upload)
    app.router.add_post("/admin/dnc/remove", dnc_remove)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The panel pages' headers (panel.py ``security_headers``) on every admin page, audio and CSV."""
    if request.path == "/admin" or request.path.startswith("/admin/"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"


ACCESS = "admin_access"


def admin_page(*, top: bool = False,
               body_limit: Callable[[], int] | None = None) -> Callable[[AdminHandler], Handler]:
    """The panel's ``guard`` with the admin role and scope checked before any body is read, then CSRF on
    POST; ``top`` pages are for top admins only. Anyone else gets the panel's 403 page. ``body_limit()``:
    an upload may be that large (only once the user is known to be allowed); a larger one goes back to
    its page with a message (``?error=too-large``)."""

    async def authorise(request: web.Request, login: Login) -> web.StreamResponse | None:
        access = await request.app[ADMIN].backend.scope(login.user.id) if login.user.has("admin") else None
        if access is None or (top and not access.top):
            return render(request, "refused.html", login, 403, message=NOT_TOP if access else NOT_ADMIN)
        if access.empty:  # fail closed, and say why
            return render(request, "refused.html", login, 403, message=NO_SCOPE)
        request[ACCESS] = access
        return None

    def wrap(handler: AdminHandler) -> Handler:
        @guard(authorise=authorise, body_limit=body_limit)
        @functools.wraps(handler)
        async def checked(request: web.Request, login: Login) -> web.StreamResponse:
            return await handler(request, login, request[ACCESS])

        if body_limit is None:
            return checked

        @functools.wraps(checked)
        async def upload(request: web.Request) -> web.StreamResponse:
            try:
                return await checked(request)
            except web.HTTPRequestEntityTooLarge:
                name = request.match_info.get("name")
                back = f"/admin/campaigns/{quote(name, safe='')}" if name else "/admin/dnc"
                return redirect(f"{back}?error=too-large")

        return upload

    return wrap


def _page(request: web.Request, login: Login, access: AdminAccess, template: str, status: int = 200,
          **context: Any) -> web.Response:
    return render(request, template, login, status, admin_top=access.top, **context)


def _refusal(error: CallcenterError) -> tuple[int, str]:
    message = error.message if isinstance(error, ActionRefused) else str(error)
    return error.http_status, message


@admin_page()
async def admin_home(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    return redirect("/admin/recordings")


# --- input -------------------------------------------------------------------------------------------

def _text(values: Mapping[str, str], name: str, label: str, longest: int) -> str:
    text = values.get(name, "").strip()
    if len(text) > longest:
        raise BadInput(f"{label}: at most {longest} characters")
    if CONTROL.search(text):
        raise BadInput(f"{label}: control characters are not allowed")
    return text


def _day(values: Mapping[str, str], name: str, label: str) -> date | None:
    text = _text(values, name, label, 10)
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{label}: {text!r} is not a date; write it as YYYY-MM-DD") from None
    if not 1970 <= day.year <= 2999:
        raise BadInput(f"{label}: a date between 1970 and 2999, please")
    return day


def _days(values: Mapping[str, str]) -> tuple[date | None, date | None]:
    day_from, day_to = _day(values, "from", "From"), _day(values, "to", "To")
    if day_from and day_to and day_from > day_to:
        raise BadInput("From is after To")
    return day_from, day_to


def _page_number(values: Mapping[str, str]) -> int:
    text = values.get("page", "").strip() or "1"
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadInput(f"page must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def _kept(values: Mapping[str, str], fields: tuple[tuple[str, str, int], ...]) -> dict[str, str]:
    """The search fields as typed (shown again in the form), cut to a sane length."""
    return {name: values.get(name, "")[:longest + 20] for name, _, longest in fields}


def recording_filters(values: Mapping[str, str]) -> RecordingFilters:
    day_from, day_to = _days(values)
    return RecordingFilters(day_from, day_to, _text(values, "agent", "Agent", 100),
                            _text(values, "number", "Number", 80), _text(values, "queue", "Queue", 40))


def cdr_filters(values: Mapping[str, str]) -> CdrFilters:
    day_from, day_to = _days(values)
    disposition = _text(values, "disposition", "Disposition", 20)
    if disposition and disposition not in DISPOSITIONS:
        raise BadInput(f"Disposition: one of {', '.join(DISPOSITIONS)}")
    return CdrFilters(day_from, day_to, _text(values, "number", "Number", 80), disposition,
                      _text(values, "src_id", "Source id", 80))


def _query(values: MultiMapping[str]) -> dict[str, str]:
    return {name: values.get(name, "") for name in values}


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    previous: str  # URL of the previous page, "" on the first
    next: str


def _pager(path: str, kept: Mapping[str, str], result: ResultPage[Any]) -> Pager:
    def link(page: int) -> str:
        query = {name: value for name, value in kept.items() if value}
        return f"{path}?{urlencode({**query, 'page': page})}"

    return Pager(result.page, result.pages, result.total,
                 link(min(result.page - 1, result.pages)) if result.page > 1 else "",
                 link(result.page + 1) if result.page < result.pages else "")


# --- recordings --------------------------------------------------------------------------------------

def utc_text(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def length_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@dataclass(frozen=True)
class RecordingLine:
    id: str
    started: str
    agent: str
    caller: str
    called: str
    queue: str
    length: str
    size: str
    status: str
    audio: str  # the player's URL, "" unless ready

    @classmethod
    def of(cls, row: RecordingRow) -> RecordingLine:
        audio = f"/admin/recordings/{quote(row.id, safe='')}/audio" if row.status == "ready" else ""
        return cls(row.id, utc_text(row.started_at), row.agent, row.caller, row.called, row.queue,
                   length_text(row.seconds), size_text(row.size), row.status, audio)


@admin_page()
async def recordings_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = _query(request.query)
    kept = _kept(values, RECORDING_FIELDS)
    try:
        filters, page = recording_filters(values), _page_number(values)
        result = await request.app[ADMIN].backend.search_recordings(login.user.id, filters, page,
                                                                    request.app[ADMIN].per_page)
    except BadInput as error:
        return _page(request, login, access, "admin_recordings.html", 400, error=str(error), form=kept,
                     lines=None, pager=None)
    except CallcenterError as error:
        status, message = _refusal(error)
        return _page(request, login, access, "admin_recordings.html", status, error=message, form=kept,
                     lines=None, pager=None)
    return _page(request, login, access, "admin_recordings.html", error="", form=kept,
                 lines=[RecordingLine.of(row) for row in result.rows],
                 pager=_pager("/admin/recordings", kept, result))


def content_disposition(name: str) -> str:
    """``attachment`` with the file name: plain ASCII as is, anything else also RFC 5987-encoded."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "recording.mp3"
    if plain == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


@admin_page()
async def recording_audio(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The MP3 (``Range`` requests answered by ``FileResponse``: the player seeks); 404 whether the
    recording is missing, not ready or out of the admin's scope."""
    recording_id = request.match_info["id"]
    found = None
    if RECORDING_ID.fullmatch(recording_id):
        found = await request.app[ADMIN].backend.recording_file(login.user.id, recording_id)
    if found is None:
        return _page(request, login, access, "refused.html", 404, message=NO_RECORDING)
    path, name = found
    download = request.query.get("download") == "1"
    headers = {"Content-Type": "audio/mpeg"}
    if download:
        headers["Content-Disposition"] = content_disposition(name)
        log.info("admin: %s downloads recording %s", login.user.login, recording_id)
    elif request.headers.get("Range", "bytes=0-").startswith("bytes=0-"):
        log.info("admin: %s plays recording %s", login.user.login, recording_id)
    return web.FileResponse(path, headers=headers)


# --- CDRs --------------------------------------------------------------------------------------------

def _cdr_page(request: web.Request, login: Login, access: AdminAccess, status: int, error: str,
              kept: Mapping[str, str], result: ResultPage[tuple[str, ...]] | None) -> web.Response:
    csv_link = "/admin/cdr.csv" + (f"?{urlencode({k: v for k, v in kept.items() if v})}"
                                   if any(kept.values()) else "")
    return _page(request, login, access, "admin_cdr.html", status, error=error, form=kept,
                 dispositions=DISPOSITIONS, result=result, csv_link=csv_link,
                 pager=_pager("/admin/cdr", kept, result) if result else None)


@admin_page()
async def cdr_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = _query(request.query)
    kept = _kept(values, CDR_FIELDS)
    try:
        filters, page = cdr_filters(values), _page_number(values)
        result = await request.app[ADMIN].backend.list_cdr(login.user.id, filters, page, request.app[ADMIN].per_page)
    except BadInput as error:
        return _cdr_page(request, login, access, 400, str(error), kept, None)
    except CallcenterError as error:
        status, message = _refusal(error)
        return _cdr_page(request, login, access, status, message, kept, None)
    return _cdr_page(request, login, access, 200, "", kept, result)


@admin_page()
async def cdr_csv(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Every matching CDR as CSV, oldest first, streamed: the backend reads the rows in chunks."""
    values = _query(request.query)
    kept = _kept(values, CDR_FIELDS)
    try:
        filters = cdr_filters(values)
    except BadInput as error:
        return _cdr_page(request, login, access, 400, str(error), kept, None)
    chunks = request.app[ADMIN].backend.cdr_csv_chunks(login.user.id, filters)
    async with contextlib.aclosing(chunks):
        try:
            first = await anext(chunks, b"")
        except CallcenterError as error:
            status, message = _refusal(error)
            return _cdr_page(request, login, access, status, message, kept, None)
        name = f"cdr-{filters.day_from or 'all'}-{filters.day_to or 'all'}.csv"
        response = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{name}"'})
        response.content_type = "text/csv"
        response.charset = "utf-8"
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        log.info("admin: %s downloaded %s", login.user.login, name)
        await response.write_eof()
        return response


# --- retention ---------------------------------------------------------------------------------------

def _retention_page(request: web.Request, login: Login, access: AdminAccess, view: RetentionView, *,
                    status: int = 200, error: str = "", done: str = "",
                    typed: Mapping[str, str] | None = None) -> web.Response:
    values = {row.category: "forever" if row.days is None else str(row.days) for row in view.policies}
    if typed:
        values.update(typed)
    purges = [{"at": utc_text(p.at), "category": p.category, "kind": p.kind.replace("_", " "),
               "cutoff": utc_text(p.cutoff), "rows": p.rows, "files": p.files, "by": p.by}
              for p in view.purges]
    return _page(request, login, access, "admin_retention.html", status, error=error, done=done,
                 policies=view.policies, values=values, purges=purges)


async def _retention_view(request: web.Request, login: Login) -> RetentionView:
    return await request.app[ADMIN].backend.retention(login.user.id)


@admin_page(top=True)
async def retention_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = "The retention settings were saved." if request.query.get("saved") == "1" else ""
    return _retention_page(request, login, access, await _retention_view(request, login), done=done)


@admin_page(top=True)
async def retention_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    view = await _retention_view(request, login)
    form = await request.post()
    # A category missing from the form stays as it is ("" is typed, and means for ever).
    typed = {row.category: str(form[f"days-{row.category}"])[:20] for row in view.policies
             if f"days-{row.category}" in form}
    try:
        await request.app[ADMIN].backend.set_retention(login.user.id, typed)
    except CallcenterError as error:
        status, message = _refusal(error)
        return _retention_page(request, login, access, view, status=status, error=message, typed=typed)
    return redirect("/admin/retention?saved=1")


@admin_page(top=True)
async def retention_delete(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await request.post()
    category = str(form.get("category", ""))[:40]
    confirmation = str(form.get("confirm", ""))[:20]
    try:
        result = await request.app[ADMIN].backend.delete_all(login.user.id, category, confirmation)
    except CallcenterError as error:
        status, message = _refusal(error)
        if NOTHING_DELETED.lower() not in message.lower():
            message = f"{NOTHING_DELETED}: {message}"
        return _retention_page(request, login, access, await _retention_view(request, login), status=status,
                               error=message)
    done = f"Deleted all {result.category}: {result.rows} records and {result.files} files."
    return _retention_page(request, login, access, await _retention_view(request, login), done=done)


# --- organisational units ----------------------------------------------------------------------------

def _names(text: str) -> list[str]:
    return [part for part in re.split(r"[,\s]+", text) if part]


async def _units_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                      error: str = "", done: str = "", form: Mapping[str, str] | None = None,
                      removing: Mapping[str, Any] | None = None) -> web.Response:
    units = await request.app[ADMIN].backend.units(login.user.id)
    if form is None:
        editing = next((u for u in units if u.name == request.query.get("edit")), None)
        form = ({"name": editing.name, "members": ", ".join(editing.members), "admins": ", ".join(editing.admins)}
                if editing else {"name": "", "members": "", "admins": ""})
    return _page(request, login, access, "admin_units.html", status, error=error, done=done, units=units,
                 form=form, editing=bool(form["name"]), removing=removing)


@admin_page(top=True)
async def units_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = {"saved": "The unit was saved.", "removed": "The unit was removed."}.get(request.query.get("done", ""), "")
    return await _units_page(request, login, access, done=done)


@admin_page(top=True)
async def unit_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in ("name", "members", "admins")}
    try:
        for name in ("members", "admins"):
            if len(form[name]) > UNIT_LIST_MAX:
                raise BadInput(f"{name.capitalize()}: at most {UNIT_LIST_MAX} characters")
        if CONTROL.search(form["name"]):
            raise BadInput("Name: control characters are not allowed")
        await request.app[ADMIN].backend.save_unit(login.user.id, form["name"], _names(form["members"]),
                                                   _names(form["admins"]))
    except BadInput as error:
        return await _units_page(request, login, access, status=400, error=str(error), form=form)
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _units_page(request, login, access, status=status, error=message, form=form)
    return redirect("/admin/units?done=saved")


@admin_page(top=True)
async def unit_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    name = str(posted.get("name", ""))[:200]
    choice = str(posted.get("managers", ""))
    backend = request.app[ADMIN].backend
    try:
        managers = await backend.unit_managers(login.user.id, name)
        if managers and choice not in ("move", "drop"):
            # Ask what becomes of the unit's managers before removing it (they could lose all their scope).
            others = [unit.name for unit in await backend.units(login.user.id) if unit.name != name]
            return await _units_page(request, login, access, removing={
                "name": name, "managers": managers, "others": others, "error": ""})
        await backend.remove_unit(login.user.id, name,
                                  managers_to=str(posted.get("managers_to", "")) if choice == "move" else None,
                                  drop_managers=choice == "drop")
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _units_page(request, login, access, status=status, error=message)
    return redirect("/admin/units?done=removed")


# --- monitoring: permission groups and the log -------------------------------------------------------

def _group_form(group: MonitorGroupRow | None) -> dict[str, str]:
    if group is None:
        return {"name": "", "supervisors": "", "agents": ""}
    return {"name": group.name, "supervisors": ", ".join(group.supervisors),
            "agents": "*" if group.all_agents else ", ".join(group.agents)}


async def _monitoring_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                           error: str = "", done: str = "", form: Mapping[str, str] | None = None) -> web.Response:
    groups = await request.app[ADMIN].backend.monitor_groups(login.user.id)
    if form is None:
        form = _group_form(next((g for g in groups if g.name == request.query.get("edit")), None))
    return _page(request, login, access, "admin_monitoring.html", status, error=error, done=done, groups=groups,
                 form=form, editing=any(g.name == form["name"] for g in groups))


@admin_page(top=True)
async def monitoring_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = {"saved": "The group was saved; it applies at once.",
            "removed": "The group was removed; it applies at once."}.get(request.query.get("done", ""), "")
    return await _monitoring_page(request, login, access, done=done)


def monitor_group_input(form: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """(name, supervisors, agents) from the form; raises BadInput with the message shown above it."""
    name = form["name"].strip()
    if len(name) > GROUP_NAME_MAX:
        raise BadInput(f"Name: at most {GROUP_NAME_MAX} characters (letters, digits, _ or -)")
    if CONTROL.search(name):
        raise BadInput("Name: control characters are not allowed")
    for field, label in (("supervisors", "Supervisors"), ("agents", "Agents")):
        if len(form[field]) > UNIT_LIST_MAX:
            raise BadInput(f"{label}: at most {UNIT_LIST_MAX} characters")
        if CONTROL.search(re.sub(r"[\r\n\t]", " ", form[field])):  # a textarea's line breaks separate names
            raise BadInput(f"{label}: control characters are not allowed")
    supervisors, agents = _names(form["supervisors"]), _names(form["agents"])
    if "*" in supervisors:
        raise BadInput('Supervisors: extensions or logins; "*" is only for the agents')
    if "*" in agents and len(agents) > 1:
        raise BadInput('Agents: either "*" (every agent) or a list of extensions, not both')
    return name, supervisors, agents


@admin_page(top=True)
async def monitor_group_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in ("name", "supervisors", "agents")}
    try:
        name, supervisors, agents = monitor_group_input(form)
        await request.app[ADMIN].backend.save_monitor_group(login.user.id, name, supervisors, agents)
    except BadInput as error:
        return await _monitoring_page(request, login, access, status=400, error=str(error), form=_cut(form))
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _monitoring_page(request, login, access, status=status, error=message, form=_cut(form))
    return redirect("/admin/monitoring?done=saved")


def _cut(form: Mapping[str, str]) -> dict[str, str]:
    """The form as typed, to show again (cut to a sane length)."""
    return {name: value[:UNIT_LIST_MAX + 20] for name, value in form.items()}


@admin_page(top=True)
async def monitor_group_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    name = str(posted.get("name", ""))[:200]
    try:
        await request.app[ADMIN].backend.remove_monitor_group(login.user.id, name)
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _monitoring_page(request, login, access, status=status, error=message)
    return redirect("/admin/monitoring?done=removed")


@dataclass(frozen=True)
class MonitorLogLine:
    id: str
    started: str
    supervisor: str
    agent: str
    customer: str
    origin: str
    modes: str  # "listen 10:00:01, whisper 10:00:09"
    ended: str
    outcome: str

    @classmethod
    def of(cls, row: MonitorLogRow) -> MonitorLogLine:
        modes = ", ".join(f"{MODE_LABELS.get(mode, mode)} {at.astimezone(UTC):%H:%M:%S}" for mode, at in row.modes)
        return cls(row.id, utc_text(row.started_at), row.supervisor, row.agent, row.customer, row.origin, modes,
                   utc_text(row.ended_at), row.outcome.replace("_", " "))


@admin_page()
async def monitor_log_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The monitoring sessions (audit) in the admin's scope, newest first."""
    values = _query(request.query)
    try:
        page = _page_number(values)
        result = await request.app[ADMIN].backend.monitor_log(login.user.id, page, request.app[ADMIN].per_page)
    except BadInput as error:
        return _page(request, login, access, "admin_monitor_log.html", 400, error=str(error), lines=None,
                     pager=None)
    except CallcenterError as error:
        status, message = _refusal(error)
        return _page(request, login, access, "admin_monitor_log.html", status, error=message, lines=None,
                     pager=None)
    return _page(request, login, access, "admin_monitor_log.html", error="",
                 lines=[MonitorLogLine.of(row) for row in result.rows],
                 pager=_pager("/admin/monitoring/log", {}, result))


# --- outbound dialer: campaigns, their lists and reports, the do-not-call list (top admins only) -----

UPLOAD_ERRORS = {"too-large": "The file is too large: at most {size}; split it into smaller files."}
NUMBER_COLUMNS = ("number", "phone", "phone number", "telephone", "tel", "msisdn", "mobile")
NAME_COLUMNS = ("name", "full name", "customer", "contact")
ZONE_COLUMNS = ("timezone", "time zone", "time_zone", "tz")
DNC_PROBLEMS_SHOWN = 1000


def _upload_error(values: Mapping[str, str], limit: int) -> str:
    return UPLOAD_ERRORS.get(values.get("error", ""), "").format(size=size_text(limit))


def _campaigns(request: web.Request) -> CampaignBackend:
    backend = request.app[ADMIN].campaigns
    if backend is None:
        raise ActionRefused("The dialer pages are not available here", 404)
    return backend


def _campaign_path(name: str) -> str:
    return f"/admin/campaigns/{quote(name, safe='')}"


NO_VALUE = "\N{EN DASH}"


def _percent(value: float | None, places: int = 2) -> str:
    return NO_VALUE if value is None else f"{value:.{places}f}"


def _decimal(value: float | None, places: int = 1) -> str:
    return NO_VALUE if value is None else f"{value:,.{places}f}"


@dataclass(frozen=True)
class ReportLine:
    """One day of a campaign's report, as the page shows it."""

    day: str
    attempts: int
    answered: int
    reached: int
    connects: int
    abandoned: int
    with_message: int
    rates: tuple[tuple[str, str, bool], ...]  # (window, percent, over the target)
    machine: int
    outcomes: str  # "busy 3, no answer 5"
    talk_minutes: str
    agent_hours: str
    talk_per_hour: str
    occupancy: str
    median: str
    p90: str

    @classmethod
    def of(cls, r: DayReport) -> ReportLine:
        outcomes = ", ".join(f"{o.replace('_', ' ')} {n}" for o, n in r.outcomes.items() if n)
        return cls(r.day.isoformat(), r.attempts, r.answered, r.reached, r.connects, r.abandoned,
                   r.abandoned_with_message, tuple((w.window, _percent(w.rate), w.over_target) for w in r.windows),
                   r.amd["MACHINE"], outcomes or NO_VALUE, _decimal(r.talk_minutes), _decimal(r.agent_hours, 2),
                   _decimal(r.talk_per_agent_hour), _percent(r.occupancy, 1), _decimal(r.connect_median),
                   _decimal(r.connect_p90))


def report_days(values: Mapping[str, str], today: date) -> tuple[date, date]:
    """The report's days: From and To as typed; To defaults to today, From to a week before To."""
    day_from, day_to = _days(values)
    if day_to is None:
        day_to = today if day_from is None else max(day_from, min(today, day_from + timedelta(days=REPORT_DAYS - 1)))
    day_from = day_from or day_to - timedelta(days=REPORT_DAYS - 1)
    if day_from > day_to:
        raise BadInput("From is after To")
    if (day_to - day_from).days >= REPORT_DAYS_MAX:
        raise BadInput(f"a report covers at most {REPORT_DAYS_MAX} days")
    return day_from, day_to


@admin_page(top=True)
async def campaigns_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The configured campaigns with their contacts by status, lists and do-not-call numbers."""
    try:
        view = await _campaigns(request).campaigns_view(login.user.id)
    except CallcenterError as error:
        status, message = _refusal(error)
        return _page(request, login, access, "refused.html", status, message=message)
    return _page(request, login, access, "admin_campaigns.html", view=view, statuses=CONTACT_STATUSES)


async def _campaign_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                         error: str = "", done: str = "") -> web.Response:
    """A campaign: settings, contacts, the upload form, its imports and the report of the days asked."""
    name = request.match_info["name"]
    backend = _campaigns(request)
    try:
        view = await backend.campaign_view(login.user.id, name)
    except CallcenterError as refusal:
        refused, message = _refusal(refusal)
        return _page(request, login, access, "refused.html", refused, message=message)
    values = _query(request.query)
    form = _kept(values, (("from", "From", 10), ("to", "To", 10)))
    lines: list[ReportLine] | None = None
    csv_link = ""
    try:
        day_from, day_to = report_days(values, request.app[ADMIN].today())
        found = await backend.campaign_report(login.user.id, name, day_from, day_to)
        lines = [ReportLine.of(r) for r in reversed(found)]
        form = {"from": day_from.isoformat(), "to": day_to.isoformat()}
        csv_link = f"{_campaign_path(name)}/report.csv?{urlencode(form)}"
    except BadInput as problem:
        status, error = 400, error or str(problem)
    except CallcenterError as problem:
        status, message = _refusal(problem)
        error = error or message
    return _page(request, login, access, "admin_campaign.html", status, view=view, spec=view.spec,
                 statuses=CONTACT_STATUSES, error=error, done=done, form=form, lines=lines, csv_link=csv_link,
                 path=_campaign_path(name), upload_max=size_text(LIST_UPLOAD_MAX),
                 lists=[(row, utc_text(row.imported_at)) for row in view.lists])


@admin_page(top=True)
async def campaign_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = _query(request.query)
    done = {"discarded": "The uploaded file was discarded; nothing was imported."}.get(values.get("done", ""), "")
    error = _upload_error(values, LIST_UPLOAD_MAX)
    return await _campaign_page(request, login, access, status=413 if error else 200, error=error, done=done)


@admin_page(top=True)
async def campaign_report_csv(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The report of the days asked as CSV (docs/dialer-reports.md describes the columns)."""
    name = request.match_info["name"]
    try:
        day_from, day_to = report_days(_query(request.query), request.app[ADMIN].today())
        text = await _campaigns(request).campaign_report_csv(login.user.id, name, day_from, day_to)
    except BadInput as error:
        return await _campaign_page(request, login, access, status=400, error=str(error))
    except CallcenterError as error:
        status, message = _refusal(error)
        return _page(request, login, access, "refused.html", status, message=message)
    file_name = f"campaign-{name}-{day_from}-{day_to}.csv"
    log.info("admin: %s downloaded %s", login.user.login, file_name)
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": content_disposition(file_name)})


@admin_page(top=True, body_limit=lambda: LIST_UPLOAD_MAX)
async def list_upload(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Step 1 of an import: the file is kept under a random token and its header read; then the mapping
    form (``list_map_page``)."""
    name = request.match_info["name"]
    posted = await request.post()
    upload = posted.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _campaign_page(request, login, access, status=400, error="Choose a CSV file to upload")
    file_name = CONTROL.sub("", upload.filename)[:200]
    try:
        preview = await _campaigns(request).upload_list(login.user.id, name, file_name, upload.file)
    except CallcenterError as error:
        status, message = _refusal(error)
        if status == 404:
            return _page(request, login, access, "refused.html", status, message=message)
        return await _campaign_page(request, login, access, status=status,
                                    error=f"{file_name}: {message} (nothing was imported)")
    return redirect(f"{_campaign_path(name)}/import?{urlencode({'token': preview.token})}")


def _guess(header: tuple[str, ...], names: tuple[str, ...]) -> str:
    lowered = {h.strip().lower(): h for h in header if h}
    return next((lowered[n] for n in names if n in lowered), "")


def _map_form(preview: UploadPreview) -> dict[str, Any]:
    number = _guess(preview.header, NUMBER_COLUMNS) or next((h for h in preview.header if h), "")
    name, zone = _guess(preview.header, NAME_COLUMNS), _guess(preview.header, ZONE_COLUMNS)
    used = {number, name, zone}
    return {"list_name": preview.file_name, "number": number, "contact_name": name, "timezone": zone,
            "keep": [h for h in preview.header if h and h not in used]}


def _map_page(request: web.Request, login: Login, access: AdminAccess, preview: UploadPreview,
              form: Mapping[str, Any], *, status: int = 200, error: str = "") -> web.Response:
    name = request.match_info["name"]
    return _page(request, login, access, "admin_campaign_map.html", status, campaign=name,
                 path=_campaign_path(name), preview=preview, form=form, error=error,
                 columns=[h for h in preview.header if h], size=size_text(preview.size))


async def _upload_gone(request: web.Request, login: Login, access: AdminAccess,
                       error: CallcenterError) -> web.Response:
    status, message = _refusal(error)
    if status == 403:
        return _page(request, login, access, "refused.html", status, message=message)
    return await _campaign_page(request, login, access, status=status, error=message)


@admin_page(top=True)
async def list_map_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    token = request.query.get("token", "")[:64]
    try:
        preview = await _campaigns(request).upload_preview(login.user.id, request.match_info["name"], token)
    except CallcenterError as error:
        return await _upload_gone(request, login, access, error)
    return _map_page(request, login, access, preview, _map_form(preview))


def column_map(form: Mapping[str, Any], header: tuple[str, ...]) -> ColumnMap:
    """The mapping chosen on the form; raises BadInput with the message shown above it."""
    columns = {h for h in header if h}
    number, name, zone = (str(form[k]) for k in ("number", "contact_name", "timezone"))
    if not number:
        raise BadInput("Number: choose the column that holds the phone numbers")
    for value, label in ((number, "Number"), (name, "Name"), (zone, "Time zone")):
        if value and value not in columns:
            raise BadInput(f"{label}: the file has no column {value!r}")
    chosen = [c for c in (number, name, zone) if c]
    if len(set(chosen)) < len(chosen):
        raise BadInput("Number, name and time zone must be different columns")
    unknown = [c for c in form["keep"] if c not in columns]
    if unknown:
        raise BadInput(f"Keep: the file has no column {unknown[0]!r}")
    keep = tuple(c for c in header if c in set(form["keep"]) and c not in chosen)
    return ColumnMap(number, zone or None, name or None, keep)


@admin_page(top=True)
async def list_import(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Step 2: imports the kept file with the mapping chosen; then the list's page with its problems."""
    name = request.match_info["name"]
    backend = _campaigns(request)
    posted = await request.post()
    form: dict[str, Any] = {k: str(posted.get(k, ""))[:300] for k in ("token", "list_name", "number",
                                                                       "contact_name", "timezone")}
    form["keep"] = [str(v)[:300] for v in posted.getall("keep", [])]
    try:
        preview = await backend.upload_preview(login.user.id, name, form["token"])
    except CallcenterError as error:
        return await _upload_gone(request, login, access, error)
    try:
        list_name = _text(form, "list_name", "List name", 200)
        row = await backend.import_upload(login.user.id, name, preview.token, list_name,
                                          column_map(form, preview.header))
    except BadInput as error:
        return _map_page(request, login, access, preview, form, status=400, error=str(error))
    except CallcenterError as error:
        status, message = _refusal(error)
        return _map_page(request, login, access, preview, form, status=status, error=message)
    return redirect(f"{_campaign_path(name)}/lists/{row.id}?imported=1")


@admin_page(top=True)
async def upload_discard(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    name = request.match_info["name"]
    posted = await request.post()
    try:
        await _campaigns(request).discard_upload(login.user.id, name, str(posted.get("token", ""))[:64])
    except CallcenterError as error:
        return await _upload_gone(request, login, access, error)
    return redirect(f"{_campaign_path(name)}?done=discarded")


@dataclass(frozen=True)
class ProblemPager:
    page: int
    pages: int
    previous: str
    next: str


@admin_page(top=True)
async def list_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """One import: its summary and every row it did not take, by line (``problems_per_page`` a page)."""
    name, list_id = request.match_info["name"], request.match_info["list_id"]
    if not list_id.isascii() or not list_id.isdigit() or len(list_id) > 12:
        return _page(request, login, access, "refused.html", 404, message=f"Campaign {name} has no list {list_id}")
    values = _query(request.query)
    try:
        page = _page_number(values)
        row, result = await _campaigns(request).list_problems(login.user.id, name, int(list_id), page,
                                                              request.app[ADMIN].problems_per_page)
    except BadInput as error:
        return _page(request, login, access, "refused.html", 400, message=str(error))
    except CallcenterError as error:
        status, message = _refusal(error)
        return _page(request, login, access, "refused.html", status, message=message)
    path = f"{_campaign_path(name)}/lists/{row.id}"
    pager = ProblemPager(result.page, result.pages, f"{path}?page={result.page - 1}" if result.page > 1 else "",
                         f"{path}?page={result.page + 1}" if result.page < result.pages else "")
    done = f"Imported {row.name}: {row.summary}." if values.get("imported") == "1" else ""
    return _page(request, login, access, "admin_campaign_list.html", campaign=name, path=_campaign_path(name),
                 row=row, imported_at=utc_text(row.imported_at), result=result, pager=pager, done=done,
                 first=(result.page - 1) * request.app[ADMIN].problems_per_page + 1)


# The do-not-call list ------------------------------------------------------------------------------------

def _dnc_campaign(values: Mapping[str, Any], name: str = "campaign") -> str:
    campaign = str(values.get(name, "")).strip()
    if len(campaign) > 40 or CONTROL.search(campaign):
        raise BadInput("List: choose the global list or a campaign")
    return campaign


def _dnc_done(values: Mapping[str, str]) -> str:
    counts = [values.get(k, "") for k in ("added", "already")]
    if all(c.isascii() and c.isdigit() and len(c) < 10 for c in counts):
        added, already = (int(c) for c in counts)
        return f"{added} number{'' if added == 1 else 's'} added, {already} already on the list."
    removed = values.get("removed", "")
    return f"{removed[:20]} was removed from the do-not-call list." if removed else ""


async def _dnc_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                    error: str = "", done: str = "", problems: tuple[Rejected, ...] = (),
                    form: Mapping[str, str] | None = None) -> web.Response:
    backend = _campaigns(request)
    try:
        view = await backend.campaigns_view(login.user.id)
    except CallcenterError as refusal:
        refused, message = _refusal(refusal)
        return _page(request, login, access, "refused.html", refused, message=message)
    values = _query(request.query)
    search = {"campaign": values.get("campaign", ALL_LISTS)[:60], "q": values.get("q", "")[:100]}
    result: ResultPage[DncRow] | None = None
    try:
        page = _page_number(values)
        text = _text(search, "q", "Number", 40)
        campaign = _dnc_campaign(search)
        result = await backend.dnc_list(login.user.id, None if campaign == ALL_LISTS else campaign, text, page,
                                        request.app[ADMIN].per_page)
    except BadInput as problem:
        status, error = (status if error else 400), error or str(problem)
    except CallcenterError as problem:
        refused, message = _refusal(problem)
        status, error = (status if error else refused), error or message
    regions = sorted({c.spec.region for c in view.campaigns})
    default_region = regions[0] if len(regions) == 1 else ""
    if form is None:
        form = {"campaign": "", "region": default_region, "numbers": ""}
    return _page(request, login, access, "admin_dnc.html", status, view=view, search=search, result=result,
                 pager=_pager("/admin/dnc", search, result) if result else None, form=form, error=error, done=done,
                 problems=problems[:DNC_PROBLEMS_SHOWN], more_problems=max(0, len(problems) - DNC_PROBLEMS_SHOWN),
                 all_lists=ALL_LISTS, rows=[(row, utc_text(row.added_at)) for row in result.rows] if result else [],
                 upload_max=size_text(DNC_UPLOAD_MAX))


@admin_page(top=True)
async def dnc_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = _query(request.query)
    error = _upload_error(values, DNC_UPLOAD_MAX)
    return await _dnc_page(request, login, access, status=413 if error else 200, error=error,
                           done=_dnc_done(values))


async def _dnc_added(request: web.Request, login: Login, access: AdminAccess, added: DncAdded,
                     form: Mapping[str, str]) -> web.Response:
    if not added.rejected:
        return redirect(f"/admin/dnc?{urlencode({'added': added.added, 'already': added.already})}")
    count = len(added.rejected)
    done = f"{added.added} number{'' if added.added == 1 else 's'} added, {added.already} already on the list."
    error = (f"{count} line{' was' if count == 1 else 's were'} not added (listed below): correct "
             f"{'it' if count == 1 else 'them'} and add again.")
    return await _dnc_page(request, login, access, status=400, error=error, done=done,
                           problems=added.rejected, form=form)


@admin_page(top=True)
async def dnc_add(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Numbers typed or pasted, one a line: the good ones are added, the others listed with their line; the
    text stays in the form (adding a number again is harmless)."""
    posted = await request.post()
    form = {"campaign": str(posted.get("campaign", ""))[:60], "region": str(posted.get("region", ""))[:20],
            "numbers": str(posted.get("numbers", ""))[:DNC_TEXT_MAX + 20]}

    async def add() -> DncAdded:
        if len(form["numbers"]) > DNC_TEXT_MAX:
            raise BadInput(f"Numbers: at most {DNC_TEXT_MAX:,} characters; upload a file instead")
        if not form["numbers"].strip():
            raise BadInput("Numbers: type or paste at least one number")
        return await _campaigns(request).add_dnc_numbers(login.user.id, _dnc_campaign(form),
                                                         _text(form, "region", "Region", 10), form["numbers"])
    return await _dnc_submit(request, login, access, form, add)


async def _dnc_submit(request: web.Request, login: Login, access: AdminAccess, form: dict[str, str],
                      add: Callable[[], Awaitable[DncAdded]]) -> web.StreamResponse:
    """Runs a do-not-call addition; a refusal comes back to the page with its message and the form."""
    try:
        added = await add()
    except BadInput as error:
        return await _dnc_page(request, login, access, status=400, error=str(error), form=form)
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _dnc_page(request, login, access, status=status, error=message, form=form)
    return await _dnc_added(request, login, access, added, form)


@admin_page(top=True, body_limit=lambda: DNC_UPLOAD_MAX)
async def dnc_upload(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """A do-not-call file (one number a line, or a CSV with a number, phone or msisdn column)."""
    posted = await request.post()
    form = {"campaign": str(posted.get("campaign", ""))[:60], "region": str(posted.get("region", ""))[:20],
            "numbers": ""}
    upload = posted.get("file")

    async def add() -> DncAdded:
        if not isinstance(upload, web.FileField) or not upload.filename:
            raise BadInput("Choose a file to upload")
        return await _campaigns(request).import_dnc(login.user.id, _dnc_campaign(form),
                                                    _text(form, "region", "Region", 10), upload.file)
    return await _dnc_submit(request, login, access, form, add)


@admin_page(top=True)
async def dnc_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    number = str(posted.get("number", ""))[:40]
    try:
        await _campaigns(request).remove_dnc_number(login.user.id, _dnc_campaign(posted), number)
    except BadInput as error:
        return await _dnc_page(request, login, access, status=400, error=str(error))
    except CallcenterError as error:
        status, message = _refusal(error)
        return await _dnc_page(request, login, access, status=status, error=message)
    return redirect(f"/admin/dnc?{urlencode({'removed': number})}")
