"""The customer pages every role opens (CRM-1): search and create (/customers), a customer's profile with
its custom fields, history and edit form (/customers/{id}), a recording of one of its calls
(/customers/{id}/recordings/{rid}), and "search the customer database to link" a caller's number
(/customers/link, from the screen pop). Agents see the customers of their unit, admins and supervisors those
of the units they manage (customers/services.py ``customer_scope``, read for every request: it fails
closed). Merge, import and custom fields are the admins' (customers/admin_http.py); docs/customers.md."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.customers import fields as custom
from callcenter.customers.fields import CustomerError
from callcenter.customers.history import HistorySource, customer_history, customer_recording
from callcenter.customers.services import (
    CustomerInput,
    create_customer,
    customer_scope,
    get_customer,
    link_number,
    search_customers,
    update_customer,
)
from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.errors import ActionRefused, CallcenterError
from callcenter.recording.files import mp3_path
from callcenter.users.units import Scope
from callcenter.web.admin_pages import PER_PAGE, BadInput, page_number, query
from callcenter.web.guards import Handler, Login, LoginHandler, guard, redirect
from callcenter.web.headers import protect
from callcenter.web.pages import add_templates, pager, render

log = logging.getLogger(__name__)
T = TypeVar("T")
ROLES = ("agent", "supervisor", "admin")
RECORDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CALL_ID = 64
NO_RECORDING = "No such recording of this customer's calls (or not ready, or not in your units)"


@dataclass(frozen=True)
class CustomerPages:
    db: Database
    region: str
    files_dir: Path | None = None  # where the recordings' MP3s are (None: recordings are not played here)
    # What other features add to the history (the tickets feature's tickets), wired by the composition root.
    history_sources: list[HistorySource] = field(default_factory=list)

    async def run(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.db, work)


CUSTOMERS: web.AppKey[CustomerPages] = web.AppKey("customers", CustomerPages)
SCOPE = "customer_scope"
routes = web.RouteTableDef()


def install(app: web.Application, pages: CustomerPages) -> None:
    """The pages every role opens; needs the panel's sessions (make_app)."""
    app[CUSTOMERS] = pages
    add_templates(app, Path(__file__).parent / "templates")
    protect(app, "/customers")
    app.router.add_routes(routes)


