"""/api/v1/cdrs: the call detail records a token's user may see (an admin: the units of their scope, the
same query as the CDR page, cdr/queries.py), newest first, filtered by day and number (docs/api.md)."""

from __future__ import annotations

from aiohttp import web

from callcenter.cdr.queries import CdrFilters, CdrQueries
from callcenter.export.cdr import CDR_HEADER
from callcenter.users.tokens import TokenUser
from callcenter.web.api import (
    DAY_RANGE_PARAMS,
    BadRequest,
    Operation,
    Param,
    add_route,
    day_param,
    paged,
    pagination,
    text_param,
)

CDR_QUERIES: web.AppKey[CdrQueries] = web.AppKey("api_cdr_queries", CdrQueries)
DISPOSITIONS = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "CONGESTION")

CDR_SCHEMA = {"type": "object", "properties": {name: {"type": "string"} for name in CDR_HEADER}}


def install(app: web.Application, queries: CdrQueries) -> None:
    app[CDR_QUERIES] = queries
    add_route(app, "GET", "/api/v1/cdrs", list_cdrs, Operation(
        "Call detail records in the token user's scope, newest first", roles=("admin",), paged=True,
        response=CDR_SCHEMA, params=(
            *DAY_RANGE_PARAMS,
            Param("number", "Part of the source, destination or caller ID"),
            Param("disposition", "One of " + ", ".join(DISPOSITIONS)))))


async def list_cdrs(request: web.Request, who: TokenUser) -> web.StreamResponse:
    values = request.query
    page, per_page = pagination(request)
    disposition = text_param(values, "disposition", 20).upper()
    if disposition and disposition not in DISPOSITIONS:
        raise BadRequest("disposition: one of " + ", ".join(DISPOSITIONS))
    filters = CdrFilters(day_param(values, "from"), day_param(values, "to"), text_param(values, "number", 80),
                         disposition)
    result = await request.app[CDR_QUERIES].list_cdr(who.user_id, filters, page, per_page)
    items = [dict(zip(result.header, row, strict=True)) for row in result.rows]
    return paged(items, page, per_page, result.pages, result.total)
