"""Who is asking, and may they: what every page and API of the controller shares to check a request.

Offers ``Login`` (a session and the user behind it), ``current_login``, ``guard`` (the decorator every
logged-in route wears: session, role, an optional ``authorise`` hook, then CSRF on POST), the role tuples
``AGENT`` and ``SUPERVISOR`` with ``allowed``, ``landing`` (where a user goes after logging in),
``safe_next``, ``same_origin``, ``csrf_problem``, ``redirect``, ``set_cookie``, ``still_allowed`` (what a
long event stream re-checks) and the cookie names. The roles and the ``User`` protocol are web/roles.py's,
offered here again.

The web layer does not know where users live: ``Accounts`` is the one thing it asks of them (the user
behind a session), implemented by the users feature (callcenter/users/accounts.py) and installed with the
session key by ``make_app`` (web/app.py) as ``WEB``. Sessions themselves are web/sessions.py; docs/panel.md
describes the session and CSRF design.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeGuard
from urllib.parse import quote, urlsplit

from aiohttp import web

from callcenter.web.pages import render
from callcenter.web.roles import AGENT, SUPERVISOR, WHO, User, allowed, landing
from callcenter.web.sessions import Session, SessionSigner

__all__ = ["AGENT", "LOGIN_CSRF_COOKIE", "SESSION_COOKIE", "SUPERVISOR", "WEB", "Accounts", "Authorise", "Handler",
           "Login", "LoginHandler", "User", "WebState", "allowed", "csrf_problem", "current_login", "guard",
           "landing", "redirect", "safe_next", "same_origin", "same_token", "set_cookie", "still_allowed",
           "still_current"]

SESSION_COOKIE = "cc_session"
LOGIN_CSRF_COOKIE = "cc_login_csrf"


class Accounts(Protocol):
    """What the guards need of the users feature."""

    async def user(self, user_id: int) -> User | None:
        """The user behind a session (None when removed or disabled since)."""


class WebState:
    """Sessions for every page of one application (``WEB``): the signer, the accounts behind them, and the
    event that ends the open event streams at shutdown."""

    def __init__(self, accounts: Accounts, session_key: str, secure_cookies: bool) -> None:
        try:
            key = bytes.fromhex(session_key)
        except ValueError:
            raise ValueError("the panel's session key must be a hex string") from None
        self.accounts = accounts
        self.signer = SessionSigner(key)
        self.secure_cookies = secure_cookies
        self.closing = asyncio.Event()


WEB: web.AppKey[WebState] = web.AppKey("web", WebState)


@dataclass(frozen=True)
class Login:
    session: Session
    user: User


LoginHandler = Callable[[web.Request, Login], Awaitable[web.StreamResponse]]
# Runs after the session and role checks and before the body is read: a refusal (a response) or None.
Authorise = Callable[[web.Request, Login], Awaitable[web.StreamResponse | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- sessions and roles --------------------------------------------------------------------------------

async def current_login(request: web.Request) -> Login | None:
    """The logged-in user, re-read from the accounts on every request: a removed or disabled user, or a
    session from before the user's epoch last rose (logout, password or role change), is logged out."""
    state = request.app[WEB]
    token = request.cookies.get(SESSION_COOKIE)
    session = state.signer.verify(token) if token else None
    if session is None:
        return None
    user = await state.accounts.user(session.user_id)
    return Login(session, user) if still_current(user, session) else None


def still_current(user: User | None, session: Session) -> TypeGuard[User]:
    """The session's user is still there and enabled (``Accounts.user``) and has not had their sessions
    ended since it was issued (their epoch has not moved)."""
    return user is not None and user.session_epoch == session.epoch


async def still_allowed(request: web.Request, login: Login, roles: tuple[str, ...]) -> bool:
    """What a long stream re-checks that a new request would: not expired, user still there and enabled,
    no session ended since (the epoch), still in one of ``roles``."""
    state = request.app[WEB]
    if state.signer.clock() >= login.session.expires_at:
        return False
    user = await state.accounts.user(login.user.id)
    return still_current(user, login.session) and allowed(user, roles)


# --- where requests come from and go to ----------------------------------------------------------------

def safe_next(target: str | None) -> str | None:
    """A local path to go to after login; anything that could leave the site is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _authority(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def same_origin(origin: str, request: web.Request) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return _authority(parts.scheme, parts.netloc) == _authority(parts.scheme, request.host)


def same_token(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


async def csrf_problem(request: web.Request, expected: str) -> str | None:
    """Why a state-changing request is refused: foreign Origin, or a missing or wrong CSRF token."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request):
        return "Refused: the request came from another site"
    token: object = request.headers.get("X-CSRF-Token")
    if token is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        token = (await request.post()).get("csrf")
    if not same_token(token, expected):
        return "Refused: the security token is missing or out of date; reload the page and try again"
    return None


# --- the guard -------------------------------------------------------------------------------------------

def guard(roles: tuple[str, ...] = (), *, api: bool = False, authorise: Authorise | None = None,
          body_limit: Callable[[], int] | None = None) -> Callable[[LoginHandler], Handler]:
    """Lets a request through only with a valid session, one of ``roles``, what ``authorise`` asks and, on
    POST, the CSRF token. The body is read (for the token) only after all of those: a user without the
    right cannot make the server read a large upload. ``body_limit()`` raises the request's size limit
    for this route, also only after those checks."""

    def wrap(handler: LoginHandler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            login = await current_login(request)
            if login is None:
                if api:
                    return web.json_response({"error": "Not logged in"}, status=401)
                target = request.path_qs if request.method == "GET" else request.path
                return redirect(f"/login?next={quote(target, safe='/')}")
            if not allowed(login.user, roles):
                message = f"This page is for {WHO.get(roles, 'other users')}"
                if api:
                    return web.json_response({"error": message}, status=403)
                return render(request, "refused.html", login, status=403, message=message)
            if authorise is not None:
                refused = await authorise(request, login)
                if refused is not None:
                    return refused
            if body_limit is not None:
                request = request.clone(client_max_size=body_limit())
            if request.method == "POST":
                problem = await csrf_problem(request, login.session.csrf)
                if problem:
                    if api:
                        return web.json_response({"error": problem}, status=403)
                    return render(request, "refused.html", login, status=403, message=problem)
            return await handler(request, login)

        return checked

    return wrap


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None, path: str = "/") -> None:
    """An HttpOnly, SameSite=Strict cookie; Secure on HTTPS or when the install says so (behind a proxy)."""
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="Strict",
                        secure=request.app[WEB].secure_cookies or request.secure)
