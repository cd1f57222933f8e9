"""The outbound dialer's admin pages (top admins): the campaigns with their contacts, the two-step import of
a contact list (upload, then map its columns) with the rows it did not take, each campaign's daily report
(page and CSV), and the do-not-call lists (queries: dialer/admin.py). docs/dialer-lists.md and
docs/dialer-reports.md describe them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from callcenter.db.queries import ResultPage
from callcenter.dialer.admin import DialerAdmin
from callcenter.dialer.contacts import ColumnMap, Rejected
from callcenter.dialer.reports import CONTACT_STATUSES, DayReport, DncAdded, DncRow, UploadPreview
from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import (
    ADMIN,
    CONTROL,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    content_disposition,
    days,
    kept,
    page,
    page_number,
    query,
    refusal,
    size_text,
    text,
    utc_text,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates, pager

log = logging.getLogger(__name__)

PROBLEMS_PER_PAGE = 1000
LIST_UPLOAD_MAX = 64 * 1024 * 1024  # a contact list: about a million rows
DNC_UPLOAD_MAX = 16 * 1024 * 1024
DNC_TEXT_MAX = 200_000  # characters typed or pasted into the do-not-call form
REPORT_DAYS = 7  # the campaign page's report: the last week, today included
REPORT_DAYS_MAX = 366
ALL_LISTS = "*"  # the do-not-call search over every list ("" is the global list)
UPLOAD_ERRORS = {"too-large": "The file is too large: at most {size}; split it into smaller files."}
NUMBER_COLUMNS = ("number", "phone", "phone number", "telephone", "tel", "msisdn", "mobile")
NAME_COLUMNS = ("name", "full name", "customer", "contact")
ZONE_COLUMNS = ("timezone", "time zone", "time_zone", "tz")
DNC_PROBLEMS_SHOWN = 1000


class DialerPages:
    """What the dialer's pages share (``DIALER``): the service, rows of problems a page, and today's date."""

    def __init__(self, admin: DialerAdmin) -> None:
        self.admin = admin
        self.problems_per_page = PROBLEMS_PER_PAGE
        self.today: Callable[[], date] = lambda: datetime.now(UTC).date()


DIALER: web.AppKey[DialerPages] = web.AppKey("dialer", DialerPages)
routes = web.RouteTableDef()


def install(app: web.Application, admin: DialerAdmin) -> None:
    """/admin/campaigns... and /admin/dnc...; the shared admin pages (web/admin_pages.py) first."""
    app[DIALER] = DialerPages(admin)
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/campaigns", "Campaigns", "nav-campaigns", top=True, order=70))
    app.router.add_routes(routes)


def _upload_error(values: Mapping[str, str], limit: int) -> str:
    return UPLOAD_ERRORS.get(values.get("error", ""), "").format(size=size_text(limit))


def _campaign_path(name: str) -> str:
    return f"/admin/campaigns/{quote(name, safe='')}"


def _upload_back(request: web.Request) -> str:
    """Where a file too large goes back to: its campaign's page, or the do-not-call page."""
    name = request.match_info.get("name")
    return _campaign_path(name) if name else "/admin/dnc"


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
    day_from, day_to = days(values)
    if day_to is None:
        day_to = today if day_from is None else max(day_from, min(today, day_from + timedelta(days=REPORT_DAYS - 1)))
    day_from = day_from or day_to - timedelta(days=REPORT_DAYS - 1)
    if day_from > day_to:
        raise BadInput("From is after To")
    if (day_to - day_from).days >= REPORT_DAYS_MAX:
        raise BadInput(f"a report covers at most {REPORT_DAYS_MAX} days")
    return day_from, day_to


