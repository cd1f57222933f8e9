"""The Units admin page (top admins): the organisational units, their members and admins, and what becomes
of a unit's managers when it is removed (queries: users/units_admin.py). docs/security.md describes
scopes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.users.units_admin import UnitsAdmin
from callcenter.web.admin_pages import (
    CONTROL,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    names,
    page,
    refusal,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates

UNIT_LIST_MAX = 5000

UNITS: web.AppKey[UnitsAdmin] = web.AppKey("units", UnitsAdmin)
routes = web.RouteTableDef()


def install(app: web.Application, admin: UnitsAdmin) -> None:
    """/admin/units; the shared admin pages (web/admin_pages.py) first."""
    app[UNITS] = admin
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/units", "Units", "nav-units", top=True, order=50))
    app.router.add_routes(routes)


async def _units_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                      error: str = "", done: str = "", form: Mapping[str, str] | None = None,
                      removing: Mapping[str, Any] | None = None) -> web.Response:
    units = await request.app[UNITS].units(login.user.id)
    if form is None:
        editing = next((u for u in units if u.name == request.query.get("edit")), None)
        form = ({"name": editing.name, "members": ", ".join(editing.members), "admins": ", ".join(editing.admins)}
                if editing else {"name": "", "members": "", "admins": ""})
    return page(request, login, access, "admin_units.html", status, error=error, done=done, units=units,
                form=form, editing=bool(form["name"]), removing=removing)


@routes.get("/admin/units")
@admin_page(top=True)
async def units_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = {"saved": "The unit was saved.", "removed": "The unit was removed."}.get(request.query.get("done", ""), "")
    return await _units_page(request, login, access, done=done)


@routes.post("/admin/units")
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
        await request.app[UNITS].save_unit(login.user.id, form["name"], names(form["members"]),
                                           names(form["admins"]))
    except BadInput as error:
        return await _units_page(request, login, access, status=400, error=str(error), form=form)
    except CallcenterError as error:
        status, message = refusal(error)
        return await _units_page(request, login, access, status=status, error=message, form=form)
    return redirect("/admin/units?done=saved")


@routes.post("/admin/units/remove")
@admin_page(top=True)
async def unit_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    name = str(posted.get("name", ""))[:200]
    choice = str(posted.get("managers", ""))
    admin = request.app[UNITS]
    try:
        managers = await admin.unit_managers(login.user.id, name)
        if managers and choice not in ("move", "drop"):
            # Ask what becomes of the unit's managers before removing it (they could lose all their scope).
            others = [unit.name for unit in await admin.units(login.user.id) if unit.name != name]
            return await _units_page(request, login, access, removing={
                "name": name, "managers": managers, "others": others, "error": ""})
        await admin.remove_unit(login.user.id, name,
                                managers_to=str(posted.get("managers_to", "")) if choice == "move" else None,
                                drop_managers=choice == "drop")
    except CallcenterError as error:
        status, message = refusal(error)
        return await _units_page(request, login, access, status=status, error=message)
    return redirect("/admin/units?done=removed")
