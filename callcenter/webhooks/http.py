"""The webhooks admin pages (top admins only; docs/webhooks.md): /admin/webhooks lists the endpoints and
creates one (its secret shown once); /admin/webhooks/{id} changes it, rotates its secret (shown once), sends
a test event, deletes it, and lists its deliveries newest first with every attempt and "send again"."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

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
    refusal,
    utc_text,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates, pager
from callcenter.webhooks.admin import DeliveryInfo, EndpointInfo, FieldError, WebhookAdmin
from callcenter.webhooks.catalog import EVENTS

log = logging.getLogger(__name__)

WEBHOOKS: web.AppKey[WebhookAdmin] = web.AppKey("admin_webhooks", WebhookAdmin)
routes = web.RouteTableDef()
DONE = {"deleted": "The endpoint is deleted.", "saved": "The endpoint is saved.",
        "test": "A test event is queued: it appears below once sent.",
        "resent": "The delivery is queued again (same event id)."}


def install(app: web.Application, admin: WebhookAdmin) -> None:
    app[WEBHOOKS] = admin
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/webhooks", "Webhooks", "nav-webhooks", top=True, order=65))
    app.router.add_routes(routes)


def _number(request: web.Request, name: str) -> int:
    typed = request.match_info[name]
    if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
        raise BadInput("No such webhook endpoint")
    return int(typed)


async def _form(request: web.Request) -> dict[str, Any]:
    posted = await request.post()
    return {"name": str(posted.get("name", ""))[:200], "url": str(posted.get("url", ""))[:2100],
            "events": [str(v)[:64] for v in posted.getall("events", [])][:len(EVENTS) + 5],
            "active": posted.get("active") == "1"}


def _endpoint_line(info: EndpointInfo) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "url": info.url, "events": ", ".join(info.events),
            "active": info.active, "created": utc_text(info.created_at), "created_by": info.created_by,
            "secret_hint": info.secret_hint, "pending": info.pending, "failed": info.failed}


def _delivery_line(info: DeliveryInfo) -> dict[str, Any]:
    try:
        payload = json.dumps(json.loads(info.payload), indent=2, ensure_ascii=False)
    except ValueError:
        payload = info.payload
    return {"id": info.id, "event": info.event, "event_id": info.event_id, "created": utc_text(info.created_at),
            "status": info.status, "attempts": info.attempts, "payload": payload,
            "next": utc_text(info.next_attempt_at) if info.status == "pending" else "",
            "delivered": utc_text(info.delivered_at),
            "tries": [{"at": utc_text(t.at), "status": t.status_code if t.status_code is not None else "none",
                       "error": t.error, "ms": t.duration_ms, "excerpt": t.response_excerpt} for t in info.tries]}


async def _list_page(request: web.Request, login: Login, access: AdminAccess, status: int = 200, *,
                     errors: dict[str, str] | None = None, error: str = "", secret: str = "",
                     form: dict[str, Any] | None = None) -> web.Response:
    endpoints = await request.app[WEBHOOKS].endpoints()
    done = DONE.get(request.query.get("done", ""), "")
    return page(request, login, access, "admin_webhooks.html", status, error=error, errors=errors or {},
                done=done, secret=secret, lines=[_endpoint_line(e) for e in endpoints], catalog=EVENTS,
                form=form or {"name": "", "url": "", "events": [], "active": True})


async def _endpoint_page(request: web.Request, login: Login, access: AdminAccess, endpoint_id: int,
                         status: int = 200, *, errors: dict[str, str] | None = None, error: str = "",
                         secret: str = "", form: dict[str, Any] | None = None) -> web.Response:
    admin = request.app[WEBHOOKS]
    try:
        number = page_number(request.query)
        endpoint = await admin.get(endpoint_id)
        result = await admin.deliveries(endpoint_id, number, request.app[ADMIN].per_page)
    except BadInput as problem:
        return page(request, login, access, "refused.html", 400, message=str(problem))
    except CallcenterError as problem:
        code, message = refusal(problem)
        return page(request, login, access, "refused.html", code, message=message)
    shown = form or {"name": endpoint.name, "url": endpoint.url, "events": list(endpoint.events),
                     "active": endpoint.active}
    return page(request, login, access, "admin_webhook.html", status, error=error, errors=errors or {},
                done=DONE.get(request.query.get("done", ""), ""), secret=secret,
                endpoint=_endpoint_line(endpoint), form=shown, catalog=EVENTS,
                deliveries=[_delivery_line(d) for d in result.rows],
                pager=pager(f"/admin/webhooks/{endpoint_id}", {}, result))


@routes.get("/admin/webhooks")
@admin_page(top=True)
async def webhooks_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    return await _list_page(request, login, access)


@routes.post("/admin/webhooks")
@admin_page(top=True)
async def endpoint_create(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await _form(request)
    try:
        info, secret = await request.app[WEBHOOKS].create(
            name=form["name"], url=form["url"], events=form["events"], active=form["active"],
            created_by=login.user.login)
    except FieldError as problem:
        return await _list_page(request, login, access, 400, errors={problem.field: problem.message}, form=form)
    except CallcenterError as problem:
        code, message = refusal(problem)
        return await _list_page(request, login, access, code, error=message, form=form)
    log.info("admin: %s created webhook endpoint %d %r", login.user.login, info.id, info.name)
    return await _list_page(request, login, access, secret=secret)


@routes.get("/admin/webhooks/{id}")
@admin_page(top=True)
async def endpoint_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    try:
        endpoint_id = _number(request, "id")
    except BadInput as problem:
        return page(request, login, access, "refused.html", 404, message=str(problem))
    return await _endpoint_page(request, login, access, endpoint_id)


@routes.post("/admin/webhooks/{id}")
@admin_page(top=True)
async def endpoint_update(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    form = await _form(request)
    try:
        endpoint_id = _number(request, "id")
    except BadInput as problem:
        return page(request, login, access, "refused.html", 404, message=str(problem))
    try:
        await request.app[WEBHOOKS].update(endpoint_id, name=form["name"], url=form["url"],
                                           events=form["events"], active=form["active"])
    except FieldError as problem:
        return await _endpoint_page(request, login, access, endpoint_id, 400,
                                    errors={problem.field: problem.message}, form=form)
    except CallcenterError as problem:
        code, message = refusal(problem)
        return page(request, login, access, "refused.html", code, message=message)
    log.info("admin: %s changed webhook endpoint %d", login.user.login, endpoint_id)
    return redirect(f"/admin/webhooks/{endpoint_id}?done=saved")


@routes.post("/admin/webhooks/{id}/{action:delete|rotate|test}")
@admin_page(top=True)
async def endpoint_action(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    admin, action = request.app[WEBHOOKS], request.match_info["action"]
    try:
        endpoint_id = _number(request, "id")
        if action == "delete":
            info = await admin.delete(endpoint_id)
            log.info("admin: %s deleted webhook endpoint %d %r", login.user.login, info.id, info.name)
            return redirect("/admin/webhooks?done=deleted")
        if action == "rotate":
            info, secret = await admin.rotate(endpoint_id)
            log.info("admin: %s rotated the secret of webhook endpoint %d", login.user.login, info.id)
            return await _endpoint_page(request, login, access, endpoint_id, secret=secret)
        await admin.send_test(endpoint_id, login.user.login)
    except BadInput as problem:
        return page(request, login, access, "refused.html", 404, message=str(problem))
    except CallcenterError as problem:
        code, message = refusal(problem)
        return page(request, login, access, "refused.html", code, message=message)
    return redirect(f"/admin/webhooks/{endpoint_id}?done=test")


@routes.post("/admin/webhooks/deliveries/{id}/resend")
@admin_page(top=True)
async def delivery_resend(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    try:
        delivery = await request.app[WEBHOOKS].resend(_number(request, "id"))
    except BadInput:
        return page(request, login, access, "refused.html", 404, message="No such delivery")
    except CallcenterError as problem:
        code, message = refusal(problem)
        return page(request, login, access, "refused.html", code, message=message)
    log.info("admin: %s sent webhook delivery %d again", login.user.login, delivery.id)
    return redirect(f"/admin/webhooks/{delivery.endpoint_id}?done=resent")
