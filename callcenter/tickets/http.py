"""The ticket pages (CRM-2, docs/tickets.md) for agents, supervisors and admins: the list with its filters
(/tickets), a ticket from the call the agent is on and the customer's earlier tickets to attach the call to
(/tickets/new?call=RECORD_ID), one ticket with its timeline and forms (/tickets/{id}), its click-to-call, the
small state a page polls while a call is in progress, and a recording of a call on it. The report is
report_http.py's. Every route checks the role and reads the user's ticket scope (actions.py
``ticket_scope``, fail closed) for every request; POSTs carry the CSRF token."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.acd.events import PlaceCall
from callcenter.bus import Bus
from callcenter.customers.models import Customer
from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.errors import ActionRefused, CallcenterError
from callcenter.recording.files import mp3_path
from callcenter.tickets import actions, views
from callcenter.tickets.actions import TicketError, ticket_scope
from callcenter.tickets.models import ORIGINS, STATUSES
from callcenter.tickets.store import TicketStore
from callcenter.users.units import Scope
from callcenter.web.admin_pages import PER_PAGE, BadInput, MenuEntry, add_menu_entry, days, page_number, query
from callcenter.web.guards import Handler, Login, guard, redirect
from callcenter.web.headers import protect
from callcenter.web.pages import add_templates, pager, render

log = logging.getLogger(__name__)
T = TypeVar("T")
ROLES = ("agent", "supervisor", "admin")
RECORDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CALL_ID = 32
NO_RECORDING = "No such recording of this ticket's calls (or not ready)"
DONE = {"created": "Ticket created", "attached": "The call was added to this ticket", "saved": "Saved",
        "calling": "Calling: your phone rings first, then the customer's"}


@dataclass(frozen=True)
class TicketPages:
    db: Database
    store: TicketStore
    bus: Bus
    files_dir: Path | None = None  # where the recordings' MP3s are (None: not played here)
    close_target_hours: float = 24.0
    # Waits until the call records queued so far are stored: an agent who clicks "New ticket for this call"
    # a moment after answering acts on a call whose record (its agent) may still be on its way.
    records_caught_up: Callable[[], Awaitable[bool]] | None = None

    async def run(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.db, work)

    async def on_call_records(self, work: Callable[[Session], T]) -> T:
        """``run``, once the call records queued before now are in the database."""
        if self.records_caught_up is not None:
            await self.records_caught_up()
        return await self.run(work)


TICKETS: web.AppKey[TicketPages] = web.AppKey("tickets", TicketPages)
SCOPE = "ticket_scope"
routes = web.RouteTableDef()
PageHandler = Callable[[web.Request, Login], Awaitable[web.StreamResponse]]


def install(app: web.Application, pages: TicketPages) -> None:
    """The ticket pages; needs the panel's sessions (make_app) and the admin pages (the menu)."""
    app[TICKETS] = pages
    add_templates(app, Path(__file__).parent / "templates")
    protect(app, "/tickets")
    add_menu_entry(app, MenuEntry("/tickets", "Tickets", "nav-tickets", order=14))
    app.router.add_routes(routes)


def now() -> datetime:
    return datetime.now(UTC)


def ticket_page(api: bool = False, roles: tuple[str, ...] = ROLES) -> Callable[[PageHandler], Handler]:
    """The panel's ``guard`` for ``roles``, then the user's ticket scope (403 saying why when it is empty),
    then CSRF on POST."""

    async def authorise(request: web.Request, login: Login) -> web.StreamResponse | None:
        try:
            request[SCOPE] = await request.app[TICKETS].run(lambda s: ticket_scope(s, login.user.id))
        except ActionRefused as refused:
            if api:
                return web.json_response({"error": refused.message}, status=refused.http_status)
            return render(request, "refused.html", login, refused.http_status, message=refused.message)
        return None

    def wrap(handler: PageHandler) -> Handler:
        return guard(roles, api=api, authorise=authorise)(functools.wraps(handler)(handler))

    return wrap


def show(request: web.Request, login: Login, template: str, status: int = 200, **context: Any) -> web.Response:
    scope: Scope = request[SCOPE]
    return render(request, template, login, status, admin_top=scope.top and login.user.has("admin"),
                  statuses=STATUSES, origins=ORIGINS, **context)


def refused(request: web.Request, login: Login, error: CallcenterError) -> web.Response:
    message = error.message if isinstance(error, ActionRefused | TicketError) else str(error)
    return show(request, login, "refused.html", error.http_status, message=message)


