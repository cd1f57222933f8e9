"""The agent panel and the wallboard: login, sessions, CSRF, role checks, pages and their JSON/SSE APIs.

Everything the panel shows or does goes through the ``PanelBackend`` protocol (backend.py); this module
only speaks HTTP. docs/panel.md describes the routes, the session and CSRF design and the SSE protocol.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from callcenter.errors import ActionRefused, CallcenterError
from callcenter.users.throttle import LoginThrottle
from callcenter.web.backend import PanelBackend, PanelUser
from callcenter.web.feeds import PING_INTERVAL, EventStream, WallboardFeed, to_json, wait_first
from callcenter.web.sessions import Session, SessionSigner

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "cc_session"
LOGIN_CSRF_COOKIE = "cc_login_csrf"
AGENT = ("agent",)
SUPERVISOR = ("supervisor", "admin")
WHO = {AGENT: "agents", SUPERVISOR: "supervisors"}
WRONG_LOGIN = "Wrong login or password"
# A supervisor's monitor_view with nothing to show: what the wallboard assumes until told otherwise.
NO_MONITOR = '{"session":null,"can_monitor":false}'

PANEL_PATHS = ("/login", "/logout", "/password", "/agent", "/wallboard", "/api/agent", "/api/wallboard",
               "/api/supervisor")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class PanelState:
    """Everything the panel routes share; one per application (``PANEL``)."""

    def __init__(self, backend: PanelBackend, session_key: str, secure_cookies: bool,
                 throttle: LoginThrottle | None = None) -> None:
        try:
            key = bytes.fromhex(session_key)
        except ValueError:
            raise ValueError("the panel's session key must be a hex string") from None
        self.backend = backend
        self.signer = SessionSigner(key)
        # Shared with FTPS by the composition root: one count of failures per address and account.
        self.throttle = throttle or LoginThrottle()
        self.secure_cookies = secure_cookies
        self.feed = WallboardFeed(backend)
        self.closing = asyncio.Event()
        self.ping_interval = PING_INTERVAL
        self.recheck_interval = PING_INTERVAL
        self.templates = jinja2.Environment(loader=jinja2.PackageLoader("callcenter.web", "templates"),
                                            autoescape=True, undefined=jinja2.StrictUndefined)


PANEL: web.AppKey[PanelState] = web.AppKey("panel", PanelState)


@dataclass(frozen=True)
class Login:
    session: Session
    user: PanelUser


LoginHandler = Callable[[web.Request, Login], Awaitable[web.StreamResponse]]
# Runs after the session and role checks and before the body is read: a refusal (a response) or None.
Authorise = Callable[[web.Request, Login], Awaitable[web.StreamResponse | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- wiring ------------------------------------------------------------------------------------------

def add_panel(app: web.Application, backend: PanelBackend, session_key: str, secure_cookies: bool,
              throttle: LoginThrottle | None = None) -> None:
    app[PANEL] = PanelState(backend, session_key, secure_cookies, throttle)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(_close_streams)
    app.cleanup_ctx.append(_wallboard_producer)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_get("/password", password_form)
    app.router.add_post("/password", password_submit)
    app.router.add_get("/agent", agent_page)
    app.router.add_get("/api/agent", agent_json)
    app.router.add_get("/api/agent/events", agent_events)
    app.router.add_post("/api/agent/action", agent_action)
    app.router.add_get("/wallboard", wallboard_page)
    app.router.add_get("/api/wallboard", wallboard_json)
    app.router.add_get("/api/wallboard/events", wallboard_events)
    app.router.add_post("/api/supervisor/action", supervisor_action)
    app.router.add_get("/api/supervisor/monitor", monitor_json)
    app.router.add_static("/static/", STATIC_DIR)


async def _close_streams(app: web.Application) -> None:
    """Ends the open event streams, so a graceful shutdown does not wait for them."""
    app[PANEL].closing.set()


async def _wallboard_producer(app: web.Application) -> AsyncIterator[None]:
    state = app[PANEL]
    task = asyncio.create_task(state.feed.run(state.closing), name="wallboard-feed")
    yield
    state.closing.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    path = request.path
    if path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
    elif path.startswith(PANEL_PATHS):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"


# --- sessions, roles and CSRF ------------------------------------------------------------------------

async def current_login(request: web.Request) -> Login | None:
    """The logged-in user, re-read from the backend on every request: a removed or disabled user, or a
    session from before the user's epoch last rose (logout, password or role change), is logged out."""
    state = request.app[PANEL]
    token = request.cookies.get(SESSION_COOKIE)
    session = state.signer.verify(token) if token else None
    if session is None:
        return None
    user = await state.backend.user(session.user_id)
    return Login(session, user) if _still_current(user, session) else None