async def form_values(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {name: value for name, value in posted.items() if isinstance(value, str)}


def customer_page() -> Callable[[LoginHandler], Handler]:
    """The panel's ``guard`` for an agent, supervisor or admin, then their customer scope (403 saying why
    when it is empty or they may not see customers), then CSRF on POST."""

    async def authorise(request: web.Request, login: Login) -> web.StreamResponse | None:
        try:
            request[SCOPE] = await request.app[CUSTOMERS].run(lambda s: customer_scope(s, login.user.id))
        except ActionRefused as refused:
            return render(request, "refused.html", login, refused.http_status, message=refused.message)
        return None

    return guard(ROLES, authorise=authorise)


def show(request: web.Request, login: Login, template: str, status: int = 200, **context: Any) -> web.Response:
    scope: Scope = request[SCOPE]
    return render(request, template, login, status, admin_top=scope.top and login.user.has("admin"), **context)


def _refused(request: web.Request, login: Login, error: CallcenterError) -> web.Response:
    message = error.message if isinstance(error, ActionRefused | CustomerError) else str(error)
    return show(request, login, "refused.html", error.http_status, message=message)


def _customer_input(form: Mapping[str, str]) -> CustomerInput:
    phones = form.get("phones", "").replace(";", "\n").splitlines()
    values = {name.removeprefix("f_"): value for name, value in form.items() if name.startswith("f_")}
    return CustomerInput(form.get("name", ""), phones, form.get("email", ""), form.get("company", ""),
                         form.get("note", ""), values)


def _customer_id(request: web.Request) -> int:
    return int(request.match_info["id"])


# --- search and create -------------------------------------------------------------------------------

async def _search(request: web.Request, login: Login, typed: str
                  ) -> tuple[Any, str, int]:
    """(result page or None, error, status) of the search box."""
    pages = request.app[CUSTOMERS]
    try:
        number = page_number(query(request.query))
        result = await pages.run(lambda s: search_customers(s, login.user.id, typed, number, PER_PAGE))
    except BadInput as bad:
        return None, str(bad), 400
    except CustomerError as bad:
        return None, bad.message, bad.http_status
    return result, "", 200


async def _list_page(request: web.Request, login: Login, status: int = 200,
                     form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
                     ) -> web.Response:
    typed = request.query.get("q", "")[:120]
    result, error, found = await _search(request, login, typed)
    specs = await request.app[CUSTOMERS].run(custom.list_fields)
    return show(request, login, "customers.html", status if status != 200 else found, q=typed, result=result,
                error=error, pager=pager("/customers", {"q": typed}, result) if result else None,
                specs=specs, form=form or {}, errors=errors or {})


@routes.get("/customers")
@customer_page()
async def customers_page(request: web.Request, login: Login) -> web.StreamResponse:
    return await _list_page(request, login)


@routes.post("/customers")
@customer_page()
async def customer_create(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    form = await form_values(request)
    data = _customer_input(form)
    try:
        customer_id = await pages.run(lambda s: create_customer(s, login.user.id, data, pages.region))
    except CustomerError as error:
        return await _list_page(request, login, error.http_status, form, {error.field: error.message})
    except CallcenterError as error:
        return _refused(request, login, error)
    log.info("customers: %s created customer %d", login.user.login, customer_id)
    return redirect(f"/customers/{customer_id}")


# --- profile, edit, history --------------------------------------------------------------------------

async def _profile(request: web.Request, login: Login, customer_id: int, status: int = 200,
                   form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None,
                   done: str = "") -> web.Response:
    pages = request.app[CUSTOMERS]
    try:
        customer = await pages.run(lambda s: get_customer(s, login.user.id, customer_id))
        history = await pages.run(lambda s: customer_history(s, login.user.id, customer_id,
                                                             sources=pages.history_sources))
    except CallcenterError as error:
        return _refused(request, login, error)
    if form is None:
        form = {"name": customer.name, "phones": "\n".join(customer.phones), "email": customer.email,
                "company": customer.company, "note": customer.note,
                **{f"f_{spec.name}": value for spec, value in customer.values}}
    return show(request, login, "customer.html", status, customer=customer, history=history,
                specs=[spec for spec, _ in customer.values], form=form, errors=errors or {}, done=done,
                plays=pages.files_dir is not None)


DONE = {"saved": "Saved", "merged": "Merged", "linked": "The number was added to this customer's numbers"}


@routes.get(r"/customers/{id:\d{1,12}}")
@customer_page()
async def customer_page_view(request: web.Request, login: Login) -> web.StreamResponse:
    done = next((text for key, text in DONE.items() if request.query.get(key)), "")
    return await _profile(request, login, _customer_id(request), done=done)


@routes.post(r"/customers/{id:\d{1,12}}")
@customer_page()
async def customer_update(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    customer_id = _customer_id(request)
    form = await form_values(request)
    data = _customer_input(form)
    try:
        await pages.run(lambda s: update_customer(s, login.user.id, customer_id, data, pages.region))
    except CustomerError as error:
        if error.http_status == 404:
            return _refused(request, login, error)
        return await _profile(request, login, customer_id, error.http_status, form, {error.field: error.message})
    except CallcenterError as error:
        return _refused(request, login, error)
    log.info("customers: %s changed customer %d", login.user.login, customer_id)
    return redirect(f"/customers/{customer_id}?saved=1")


@routes.get(r"/customers/{id:\d{1,12}}/recordings/{rid}")
@customer_page()
async def customer_recording_audio(request: web.Request, login: Login) -> web.StreamResponse:
    """The MP3 of a ready recording of one of the customer's calls, both in the user's scope; 404 else."""
    pages = request.app[CUSTOMERS]
    customer_id, recording_id = _customer_id(request), request.match_info["rid"]
    found = None
    if pages.files_dir is not None and RECORDING_ID.fullmatch(recording_id):
        try:
            found = await pages.run(lambda s: customer_recording(s, login.user.id, customer_id, recording_id))
        except CallcenterError as error:
            return _refused(request, login, error)
    path = mp3_path(pages.files_dir, found)
    if path is None:
        return show(request, login, "refused.html", 404, message=NO_RECORDING)
    log.info("customers: %s plays recording %s of customer %d", login.user.login, recording_id, customer_id)
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg"})


# --- link a caller's number to a customer (the screen pop's "search the customer database to link") ----

def _link_context(request: web.Request) -> dict[str, str]:
    return {"number": request.query.get("number", "").strip()[:40], "call": request.query.get("call", "")[:CALL_ID]}


@routes.get("/customers/link")
@customer_page()
async def link_page(request: web.Request, login: Login) -> web.StreamResponse:
    context = _link_context(request)
    typed = request.query.get("q", "")[:120]
    result, error, status = (await _search(request, login, typed)) if typed else (None, "", 200)
    if not context["number"]:
        error, status = "There is no number to link: open this page from a call's card", 400
    return show(request, login, "customer_link.html", status, q=typed, result=result, error=error,
                pager=pager("/customers/link", {**context, "q": typed}, result) if result else None, back="",
                **context)


@routes.post("/customers/link")
@customer_page()
async def link(request: web.Request, login: Login) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    form = await form_values(request)
    number, call = form.get("number", "").strip()[:40], form.get("call", "")[:CALL_ID]
    typed = form.get("customer", "")
    try:
        if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
            raise CustomerError("customer", "Choose a customer to link the number to")
        customer_id = int(typed)
        stored = await pages.run(lambda s: link_number(s, login.user.id, customer_id, number, pages.region))
    except CustomerError as error:
        back = "/customers/link?" + urlencode({"number": number, "call": call, "q": form.get("q", "")[:120]})
        return show(request, login, "customer_link.html", error.http_status, q=form.get("q", "")[:120],
                    result=None, pager=None, number=number, call=call, error=error.message, back=back)
    except CallcenterError as error:
        return _refused(request, login, error)
    log.info("customers: %s linked %s (call %s) to customer %d", login.user.login, stored, call or "-", customer_id)
    return redirect(f"/customers/{customer_id}?linked=1")
