"""The CDR admin page: the CDRs in the admin's scope, a page at a time, and all of them as a CSV file
streamed in chunks (queries: cdr/queries.py). docs/cdr.md describes the page and the file."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from callcenter.cdr.queries import CdrFilters, CdrQueries
from callcenter.db.queries import ResultPage
from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import (
    ADMIN,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    days,
    kept,
    page,
    page_number,
    query,
    refusal,
    text,
)
from callcenter.web.guards import Login
from callcenter.web.pages import add_templates, pager

log = logging.getLogger(__name__)

DISPOSITIONS = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "CONGESTION")
# (query field, label, longest value) of the search
CDR_FIELDS = (("from", "From", 10), ("to", "To", 10), ("number", "Number", 80),
              ("disposition", "Disposition", 20), ("src_id", "Source id", 80))

CDRS: web.AppKey[CdrQueries] = web.AppKey("cdrs", CdrQueries)
routes = web.RouteTableDef()


def install(app: web.Application, queries: CdrQueries) -> None:
    """/admin/cdr and /admin/cdr.csv; the shared admin pages (web/admin_pages.py) first."""
    app[CDRS] = queries
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/cdr", "CDR", "nav-cdr", order=20))
    app.router.add_routes(routes)


def cdr_filters(values: Mapping[str, str]) -> CdrFilters:
    day_from, day_to = days(values)
    disposition = text(values, "disposition", "Disposition", 20)
    if disposition and disposition not in DISPOSITIONS:
        raise BadInput(f"Disposition: one of {', '.join(DISPOSITIONS)}")
    return CdrFilters(day_from, day_to, text(values, "number", "Number", 80), disposition,
                      text(values, "src_id", "Source id", 80))


def _cdr_page(request: web.Request, login: Login, access: AdminAccess, status: int, error: str,
              form: Mapping[str, str], result: ResultPage[tuple[str, ...]] | None) -> web.Response:
    csv_link = "/admin/cdr.csv" + (f"?{urlencode({k: v for k, v in form.items() if v})}"
                                   if any(form.values()) else "")
    return page(request, login, access, "admin_cdr.html", status, error=error, form=form,
                dispositions=DISPOSITIONS, result=result, csv_link=csv_link,
                pager=pager("/admin/cdr", form, result) if result else None)


@routes.get("/admin/cdr")
@admin_page()
async def cdr_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = query(request.query)
    form = kept(values, CDR_FIELDS)
    try:
        filters, number = cdr_filters(values), page_number(values)
        result = await request.app[CDRS].list_cdr(login.user.id, filters, number, request.app[ADMIN].per_page)
    except BadInput as error:
        return _cdr_page(request, login, access, 400, str(error), form, None)
    except CallcenterError as error:
        status, message = refusal(error)
        return _cdr_page(request, login, access, status, message, form, None)
    return _cdr_page(request, login, access, 200, "", form, result)


@routes.get("/admin/cdr.csv")
@admin_page()
async def cdr_csv(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """Every matching CDR as CSV, oldest first, streamed: the queries read the rows in chunks."""
    values = query(request.query)
    form = kept(values, CDR_FIELDS)
    try:
        filters = cdr_filters(values)
    except BadInput as error:
        return _cdr_page(request, login, access, 400, str(error), form, None)
    chunks = request.app[CDRS].cdr_csv_chunks(login.user.id, filters)
    async with contextlib.aclosing(chunks):
        try:
            first = await anext(chunks, b"")
        except CallcenterError as error:
            status, message = refusal(error)
            return _cdr_page(request, login, access, status, message, form, None)
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
