"""The users' pages: login (GET/POST /login), logout (POST /logout) and password change (GET/POST
/password), with their templates in users/templates.

``install(app, accounts, throttle)`` adds them to an application built by ``make_app`` (web/app.py), whose
session signer they issue sessions with. ``accounts`` is users/accounts.py ``UserAccounts`` (or a fake);
``throttle`` counts failed logins and wrong current passwords per address and account (shared with FTPS
by the composition root). docs/panel.md describes the session and CSRF design.
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import Protocol

from aiohttp import web

from callcenter.errors import ActionRefused
from callcenter.users.throttle import LoginThrottle
from callcenter.web.guards import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    WEB,
    Accounts,
    Login,
    User,
    current_login,
    guard,
    landing,
    redirect,
    safe_next,
    same_origin,
    same_token,
    set_cookie,
)
from callcenter.web.headers import protect
from callcenter.web.pages import add_templates, render

log = logging.getLogger(__name__)

WRONG_LOGIN = "Wrong login or password"
PATHS = ("/login", "/logout", "/password")


class AccountService(Accounts, Protocol):
    """What the login, logout and password pages need (users/accounts.py ``UserAccounts``)."""

    async def authenticate(self, login: str, password: str) -> User | None:
        """The user when the login and password match, else None (argon2, off the event loop)."""

    async def account(self, typed: str) -> str:
        """One name per account for the login throttle (a login typed as the extension is the same)."""

    async def end_sessions(self, user_id: int) -> None:
        """Ends every session of the user, everywhere and across restarts (logout)."""

    async def change_password(self, user_id: int, old: str, new: str) -> int:
        """Changes the password and ends every session of the user; returns the new session epoch.
        Raises ActionRefused (403) when ``old`` is wrong, (400) when ``new`` is too weak."""


class LoginState:
    def __init__(self, accounts: AccountService, throttle: LoginThrottle | None) -> None:
        self.accounts = accounts
        self.throttle = throttle or LoginThrottle()


LOGINS: web.AppKey[LoginState] = web.AppKey("logins", LoginState)

routes = web.RouteTableDef()


def install(app: web.Application, accounts: AccountService, throttle: LoginThrottle | None = None) -> None:
    """The login, logout and password pages; the application needs sessions (``make_app(accounts=...)``)."""
    if WEB not in app:
        raise ValueError("the login pages need sessions: build the app with make_app(accounts=...)")
    app[LOGINS] = LoginState(accounts, throttle)
    add_templates(app, Path(__file__).parent / "templates")
    protect(app, *PATHS)
    app.router.add_routes(routes)


def too_many(wait: float) -> str:
    seconds = max(1, round(wait))
    return f"Too many failed attempts. Try again in {seconds} second{'s' if seconds > 1 else ''}."


def _login_page(request: web.Request, status: int = 200, error: str = "", login_name: str = "",
                next_path: str | None = None) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
        token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status=status, error=error, login_name=login_name,
                      next_path=next_path or "", login_csrf=token)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=None, path="/login")
    return response


@routes.get("/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    next_path = safe_next(request.query.get("next"))
    login = await current_login(request)
    if login is not None:
        return redirect(next_path or landing(login.user))
    return _login_page(request, next_path=next_path)


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    state = request.app[LOGINS]
    form = await request.post()
    login_name = str(form.get("login", "")).strip()
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    origin = request.headers.get("Origin")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if (origin is not None and not same_origin(origin, request)) or not cookie \
            or not same_token(form.get("csrf"), cookie):
        return _login_page(request, 403, "This login form has expired or came from another site. Please try again.",
                           login_name, next_path)
    address = request.remote or ""
    account = await state.accounts.account(login_name)
    wait = state.throttle.wait_for(address, account)
    if wait:
        return _login_page(request, 429, too_many(wait), login_name, next_path)
    user = await state.accounts.authenticate(login_name, password) if login_name and password else None
    if user is None:
        state.throttle.failed(address, account)
        return _login_page(request, 401, WRONG_LOGIN, login_name, next_path)
    state.throttle.succeeded(address, account)
    session, token = request.app[WEB].signer.issue(user.id, user.session_epoch)
    response = redirect(next_path or landing(user))
    set_cookie(request, response, SESSION_COOKIE, token, max_age=session.expires_at - session.issued_at)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    log.info("panel: %s logged in", user.login)
    return response


@routes.post("/logout")
@guard()
async def logout(request: web.Request, login: Login) -> web.StreamResponse:
    # Ends this user's sessions everywhere (other browsers too), across restarts.
    await request.app[LOGINS].accounts.end_sessions(login.user.id)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    log.info("panel: %s logged out", login.user.login)
    return response


@routes.get("/password")
@guard()
async def password_form(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "password.html", login, error="", done=False)


@routes.post("/password")
@guard()
async def password_submit(request: web.Request, login: Login) -> web.StreamResponse:
    form = await request.post()
    old, new, repeat = (str(form.get(name, "")) for name in ("old", "new", "repeat"))
    if not old or not new:
        return render(request, "password.html", login, 400, error="Fill in the current and the new password",
                      done=False)
    if new != repeat:
        return render(request, "password.html", login, 400, error="The two new passwords differ", done=False)
    state = request.app[LOGINS]
    address, account = request.remote or "", login.user.login.casefold()
    wait = state.throttle.wait_for(address, account)
    if wait:
        return render(request, "password.html", login, 429, error=too_many(wait), done=False)
    try:
        epoch = await state.accounts.change_password(login.user.id, old, new)
    except ActionRefused as error:
        if error.http_status == 403:  # the current password was wrong: a guess like a failed login
            state.throttle.failed(address, account)
        return render(request, "password.html", login, error.http_status, error=error.message, done=False)
    state.throttle.succeeded(address, account)
    # Every other session of the user has ended; this browser carries on with a new one.
    session, token = request.app[WEB].signer.issue(login.user.id, epoch)
    response = render(request, "password.html", Login(session, login.user), error="", done=True)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=session.expires_at - session.issued_at)
    return response
