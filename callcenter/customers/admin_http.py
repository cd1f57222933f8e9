"""The customers' admin-only pages (CRM-1): merge two customers (/admin/customers/merge), the CSV import
with its report (/admin/customers/import), and the custom field definitions (/admin/customer-fields, top
admins). Search, profiles, create and edit are every role's (customers/http.py); docs/customers.md."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcenter.customers import fields as custom
from callcenter.customers.fields import CustomerError, FieldInput, FieldView
from callcenter.customers.http import CUSTOMERS, form_values
from callcenter.customers.importer import IMPORT_BYTES_MAX, CustomerImportError, import_customers
from callcenter.customers.services import merge_customers
from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import MenuEntry, add_menu_entry, admin_page, page, refusal
from callcenter.web.guards import Login, redirect

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """The admin pages; customers/http.py ``install`` first (the shared admin pages before it)."""
    add_menu_entry(app, MenuEntry("/customers", "Customers", "nav-customers", order=15))
    add_menu_entry(app, MenuEntry("/admin/customer-fields", "Customer fields", "nav-customer-fields",
                                  top=True, order=16))
    app.router.add_routes(routes)


async def _form(request: web.Request) -> dict[str, str]:
    return await form_values(request)


def _refused(request: web.Request, login: Login, access: AdminAccess, error: CallcenterError) -> web.Response:
    status, message = refusal(error)
    return page(request, login, access, "refused.html", status, message=message)


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
    return redirect(f"/customers/{keep}?merged=1")


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