def _still_current(user: PanelUser | None, session: Session) -> TypeGuard[PanelUser]:
    """The session's user is still there and enabled (``backend.user``) and has not had their sessions
    ended since it was issued (their epoch has not moved)."""
    return user is not None and user.session_epoch == session.epoch


def allowed(user: PanelUser, roles: tuple[str, ...]) -> bool:
    return not roles or any(user.has(role) for role in roles)


def landing(user: PanelUser) -> str:
    if user.has("agent"):
        return "/agent"
    if allowed(user, SUPERVISOR):
        return "/wallboard"
    return "/password"


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


def _same_token(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


async def csrf_problem(request: web.Request, expected: str) -> str | None:
    """Why a state-changing request is refused: foreign Origin, or a missing or wrong CSRF token."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request):
        return "Refused: the request came from another site"
    token: object = request.headers.get("X-CSRF-Token")
    if token is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        token = (await request.post()).get("csrf")
    if not _same_token(token, expected):
        return "Refused: the security token is missing or out of date; reload the page and try again"
    return None


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


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int | None, path: str = "/") -> None:
    state = request.app[PANEL]
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="Strict",
                        secure=state.secure_cookies or request.secure)


# --- pages -------------------------------------------------------------------------------------------

def render(request: web.Request, template: str, login: Login | None, status: int = 200,
           **context: Any) -> web.Response:
    state = request.app[PANEL]
    user = login.user if login else None
    text = state.templates.get_template(template).render(
        user=user, csrf=login.session.csrf if login else "",
        can_agent=bool(user and user.has("agent")), can_wallboard=bool(user and allowed(user, SUPERVISOR)),
        server_time=int(time.time() * 1000), **context)
    return web.Response(text=text, status=status, content_type="text/html")


def _login_page(request: web.Request, status: int = 200, error: str = "", login_name: str = "",
                next_path: str | None = None) -> web.Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token):
        token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status=status, error=error, login_name=login_name,
                      next_path=next_path or "", login_csrf=token)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=None, path="/login")
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    next_path = safe_next(request.query.get("next"))
    login = await current_login(request)
    if login is not None:
        return redirect(next_path or landing(login.user))
    return _login_page(request, next_path=next_path)


async def login_submit(request: web.Request) -> web.StreamResponse:
    state = request.app[PANEL]
    form = await request.post()
    login_name = str(form.get("login", "")).strip()
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    origin = request.headers.get("Origin")
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if (origin is not None and not same_origin(origin, request)) or not cookie \
            or not _same_token(form.get("csrf"), cookie):
        return _login_page(request, 403, "This login form has expired or came from another site. Please try again.",
                           login_name, next_path)
    address = request.remote or ""
    account = await state.backend.account(login_name)
    wait = state.throttle.wait_for(address, account)
    if wait:
        return _login_page(request, 429, too_many(wait), login_name, next_path)
    user = await state.backend.authenticate(login_name, password) if login_name and password else None
    if user is None:
        state.throttle.failed(address, account)
        return _login_page(request, 401, WRONG_LOGIN, login_name, next_path)
    state.throttle.succeeded(address, account)
    session, token = state.signer.issue(user.id, user.session_epoch)
    response = redirect(next_path or landing(user))
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=session.expires_at - session.issued_at)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    log.info("panel: %s logged in", user.login)
    return response


def too_many(wait: float) -> str:
    seconds = max(1, round(wait))
    return f"Too many failed attempts. Try again in {seconds} second{'s' if seconds > 1 else ''}."


@guard()
async def logout(request: web.Request, login: Login) -> web.StreamResponse:
    # Ends this user's sessions everywhere (other browsers too), across restarts.
    await request.app[PANEL].backend.end_sessions(login.user.id)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    log.info("panel: %s logged out", login.user.login)
    return response


@guard()
async def password_form(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "password.html", login, error="", done=False)


@guard()
async def password_submit(request: web.Request, login: Login) -> web.StreamResponse:
    form = await request.post()
    old, new, repeat = (str(form.get(name, "")) for name in ("old", "new", "repeat"))
    if not old or not new:
        return render(request, "password.html", login, 400, error="Fill in the current and the new password",
                      done=False)
    if new != repeat:
        return render(request, "password.html", login, 400, error="The two new passwords differ", done=False)
    state = request.app[PANEL]
    address, account = request.remote or "", login.user.login.casefold()
    wait = state.throttle.wait_for(address, account)
    if wait:
        return render(request, "password.html", login, 429, error=too_many(wait), done=False)
    try:
        epoch = await state.backend.change_password(login.user.id, old, new)
    except ActionRefused as error:
        if error.http_status == 403:  # the current password was wrong: a guess like a failed login
            state.throttle.failed(address, account)
        return render(request, "password.html", login, error.http_status, error=error.message, done=False)
    state.throttle.succeeded(address, account)
    # Every other session of the user has ended; this browser carries on with a new one.
    session, token = state.signer.issue(login.user.id, epoch)
    response = render(request, "password.html", Login(session, login.user), error="", done=True)
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=session.expires_at - session.issued_at)
    return response


@guard(AGENT)
async def agent_page(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "agent.html", login)


@guard(SUPERVISOR)
async def wallboard_page(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "wallboard.html", login)


# --- JSON and SSE ------------------------------------------------------------------------------------

def _json_text(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


def _error_json(error: CallcenterError) -> web.Response:
    message = error.message if isinstance(error, ActionRefused) else str(error)
    return web.json_response({"error": message, "error_id": error.error_id}, status=error.http_status)


def _agent_view(state: PanelState, user: PanelUser) -> tuple[str, str]:
    """The (event, JSON) an agent is shown: their view, or a notice saying why there is none."""
    try:
        return "view", to_json(state.backend.agent_view(user.id))
    except ActionRefused as error:
        return "notice", to_json({"error": error.message})


@guard(AGENT, api=True)
async def agent_json(request: web.Request, login: Login) -> web.StreamResponse:
    try:
        return _json_text(to_json(request.app[PANEL].backend.agent_view(login.user.id)))
    except ActionRefused as error:
        return _error_json(error)


async def _still_allowed(state: PanelState, login: Login, roles: tuple[str, ...]) -> bool:
    """A long stream re-checks what a new request would: not expired, user still there and enabled, no
    session ended since (the epoch), still in one of ``roles``."""
    if state.signer.clock() >= login.session.expires_at:
        return False
    user = await state.backend.user(login.user.id)
    return _still_current(user, login.session) and allowed(user, roles)


@guard(AGENT, api=True)
async def agent_events(request: web.Request, login: Login) -> web.StreamResponse:
    """``event: view`` with the agent's view now and whenever it changes; ``: ping`` when idle."""
    state = request.app[PANEL]
    backend = state.backend
    loop = asyncio.get_running_loop()
    version = backend.version
    event, text = _agent_view(state, login.user)
    stream = await EventStream.open(request)
    checked = last_sent = loop.time()
    try:
        await stream.send(event, text)
        last = text
        while True:
            new = await wait_first(backend.wait_change(version, state.ping_interval), state.closing, None)
            if new is None or stream.closed:
                break
            if loop.time() - checked >= state.recheck_interval:
                if not await _still_allowed(state, login, AGENT):
                    break
                checked = loop.time()
            timed_out = new == version
            if not timed_out:
                version = new
                event, text = _agent_view(state, login.user)
                if text != last:
                    await stream.send(event, text)
                    last, last_sent = text, loop.time()
                    continue
            if timed_out or loop.time() - last_sent >= state.ping_interval:
                await stream.ping()
                last_sent = loop.time()
    except ConnectionError:
        pass
    return stream.response


@guard(SUPERVISOR, api=True)
async def wallboard_json(request: web.Request, login: Login) -> web.StreamResponse:
    state = request.app[PANEL]
    view_filter = await state.backend.wallboard_filter(login.user.id)
    state.feed.snapshot()
    return _json_text(state.feed.text_for(view_filter))


@guard(SUPERVISOR, api=True)
async def monitor_json(request: web.Request, login: Login) -> web.StreamResponse:
    """The supervisor's own monitoring session (``monitor_view``)."""
    try:
        return _json_text(to_json(request.app[PANEL].backend.monitor_view(login.user.id)))
    except ActionRefused as error:
        return _error_json(error)


def _monitor_text(state: PanelState, user: PanelUser) -> str:
    """The supervisor's ``monitor_view`` as JSON; when the backend refuses it, the view of nobody."""
    try:
        return to_json(state.backend.monitor_view(user.id))
    except ActionRefused:
        return NO_MONITOR


@guard(SUPERVISOR, api=True)
async def wallboard_events(request: web.Request, login: Login) -> web.StreamResponse:
    """``event: wallboard`` with the shared wallboard text now and whenever it changes; ``event: monitor``
    with the viewer's own ``monitor_view`` whenever it differs from the last one sent (the page starts from
    ``NO_MONITOR`` at every connection, so a first one is sent only when there is something to show)."""
    state = request.app[PANEL]
    feed = state.feed
    loop = asyncio.get_running_loop()
    # The viewer's scope, re-read with the session every ``recheck_interval``; actions read it afresh.
    view_filter = await state.backend.wallboard_filter(login.user.id)
    with feed.watching():
        seq, _ = feed.snapshot()
        stream = await EventStream.open(request)
        checked = loop.time()
        monitor = NO_MONITOR
        try:
            await stream.send("wallboard", feed.text_for(view_filter))
            while not state.closing.is_set():
                current = _monitor_text(state, login.user)
                if current != monitor:
                    await stream.send("monitor", current)
                    monitor = current
                newer = await feed.next(seq, state.ping_interval, state.closing)
                if state.closing.is_set() or stream.closed:
                    break
                if loop.time() - checked >= state.recheck_interval:
                    if not await _still_allowed(state, login, SUPERVISOR):
                        break
                    checked = loop.time()
                    scope_before, view_filter = view_filter.key, await state.backend.wallboard_filter(login.user.id)
                    if view_filter.key != scope_before and newer is None:
                        await stream.send("wallboard", feed.text_for(view_filter))
                        continue
                if newer is None:
                    await stream.ping()
                else:
                    seq, _ = newer
                    await stream.send("wallboard", feed.text_for(view_filter))
        except ConnectionError:
            pass
    return stream.response


async def _read_action(request: web.Request) -> tuple[str, dict[str, str]] | web.Response:
    """``{"action": str, "params": {name: plain value}}`` from the body; params become strings."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "The request body must be JSON"}, status=400)
    action = body.get("action") if isinstance(body, dict) else None
    params = body.get("params") if isinstance(body, dict) else None
    if not isinstance(action, str) or not action:
        return web.json_response({"error": "Say which action to take"}, status=400)
    if params is None:
        params = {}
    if not isinstance(params, dict) or any(isinstance(v, dict | list) for v in params.values()):
        return web.json_response({"error": "params must be an object of plain values"}, status=400)
    return action, {str(k): _param(v) for k, v in params.items()}


def _param(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _act(request: web.Request, run: Callable[[str, Mapping[str, str]], Awaitable[None]]) -> web.Response:
    parsed = await _read_action(request)
    if isinstance(parsed, web.Response):
        return parsed
    action, params = parsed
    try:
        await run(action, params)
    except CallcenterError as error:
        return _error_json(error)
    except Exception:
        log.exception("panel: action %s failed", action)
        return web.json_response({"error": "The action failed; the controller's log says why"}, status=500)
    return web.json_response({"ok": True})


@guard(AGENT, api=True)
async def agent_action(request: web.Request, login: Login) -> web.StreamResponse:
    backend = request.app[PANEL].backend
    return await _act(request, lambda action, params: backend.agent_action(login.user.id, action, params))


@guard(SUPERVISOR, api=True)
async def supervisor_action(request: web.Request, login: Login) -> web.StreamResponse:
    backend = request.app[PANEL].backend
    return await _act(request, lambda action, params: backend.supervisor_action(login.user.id, action, params))