async def form_values(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {name: value for name, value in posted.items() if isinstance(value, str)}


def _ticket_id(request: web.Request) -> int:
    return int(request.match_info["id"])


# --- the list ----------------------------------------------------------------------------------------

LIST_FIELDS = ("status", "origin", "assignee", "q", "from", "to")


@routes.get("/tickets")
@ticket_page()
async def tickets_page(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[TICKETS]
    typed = {name: request.query.get(name, "")[:120] for name in LIST_FIELDS}
    result, error, status = None, "", 200
    try:
        day_from, day_to = days(typed)
        number = page_number(query(request.query))
        filters = views.TicketFilters(typed["status"], typed["origin"], typed["assignee"], typed["q"], day_from,
                                      day_to)
        result = await pages.run(lambda s: views.list_tickets(s, login.user.id, filters, number, PER_PAGE))
    except BadInput as bad:
        error, status = str(bad), 400
    except TicketError as bad:
        error, status = bad.message, bad.http_status
    scope: Scope = request[SCOPE]
    people = await pages.run(lambda s: actions.assignable(s, scope))
    return show(request, login, "tickets.html", status, form=typed, result=result, error=error, people=people,
                pager=pager("/tickets", typed, result) if result else None)


# --- a ticket from a call ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CallContext:
    call_id: str
    number: str
    direction: str
    ended: bool
    customer_id: int | None
    customer: str
    tickets: list[views.TicketRow]
    on_ticket: int | None  # the ticket the agent already put this call on


def call_context(session: Session, store: TicketStore, user_id: int, call_id: str) -> CallContext:
    row = actions.own_call(session, user_id, call_id)
    number = store.number(row.number)
    customer_id = store.customer_of(session, number)
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    done = actions.call_entry_of(session, user_id, row.id)
    tickets = views.customer_call_tickets(session, user_id, customer_id, number)
    return CallContext(row.id, number, row.direction, row.ended_at is not None, customer_id,
                       customer.name if customer else "", tickets, done.ticket_id if done else None)


async def _new_page(request: web.Request, login: Login, call_id: str, status: int = 200,
                    form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None) -> web.Response:
    pages = request.app[TICKETS]
    try:
        context = await pages.on_call_records(lambda s: call_context(s, pages.store, login.user.id, call_id))
    except CallcenterError as error:
        return refused(request, login, error)
    return show(request, login, "ticket_new.html", status, call=context, form=form or {}, errors=errors or {})


@routes.get("/tickets/new")
@ticket_page()
async def new_page(request: web.Request, login: Login) -> web.StreamResponse:
    call_id = request.query.get("call", "")[:CALL_ID]
    if not call_id:
        return show(request, login, "refused.html", 400,
                    message="Open this page from a call: the agent page's \"New ticket for this call\"")
    return await _new_page(request, login, call_id)


@routes.post("/tickets/new")
@ticket_page()
async def new_ticket(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[TICKETS]
    form = await form_values(request)
    call_id = form.get("call", "")[:CALL_ID]
    subject, summary = form.get("subject", ""), form.get("summary", "")
    try:
        ticket_id = await pages.on_call_records(lambda s: actions.create_from_call(
            s, pages.store, login.user.id, call_id, subject, summary, now()))
    except TicketError as error:
        if error.field in ("subject", "summary"):
            return await _new_page(request, login, call_id, error.http_status, form, {error.field: error.message})
        return refused(request, login, error)
    except CallcenterError as error:
        return refused(request, login, error)
    log.info("tickets: %s made ticket %d from call %s", login.user.login, ticket_id, call_id)
    return redirect(f"/tickets/{ticket_id}?created=1")


@routes.post(r"/tickets/{id:\d{1,12}}/attach-call")
@ticket_page()
async def attach(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[TICKETS]
    ticket_id = _ticket_id(request)
    form = await form_values(request)
    call_id, summary = form.get("call", "")[:CALL_ID], form.get("summary", "")
    try:
        await pages.on_call_records(lambda s: actions.attach_call(s, pages.store, login.user.id, ticket_id, call_id,
                                                                  summary, now()))
    except CallcenterError as error:
        return refused(request, login, error)
    log.info("tickets: %s attached call %s to ticket %d", login.user.login, call_id, ticket_id)
    return redirect(f"/tickets/{ticket_id}?attached=1")


# --- one ticket --------------------------------------------------------------------------------------

async def _ticket(request: web.Request, login: Login, ticket_id: int, status: int = 200,
                  errors: Mapping[str, str] | None = None, form: Mapping[str, str] | None = None) -> web.Response:
    pages = request.app[TICKETS]
    scope: Scope = request[SCOPE]
    placed = request.query.get("call", "")
    placed = placed if RECORDING_ID.fullmatch(placed) and len(placed) <= CALL_ID else ""
    try:
        view = await pages.run(lambda s: views.get_ticket(s, login.user.id, ticket_id))
        live = await pages.run(lambda s: views.ticket_state(s, login.user.id, ticket_id, placed))
        people = await pages.run(lambda s: actions.assignable(s, scope))
    except CallcenterError as error:
        return refused(request, login, error)
    done = next((text for key, text in DONE.items() if request.query.get(key)), "") if status == 200 else ""
    # A call the user placed from this ticket and is still on, not yet on the ticket: the summary form.
    summary_for = placed if placed and live["call_in_progress"] and not any(
        e.call_id == placed for e in view.entries) else ""
    return show(request, login, "ticket.html", status, ticket=view, people=people, errors=errors or {},
                form=form or {}, done=done, plays=pages.files_dir is not None, live=live, placed=placed,
                summary_for=summary_for)


@routes.get(r"/tickets/{id:\d{1,12}}")
@ticket_page()
async def ticket_view(request: web.Request, login: Login) -> web.StreamResponse:
    return await _ticket(request, login, _ticket_id(request))


Change = Callable[[Session, TicketStore, int, int, str, datetime], object]


def _assignee(session: Session, store: TicketStore, user_id: int, ticket_id: int, typed: str, at: datetime) -> None:
    if typed and not (typed.isascii() and typed.isdigit() and len(typed) <= 12):
        raise TicketError("assignee", "Choose a user")
    actions.change_assignee(session, store, user_id, ticket_id, int(typed) if typed else None, at)


CHANGES: dict[str, tuple[str, Change]] = {
    "reply": ("body", lambda s, st, u, t, v, at: actions.add_message(s, st, u, t, "reply", v, at)),
    "note": ("body", lambda s, st, u, t, v, at: actions.add_message(s, st, u, t, "note", v, at)),
    "status": ("status", actions.change_status),
    "assignee": ("assignee", _assignee),
    "subject": ("subject", actions.change_subject),
}


@routes.post(r"/tickets/{id:\d{1,12}}/{action:reply|note|status|assignee|subject}")
@ticket_page()
async def ticket_change(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[TICKETS]
    ticket_id, action = _ticket_id(request), request.match_info["action"]
    field, change = CHANGES[action]
    form = await form_values(request)
    value = form.get(field, "")
    try:
        await pages.run(lambda s: change(s, pages.store, login.user.id, ticket_id, value, now()))
    except TicketError as error:
        if error.http_status == 404:
            return refused(request, login, error)
        return await _ticket(request, login, ticket_id, error.http_status, {action: error.message},
                             {action: value})
    except CallcenterError as error:
        return refused(request, login, error)
    log.info("tickets: %s: %s on ticket %d", login.user.login, action, ticket_id)
    return redirect(f"/tickets/{ticket_id}?saved=1")


@routes.post(r"/tickets/{id:\d{1,12}}/call")
@ticket_page()
async def ticket_call(request: web.Request, login: Login) -> web.StreamResponse:
    """Click-to-call from the ticket: the ACD rings the user's phone, then the ticket's number."""
    pages = request.app[TICKETS]
    ticket_id = _ticket_id(request)
    try:
        view = await pages.run(lambda s: views.get_ticket(s, login.user.id, ticket_id))
        if not view.row.number:
            raise TicketError("call", "This ticket has no number to call")
        record_id = await pages.bus.ask(PlaceCall(login.user.id, view.row.number, ticket_id))
    except TicketError as error:
        if error.http_status == 404:
            return refused(request, login, error)
        return await _ticket(request, login, ticket_id, error.http_status, {"call": error.message})
    except ActionRefused as error:
        return await _ticket(request, login, ticket_id, error.http_status, {"call": error.message})
    except CallcenterError as error:
        return await _ticket(request, login, ticket_id, error.http_status, {"call": str(error)})
    log.info("tickets: %s calls the number of ticket %d", login.user.login, ticket_id)
    if isinstance(record_id, str) and RECORDING_ID.fullmatch(record_id) and len(record_id) <= CALL_ID:
        return redirect(f"/tickets/{ticket_id}?calling=1&call={record_id}")
    return redirect(f"/tickets/{ticket_id}?calling=1")


@routes.get(r"/tickets/{id:\d{1,12}}/state")
@ticket_page(api=True)
async def ticket_state(request: web.Request, login: Login) -> web.StreamResponse:
    """What the ticket page polls while it waits for a call to end or its recording to be ready."""
    pages = request.app[TICKETS]
    ticket_id = _ticket_id(request)
    placed = request.query.get("call", "")[:CALL_ID]
    try:
        state = await pages.run(lambda s: views.ticket_state(s, login.user.id, ticket_id, placed))
    except CallcenterError as error:
        message = error.message if isinstance(error, ActionRefused | TicketError) else str(error)
        return web.json_response({"error": message}, status=error.http_status)
    return web.json_response(state)


@routes.get(r"/tickets/{id:\d{1,12}}/recordings/{rid}")
@ticket_page()
async def ticket_recording(request: web.Request, login: Login) -> web.StreamResponse:
    """The MP3 of a ready recording of a call on the ticket, for a user who may see the ticket; 404 else."""
    pages = request.app[TICKETS]
    ticket_id, recording_id = _ticket_id(request), request.match_info["rid"]
    found = None
    if pages.files_dir is not None and RECORDING_ID.fullmatch(recording_id):
        try:
            found = await pages.run(lambda s: views.ticket_recording(s, login.user.id, ticket_id, recording_id))
        except CallcenterError as error:
            return refused(request, login, error)
    path = mp3_path(pages.files_dir, found)
    if path is None:
        return show(request, login, "refused.html", 404, message=NO_RECORDING)
    log.info("tickets: %s plays recording %s of ticket %d", login.user.login, recording_id, ticket_id)
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg"})