@routes.get("/admin/campaigns")
@admin_page(top=True)
async def campaigns_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The configured campaigns with their contacts by status, lists and do-not-call numbers."""
    try:
        view = await request.app[DIALER].admin.campaigns_view(login.user.id)
    except CallcenterError as error:
        status, message = refusal(error)
        return page(request, login, access, "refused.html", status, message=message)
    return page(request, login, access, "admin_campaigns.html", view=view, statuses=CONTACT_STATUSES)


async def _campaign_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                         error: str = "", done: str = "") -> web.Response:
    """A campaign: settings, contacts, the upload form, its imports and the report of the days asked."""
    name = request.match_info["name"]
    admin = request.app[DIALER].admin
    try:
        view = await admin.campaign_view(login.user.id, name)
    except CallcenterError as refused_error:
        refused, message = refusal(refused_error)
        return page(request, login, access, "refused.html", refused, message=message)
    values = query(request.query)
    form = kept(values, (("from", "From", 10), ("to", "To", 10)))
    lines: list[ReportLine] | None = None
    csv_link = ""
    try:
        day_from, day_to = report_days(values, request.app[DIALER].today())
        found = await admin.campaign_report(login.user.id, name, day_from, day_to)
        lines = [ReportLine.of(r) for r in reversed(found)]
        form = {"from": day_from.isoformat(), "to": day_to.isoformat()}
        csv_link = f"{_campaign_path(name)}/report.csv?{urlencode(form)}"
    except BadInput as problem:
        status, error = 400, error or str(problem)
    except CallcenterError as problem:
        status, message = refusal(problem)
        error = error or message
    return page(request, login, access, "admin_campaign.html", status, view=view, spec=view.spec,
                statuses=CONTACT_STATUSES, error=error, done=done, form=form, lines=lines, csv_link=csv_link,
                path=_campaign_path(name), upload_max=size_text(LIST_UPLOAD_MAX),
                lists=[(row, utc_text(row.imported_at)) for row in view.lists])


@routes.get("/admin/campaigns/{name}")
@admin_page(top=True)
async def campaign_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = query(request.query)
    done = {"discarded": "The uploaded file was discarded; nothing was imported."}.get(values.get("done", ""), "")
    error = _upload_error(values, LIST_UPLOAD_MAX)
    return await _campaign_page(request, login, access, status=413 if error else 200, error=error, done=done)


@routes.get("/admin/campaigns/{name}/report.csv")
@admin_page(top=True)
async def campaign_report_csv(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The report of the days asked as CSV (docs/dialer-reports.md describes the columns)."""
    name = request.match_info["name"]
    try:
        day_from, day_to = report_days(query(request.query), request.app[DIALER].today())
        csv_text = await request.app[DIALER].admin.campaign_report_csv(login.user.id, name, day_from, day_to)
    except BadInput as error:
        return await _campaign_page(request, login, access, status=400, error=str(error))
    except CallcenterError as error:
        status, message = refusal(error)
        return page(request, login, access, "refused.html", status, message=message)
    file_name = f"campaign-{name}-{day_from}-{day_to}.csv"
    log.info("admin: %s downloaded %s", login.user.login, file_name)
    return web.Response(text=csv_text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": content_disposition(file_name)})


@routes.post("/admin/campaigns/{name}/upload")
@admin_page(top=True, body_limit=lambda: LIST_UPLOAD_MAX, too_large=_upload_back)
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
        preview = await request.app[DIALER].admin.upload_list(login.user.id, name, file_name, upload.file)
    except CallcenterError as error:
        status, message = refusal(error)
        if status == 404:
            return page(request, login, access, "refused.html", status, message=message)
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
    return page(request, login, access, "admin_campaign_map.html", status, campaign=name,
                path=_campaign_path(name), preview=preview, form=form, error=error,
                columns=[h for h in preview.header if h], size=size_text(preview.size))


async def _upload_gone(request: web.Request, login: Login, access: AdminAccess,
                       error: CallcenterError) -> web.Response:
    status, message = refusal(error)
    if status == 403:
        return page(request, login, access, "refused.html", status, message=message)
    return await _campaign_page(request, login, access, status=status, error=message)


@routes.get("/admin/campaigns/{name}/import")
@admin_page(top=True)
async def list_map_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    token = request.query.get("token", "")[:64]
    try:
        preview = await request.app[DIALER].admin.upload_preview(login.user.id, request.match_info["name"], token)
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


@routes.post("/admin/campaigns/{name}/import")
@admin_page(top=True)
async def list_import(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Step 2: imports the kept file with the mapping chosen; then the list's page with its problems."""
    name = request.match_info["name"]
    admin = request.app[DIALER].admin
    posted = await request.post()
    form: dict[str, Any] = {k: str(posted.get(k, ""))[:300] for k in ("token", "list_name", "number",
                                                                       "contact_name", "timezone")}
    form["keep"] = [str(v)[:300] for v in posted.getall("keep", [])]
    try:
        preview = await admin.upload_preview(login.user.id, name, form["token"])
    except CallcenterError as error:
        return await _upload_gone(request, login, access, error)
    try:
        list_name = text(form, "list_name", "List name", 200)
        row = await admin.import_upload(login.user.id, name, preview.token, list_name,
                                          column_map(form, preview.header))
    except BadInput as error:
        return _map_page(request, login, access, preview, form, status=400, error=str(error))
    except CallcenterError as error:
        status, message = refusal(error)
        return _map_page(request, login, access, preview, form, status=status, error=message)
    return redirect(f"{_campaign_path(name)}/lists/{row.id}?imported=1")


@routes.post("/admin/campaigns/{name}/discard")
@admin_page(top=True)
async def upload_discard(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    name = request.match_info["name"]
    posted = await request.post()
    try:
        await request.app[DIALER].admin.discard_upload(login.user.id, name, str(posted.get("token", ""))[:64])
    except CallcenterError as error:
        return await _upload_gone(request, login, access, error)
    return redirect(f"{_campaign_path(name)}?done=discarded")


@dataclass(frozen=True)
class ProblemPager:
    page: int
    pages: int
    previous: str
    next: str


@routes.get("/admin/campaigns/{name}/lists/{list_id}")
@admin_page(top=True)
async def list_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """One import: its summary and every row it did not take, by line (``problems_per_page`` a page)."""
    name, list_id = request.match_info["name"], request.match_info["list_id"]
    if not list_id.isascii() or not list_id.isdigit() or len(list_id) > 12:
        return page(request, login, access, "refused.html", 404, message=f"Campaign {name} has no list {list_id}")
    values = query(request.query)
    try:
        number = page_number(values)
        pages = request.app[DIALER]
        row, result = await pages.admin.list_problems(login.user.id, name, int(list_id), number,
                                                      pages.problems_per_page)
    except BadInput as error:
        return page(request, login, access, "refused.html", 400, message=str(error))
    except CallcenterError as error:
        status, message = refusal(error)
        return page(request, login, access, "refused.html", status, message=message)
    path = f"{_campaign_path(name)}/lists/{row.id}"
    problems = ProblemPager(result.page, result.pages, f"{path}?page={result.page - 1}" if result.page > 1 else "",
                         f"{path}?page={result.page + 1}" if result.page < result.pages else "")
    done = f"Imported {row.name}: {row.summary}." if values.get("imported") == "1" else ""
    return page(request, login, access, "admin_campaign_list.html", campaign=name, path=_campaign_path(name),
                row=row, imported_at=utc_text(row.imported_at), result=result, pager=problems, done=done,
                first=(result.page - 1) * request.app[DIALER].problems_per_page + 1)


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
    admin = request.app[DIALER].admin
    try:
        view = await admin.campaigns_view(login.user.id)
    except CallcenterError as refused_error:
        refused, message = refusal(refused_error)
        return page(request, login, access, "refused.html", refused, message=message)
    values = query(request.query)
    search = {"campaign": values.get("campaign", ALL_LISTS)[:60], "q": values.get("q", "")[:100]}
    result: ResultPage[DncRow] | None = None
    try:
        number = page_number(values)
        typed = text(search, "q", "Number", 40)
        campaign = _dnc_campaign(search)
        result = await admin.dnc_list(login.user.id, None if campaign == ALL_LISTS else campaign, typed, number,
                                        request.app[ADMIN].per_page)
    except BadInput as problem:
        status, error = (status if error else 400), error or str(problem)
    except CallcenterError as problem:
        refused, message = refusal(problem)
        status, error = (status if error else refused), error or message
    regions = sorted({c.spec.region for c in view.campaigns})
    default_region = regions[0] if len(regions) == 1 else ""
    if form is None:
        form = {"campaign": "", "region": default_region, "numbers": ""}
    return page(request, login, access, "admin_dnc.html", status, view=view, search=search, result=result,
                pager=pager("/admin/dnc", search, result) if result else None, form=form, error=error, done=done,
                problems=problems[:DNC_PROBLEMS_SHOWN], more_problems=max(0, len(problems) - DNC_PROBLEMS_SHOWN),
                all_lists=ALL_LISTS, rows=[(row, utc_text(row.added_at)) for row in result.rows] if result else [],
                upload_max=size_text(DNC_UPLOAD_MAX))


@routes.get("/admin/dnc")
@admin_page(top=True)
async def dnc_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = query(request.query)
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


@routes.post("/admin/dnc")
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
        return await request.app[DIALER].admin.add_dnc_numbers(login.user.id, _dnc_campaign(form),
                                                               text(form, "region", "Region", 10), form["numbers"])
    return await _dnc_submit(request, login, access, form, add)


async def _dnc_submit(request: web.Request, login: Login, access: AdminAccess, form: dict[str, str],
                      add: Callable[[], Awaitable[DncAdded]]) -> web.StreamResponse:
    """Runs a do-not-call addition; a refusal comes back to the page with its message and the form."""
    try:
        added = await add()
    except BadInput as error:
        return await _dnc_page(request, login, access, status=400, error=str(error), form=form)
    except CallcenterError as error:
        status, message = refusal(error)
        return await _dnc_page(request, login, access, status=status, error=message, form=form)
    return await _dnc_added(request, login, access, added, form)


@routes.post("/admin/dnc/upload")
@admin_page(top=True, body_limit=lambda: DNC_UPLOAD_MAX, too_large=_upload_back)
async def dnc_upload(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """A do-not-call file (one number a line, or a CSV with a number, phone or msisdn column)."""
    posted = await request.post()
    form = {"campaign": str(posted.get("campaign", ""))[:60], "region": str(posted.get("region", ""))[:20],
            "numbers": ""}
    upload = posted.get("file")

    async def add() -> DncAdded:
        if not isinstance(upload, web.FileField) or not upload.filename:
            raise BadInput("Choose a file to upload")
        return await request.app[DIALER].admin.import_dnc(login.user.id, _dnc_campaign(form),
                                                          text(form, "region", "Region", 10), upload.file)
    return await _dnc_submit(request, login, access, form, add)


@routes.post("/admin/dnc/remove")
@admin_page(top=True)
async def dnc_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    number = str(posted.get("number", ""))[:40]
    try:
        await request.app[DIALER].admin.remove_dnc_number(login.user.id, _dnc_campaign(posted), number)
    except BadInput as error:
        return await _dnc_page(request, login, access, status=400, error=str(error))
    except CallcenterError as error:
        status, message = refusal(error)
        return await _dnc_page(request, login, access, status=status, error=message)
    return redirect(f"/admin/dnc?{urlencode({'removed': number})}")
