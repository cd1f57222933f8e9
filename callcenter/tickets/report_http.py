"""/tickets/report: the ticket report (seed items 19-24, tickets/report.py) for supervisors and admins, over
a range of UTC days (the last 7 by default) and optionally one unit of their scope."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.tickets.actions import TicketError
from callcenter.tickets.http import SCOPE, TICKETS, now, refused, show, ticket_page
from callcenter.tickets.report import ticket_report
from callcenter.users.units import Scope
from callcenter.web.admin_pages import BadInput, days, length_text
from callcenter.web.guards import Login

MANAGERS = ("supervisor", "admin")
NOT_APPLICABLE = "not applicable to call tickets"
routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """The report page; tickets/http.py ``install`` first."""
    app.router.add_routes(routes)


def _unit(typed: str) -> int | None:
    if not typed:
        return None
    if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
        raise TicketError("unit", "Choose a unit")
    return int(typed)


@routes.get("/tickets/report")
@ticket_page(roles=MANAGERS)
async def report_page(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[TICKETS]
    scope: Scope = request[SCOPE]
    typed = {name: request.query.get(name, "")[:20] for name in ("from", "to", "unit")}
    today = now().date()
    report, error, status = None, "", 200
    try:
        day_from, day_to = days(typed)
        last: date = day_to or today
        first: date = day_from or last - timedelta(days=6)
        unit_id = _unit(typed["unit"])
        report = await pages.run(lambda s: ticket_report(s, login.user.id, first, last, unit_id,
                                                         pages.close_target_hours))
        typed = {"from": first.isoformat(), "to": last.isoformat(), "unit": typed["unit"]}
    except BadInput as bad:
        error, status = str(bad), 400
    except TicketError as bad:
        error, status = bad.message, bad.http_status
    except CallcenterError as bad:
        return refused(request, login, bad)
    return show(request, login, "ticket_report.html", status, report=report, form=typed, error=error,
                units=scope.units, length_text=length_text, not_applicable=NOT_APPLICABLE)
