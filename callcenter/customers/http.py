"""The customers' admin pages (CRM-1): search and create (/admin/customers), a customer's profile with
its custom fields, edit form and history (/admin/customers/{id}), merge, CSV import with its report, and
the custom field definitions (/admin/customer-fields, top admins). The work is in services.py,
history.py, importer.py and fields.py; docs/customers.md describes the pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.customers import fields as custom
from callcenter.customers.fields import CustomerError, FieldInput, FieldView
from callcenter.customers.history import customer_history
from callcenter.customers.importer import IMPORT_BYTES_MAX, CustomerImportError, import_customers
from callcenter.customers.services import (
    CustomerInput,
    create_customer,
    get_customer,
    merge_customers,
    search_customers,
    update_customer,
)
from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import (
    ADMIN,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    page,
    page_number,
    query,
    refusal,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates, pager

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class CustomerPages:
    db: Database
    region: str

    async def run(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.db, work)


CUSTOMERS: web.AppKey[CustomerPages] = web.AppKey("customers", CustomerPages)
routes = web.RouteTableDef()


def install(app: web.Application, pages: CustomerPages) -> None:
    """The customer pages; the shared admin pages (web/admin_pages.py) first."""
    app[CUSTOMERS] = pages
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/customers", "Customers", "nav-customers", order=15))
    add_menu_entry(app, MenuEntry("/admin/customer-fields", "Customer fields", "nav-customer-fields",
                                  top=True, order=16))
    app.router.add_routes(routes)


async def _form(request: web.Request) -> dict[str, str]:
    posted = await request.post()
    return {name: value for name, value in posted.items() if isinstance(value, str)}


def _customer_input(form: Mapping[str, str]) -> CustomerInput:
    phones = form.get("phones", "").replace(";", "\n").splitlines()
    values = {name.removeprefix("f_"): value for name, value in form.items() if name.startswith("f_")}
    return CustomerInput(form.get("name", ""), phones, form.get("email", ""), form.get("company", ""),
                         form.get("note", ""), values)


def _refused(request: web.Request, login: Login, access: AdminAccess, error: CallcenterError) -> web.Response:
    status, message = refusal(error)
    return page(request, login, access, "refused.html", status, message=message)


# --- list and create ---------------------------------------------------------------------------------

async def _list_page(request: web.Request, login: Login, access: AdminAccess, status: int = 200,
                     form: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
                     ) -> web.Response:
    pages = request.app[CUSTOMERS]
    values = query(request.query)
    typed = values.get("q", "")[:120]
    error = ""
    result = None
    try:
        number = page_number(values)
        result = await pages.run(lambda s: search_customers(s, login.user.id, typed, number,
                                                           request.app[ADMIN].per_page))
    except BadInput as bad:
        status, error = 400, str(bad)
    except CustomerError as bad:
        status, error = bad.http_status, bad.message
    except CallcenterError as refused:
        return _refused(request, login, access, refused)
    specs = await pages.run(custom.list_fields)
    return page(request, login, access, "admin_customers.html", status, q=typed, result=result, error=error,
                pager=pager("/admin/customers", {"q": typed}, result) if result else None,
                specs=specs, form=form or {}, errors=errors or {})


@routes.get("/admin/customers")
@admin_page()
async def customers_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    return await _list_page(request, login, access)


@routes.post("/admin/customers")
@admin_page()
async def customer_create(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    form = await _form(request)
    data = _customer_input(form)
    try:
        customer_id = await pages.run(lambda s: create_customer(s, login.user.id, data, pages.region))
    except CustomerError as error:
        return await _list_page(request, login, access, error.http_status, form, {error.field: error.message})
    except CallcenterError as error:
        return _refused(request, login, access, error)
    log.info("admin: %s created customer %d", login.user.login, customer_id)
    return redirect(f"/admin/customers/{customer_id}")


# --- profile, edit, history --------------------------------------------------------------------------

async def _profile(request: web.Request, login: Login, access: AdminAccess, customer_id: int,
                   status: int = 200, form: Mapping[str, str] | None = None,
                   errors: Mapping[str, str] | None = None, done: str = "") -> web.Response:
    pages = request.app[CUSTOMERS]
    try:
        customer = await pages.run(lambda s: get_customer(s, login.user.id, customer_id))
        history = await pages.run(lambda s: customer_history(s, login.user.id, customer_id))
    except CallcenterError as error:
        return _refused(request, login, access, error)
    if form is None:
        form = {"name": customer.name, "phones": "\n".join(customer.phones), "email": customer.email,
                "company": customer.company, "note": customer.note,
                **{f"f_{spec.name}": value for spec, value in customer.values}}
    return page(request, login, access, "admin_customer.html", status, customer=customer, history=history,
                specs=[spec for spec, _ in customer.values], form=form, errors=errors or {}, done=done)


def _customer_id(request: web.Request) -> int:
    return int(request.match_info["id"])


@routes.get(r"/admin/customers/{id:\d{1,12}}")
@admin_page()
async def customer_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = "Saved" if request.query.get("saved") else ("Merged" if request.query.get("merged") else "")
    return await _profile(request, login, access, _customer_id(request), done=done)


@routes.post(r"/admin/customers/{id:\d{1,12}}")
@admin_page()
async def customer_update(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    customer_id = _customer_id(request)
    form = await _form(request)
    data = _customer_input(form)
    try:
        await pages.run(lambda s: update_customer(s, login.user.id, customer_id, data, pages.region))
    except CustomerError as error:
        if error.http_status == 404:
            return _refused(request, login, access, error)
        return await _profile(request, login, access, customer_id, error.http_status, form,
                              {error.field: error.message})
    except CallcenterError as error:
        return _refused(request, login, access, error)
    log.info("admin: %s changed customer %d", login.user.login, customer_id)
    return redirect(f"/admin/customers/{customer_id}?saved=1")


# --- merge -------------------------------------------------------------------------------------------

def _ids(form: Mapping[str, str]) -> tuple[int, int]:
    found = []
    for name, label in (("keep", "Keep"), ("other", "Merge into it")):
        typed = form.get(name, "").strip().lstrip("#")
        if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
            raise CustomerError(name, f"{label}: the number of a customer (#12 on its page)")
        found.append(int(typed))
    return found[0], found[1]


@routes.get("/admin/customers/merge")
@admin_page()
async def merge_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = {name: request.query.get(name, "")[:20] for name in ("keep", "other")}
    return page(request, login, access, "admin_customer_merge.html", form=form, errors={})


@routes.post("/admin/customers/merge")
@admin_page()
async def merge(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await _form(request)
    try:
        keep, other = _ids(form)
        await request.app[CUSTOMERS].run(lambda s: merge_customers(s, login.user.id, keep, other))
    except CustomerError as error:
        field = error.field if error.field in ("keep", "other") else "other"
        return page(request, login, access, "admin_customer_merge.html", error.http_status,
                    form={k: form.get(k, "")[:20] for k in ("keep", "other")}, errors={field: error.message})
    except CallcenterError as error:
        return _refused(request, login, access, error)
    log.info("admin: %s merged customer %d into %d", login.user.login, other, keep)
    return redirect(f"/admin/customers/{keep}?merged=1")


# --- import ------------------------------------------------------------------------------------------

@routes.get("/admin/customers/import")
@admin_page()
async def import_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    error = (f"The file is larger than {IMPORT_BYTES_MAX // (1024 * 1024)} MB: split it"
             if request.query.get("error") == "too-large" else "")
    return page(request, login, access, "admin_customer_import.html", 413 if error else 200, error=error,
                report=None)


@routes.post("/admin/customers/import")
@admin_page(body_limit=lambda: IMPORT_BYTES_MAX + 64 * 1024, too_large=lambda request: "/admin/customers/import")
async def import_upload(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    pages = request.app[CUSTOMERS]
    posted = await request.post()
    upload = posted.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return page(request, login, access, "admin_customer_import.html", 400, error="Choose a CSV file",
                    report=None)
    raw = upload.file.read(IMPORT_BYTES_MAX + 1)
    try:
        if len(raw) > IMPORT_BYTES_MAX:
            raise CustomerImportError(f"the file is larger than {IMPORT_BYTES_MAX // (1024 * 1024)} MB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CustomerImportError("the file is not UTF-8 text: save it as CSV UTF-8") from None
        report = await pages.run(lambda s: import_customers(s, login.user.id, text, pages.region))
    except CustomerImportError as error:
        return page(request, login, access, "admin_customer_import.html", 400,
                    error=f"{error!s} (nothing was imported)", report=None)
    except CallcenterError as error:
        return _refused(request, login, access, error)
    log.info("admin: %s imported customers: %s", login.user.login, report.summary())
    return page(request, login, access, "admin_customer_import.html", error="", report=report)


# --- custom fields (top admins) ----------------------------------------------------------------------

async def _fields_page(request: web.Request, login: Login, access: AdminAccess, status: int = 200,
                       form: Mapping[str, Any] | None = None, errors: Mapping[str, str] | None = None,
                       done: str = "") -> web.Response:
    specs: list[FieldView] = await request.app[CUSTOMERS].run(custom.list_fields)
    return page(request, login, access, "admin_customer_fields.html", status, specs=specs, kinds=custom.FIELD_KINDS,
                form=form or {"kind": "text"}, errors=errors or {}, done=done)


@routes.get("/admin/customer-fields")
@admin_page(top=True)
async def fields_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    return await _fields_page(request, login, access, done="Saved" if request.query.get("saved") else "")


@routes.post("/admin/customer-fields")
@admin_page(top=True)
async def field_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await _form(request)
    typed_position = form.get("position", "0").strip() or "0"
    try:
        if not typed_position.lstrip("-").isdigit() or len(typed_position) > 6:
            raise CustomerError("position", "a whole number from -10000 to 10000")
        data = FieldInput(form.get("name", ""), form.get("label", ""), form.get("kind", "text"),
                          tuple(form.get("choices", "").splitlines()), form.get("required") == "on",
                          form.get("on_card") == "on", int(typed_position))
        await request.app[CUSTOMERS].run(lambda s: custom.save_field(s, data))
    except CustomerError as error:
        return await _fields_page(request, login, access, error.http_status, form, {error.field: error.message})
    log.info("admin: %s saved the customer field %s", login.user.login, form.get("name", ""))
    return redirect("/admin/customer-fields?saved=1")


@routes.post("/admin/customer-fields/remove")
@admin_page(top=True)
async def field_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await _form(request)
    name = form.get("name", "")[:64]
    try:
        await request.app[CUSTOMERS].run(lambda s: custom.remove_field(s, name))
    except CustomerError as error:
        return await _fields_page(request, login, access, error.http_status, errors={"remove": error.message})
    log.info("admin: %s removed the customer field %s", login.user.login, name)
    return redirect("/admin/customer-fields?saved=1")
