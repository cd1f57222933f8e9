"""The Retention admin page (top admins): how long each category is kept, and "delete all" of one
(queries: retention/admin.py). docs/retention.md describes the page."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.retention.admin import RetentionAdmin, RetentionView
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import MenuEntry, add_menu_entry, admin_page, page, refusal, utc_text
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates

NOTHING_DELETED = "Nothing was deleted"

RETENTION: web.AppKey[RetentionAdmin] = web.AppKey("retention", RetentionAdmin)
routes = web.RouteTableDef()


def install(app: web.Application, admin: RetentionAdmin) -> None:
    """/admin/retention; the shared admin pages (web/admin_pages.py) first."""
    app[RETENTION] = admin
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/retention", "Retention", "nav-retention", top=True, order=40))
    app.router.add_routes(routes)


def _retention_page(request: web.Request, login: Login, access: AdminAccess, view: RetentionView, *,
                    status: int = 200, error: str = "", done: str = "",
                    typed: Mapping[str, str] | None = None) -> web.Response:
    values = {row.category: "forever" if row.days is None else str(row.days) for row in view.policies}
    if typed:
        values.update(typed)
    purges = [{"at": utc_text(p.at), "category": p.category, "kind": p.kind.replace("_", " "),
               "cutoff": utc_text(p.cutoff), "rows": p.rows, "files": p.files, "by": p.by}
              for p in view.purges]
    return page(request, login, access, "admin_retention.html", status, error=error, done=done,
                policies=view.policies, values=values, purges=purges)


async def _retention_view(request: web.Request, login: Login) -> RetentionView:
    return await request.app[RETENTION].retention(login.user.id)


@routes.get("/admin/retention")
@admin_page(top=True)
async def retention_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = "The retention settings were saved." if request.query.get("saved") == "1" else ""
    return _retention_page(request, login, access, await _retention_view(request, login), done=done)


@routes.post("/admin/retention")
@admin_page(top=True)
async def retention_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    view = await _retention_view(request, login)
    form = await request.post()
    # A category missing from the form stays as it is ("" is typed, and means for ever).
    typed = {row.category: str(form[f"days-{row.category}"])[:20] for row in view.policies
             if f"days-{row.category}" in form}
    try:
        await request.app[RETENTION].set_retention(login.user.id, typed)
    except CallcenterError as error:
        status, message = refusal(error)
        return _retention_page(request, login, access, view, status=status, error=message, typed=typed)
    return redirect("/admin/retention?saved=1")


@routes.post("/admin/retention/delete")
@admin_page(top=True)
async def retention_delete(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await request.post()
    category = str(form.get("category", ""))[:40]
    confirmation = str(form.get("confirm", ""))[:20]
    try:
        result = await request.app[RETENTION].delete_all(login.user.id, category, confirmation)
    except CallcenterError as error:
        status, message = refusal(error)
        if NOTHING_DELETED.lower() not in message.lower():
            message = f"{NOTHING_DELETED}: {message}"
        return _retention_page(request, login, access, await _retention_view(request, login), status=status,
                               error=message)
    done = f"Deleted all {result.category}: {result.rows} records and {result.files} files."
    return _retention_page(request, login, access, await _retention_view(request, login), done=done)
