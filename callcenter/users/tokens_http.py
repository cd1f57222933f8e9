"""The API tokens admin page (/admin/api-tokens, top admins only): create a token for a user (its secret
shown once, on the answer to the form), list tokens, revoke one. Tokens: users/tokens.py; docs/api.md."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from pathlib import Path

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.users.tokens import ApiTokens
from callcenter.web.admin_pages import (
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    day,
    page,
    refusal,
    text,
    utc_text,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates

log = logging.getLogger(__name__)

TOKENS: web.AppKey[ApiTokens] = web.AppKey("admin_api_tokens", ApiTokens)
routes = web.RouteTableDef()


def install(app: web.Application, tokens: ApiTokens) -> None:
    app[TOKENS] = tokens
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/api-tokens", "API tokens", "nav-api-tokens", top=True, order=60))
    app.router.add_routes(routes)


async def _tokens_page(request: web.Request, login: Login, access: AdminAccess, status: int = 200, *,
                       error: str = "", secret: str = "", form: dict[str, str] | None = None) -> web.Response:
    tokens = await request.app[TOKENS].list()
    lines = [{"id": t.id, "name": t.name, "user": t.user, "created_by": t.created_by,
              "created": utc_text(t.created_at), "expires": utc_text(t.expires_at),
              "used": utc_text(t.last_used_at), "state": t.state} for t in tokens]
    done = {"revoked": "The token is revoked."}.get(request.query.get("done", ""), "")
    return page(request, login, access, "admin_api_tokens.html", status, error=error, done=done, secret=secret,
                lines=lines, form=form or {"name": "", "user": "", "expires": ""})


@routes.get("/admin/api-tokens")
@admin_page(top=True)
async def tokens_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    return await _tokens_page(request, login, access)


@routes.post("/admin/api-tokens")
@admin_page(top=True)
async def token_create(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    form = {name: str(posted.get(name, ""))[:200] for name in ("name", "user", "expires")}
    try:
        name, user = text(form, "name", "Name", 100), text(form, "user", "User", 64)
        if not name or not user:
            raise BadInput("Name and user are needed")
        expires = day(form, "expires", "Expires")
        info, secret = await request.app[TOKENS].create(
            name=name, user=user, created_by=login.user.login,
            expires_at=datetime.combine(expires, time(), UTC) if expires else None)
    except BadInput as error:
        return await _tokens_page(request, login, access, 400, error=str(error), form=form)
    except CallcenterError as error:
        status, message = refusal(error)
        return await _tokens_page(request, login, access, status, error=message, form=form)
    log.info("admin: %s created API token %d %r for %s", login.user.login, info.id, info.name, info.user)
    return await _tokens_page(request, login, access, secret=secret)


@routes.post("/admin/api-tokens/{id}/revoke")
@admin_page(top=True)
async def token_revoke(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    token_id = request.match_info["id"]
    try:
        if not token_id.isdigit() or len(token_id) > 12:
            raise BadInput("No such token")
        info = await request.app[TOKENS].revoke(int(token_id))
    except BadInput as error:
        return await _tokens_page(request, login, access, 404, error=str(error))
    except CallcenterError as error:
        status, message = refusal(error)
        return await _tokens_page(request, login, access, status, error=message)
    log.info("admin: %s revoked API token %d %r", login.user.login, info.id, info.name)
    return redirect("/admin/api-tokens?done=revoked")
