"""The ACD's pages: the agent page (/agent) and the wallboard (/wallboard), their JSON and SSE APIs
(/api/agent, /api/agent/events, /api/agent/action, /api/wallboard, /api/wallboard/events) and the
supervisors' actions and monitoring (/api/supervisor/action, /api/supervisor/monitor).

Everything they show or do goes through the ``PanelBackend`` protocol below (acd/panel.py ``AcdPanel``, a
fake in unit tests); this module only speaks HTTP. ``install(app, panel)`` adds the routes and the
templates (acd/templates) to an application built by ``make_app`` with sessions. docs/panel.md
describes the routes and the SSE protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from callcenter.errors import ActionRefused, CallcenterError
from callcenter.web.feeds import (
    PING_INTERVAL,
    EventStream,
    PersonalViews,
    SharedFeed,
    ViewFilter,
    to_json,
    wait_first,
)
from callcenter.web.guards import AGENT, SUPERVISOR, WEB, Login, guard, still_allowed
from callcenter.web.headers import protect
from callcenter.web.pages import add_templates, render

log = logging.getLogger(__name__)

PATHS = ("/agent", "/wallboard", "/api/agent", "/api/wallboard", "/api/supervisor")
# A supervisor's monitor_view with nothing to show: what the wallboard assumes until told otherwise.
NO_MONITOR = '{"session":null,"can_monitor":false}'


class PanelBackend(Protocol):
    """What the agent page and the wallboard need of the ACD. Views are plain JSON-able dicts (documented
    in docs/panel.md); actions raise ``ActionRefused`` with a message meant for the user (shown in the page,
    HTTP 400/403/404 by its ``http_status``)."""

    def agent_view(self, user_id: int) -> dict[str, Any]:
        """Everything the agent page shows: agent state, call card, wrap-up and pause choices,
        callbacks, transfer targets. Cheap: built from memory."""

    def wallboard(self) -> dict[str, Any]:
        """Per-queue and per-agent figures for the wallboard (docs/wallboard.md: figures and formulas), all
        of them: each viewer is shown them through their ``wallboard_filter``."""

    async def wallboard_filter(self, user_id: int) -> ViewFilter:
        """What of the wallboard this supervisor may see (their units' queues, agents and campaigns), read
        from the database now."""

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """An agent acts on their own state or call (login, ready, pause, wrapup, dial, hold...)."""

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """A supervisor approves or denies a pause, logs an agent out, or monitors a call (``monitor_start``
        {extension, mode}, ``monitor_mode`` {mode}, ``monitor_stop``)."""

    def monitor_view(self, user_id: int) -> dict[str, Any]:
        """The supervisor's own monitoring: ``{"session": null | {"id", "agent", "agent_name", "mode":
        silent|whisper|barge, "state": ringing|active}, "can_monitor": bool}``. Cheap: built from memory;
        every change of it grows ``version``."""

    @property
    def version(self) -> int:
        """Grows on every change the panel could show."""

    async def wait_change(self, version: int, timeout: float) -> int:
        """Returns the current version as soon as it differs from ``version`` (or at ``timeout``)."""


class PanelState:
    """What the panel routes of one application share (``PANEL``)."""

    def __init__(self, backend: PanelBackend) -> None:
        self.backend = backend
        self.feed = SharedFeed(backend, lambda: backend.wallboard(), name="wallboard")
        self.agent_views = PersonalViews(backend, lambda user_id: _agent_view(backend, user_id))
        self.ping_interval = PING_INTERVAL
        self.recheck_interval = PING_INTERVAL
        self.scopes_version = 0  # grows when organisational units change (``units_changed``)


PANEL: web.AppKey[PanelState] = web.AppKey("panel", PanelState)

routes = web.RouteTableDef()


def units_changed(app: web.Application) -> None:
    """Organisational units changed: every open wallboard re-reads its viewer's scope now, not at its next
    periodic check."""
    state = app[PANEL]
    state.scopes_version += 1
    state.feed.poke()


def install(app: web.Application, panel: PanelBackend) -> None:
    """The agent page, the wallboard and their APIs; the application needs sessions (``make_app``)."""
    if WEB not in app:
        raise ValueError("the panel needs sessions: build the app with make_app(accounts=...)")
    app[PANEL] = PanelState(panel)
    add_templates(app, Path(__file__).parent / "templates")
    protect(app, *PATHS)
    app.cleanup_ctx.append(_wallboard_producer)
    app.router.add_routes(routes)


async def _wallboard_producer(app: web.Application) -> AsyncIterator[None]:
    state, closing = app[PANEL], app[WEB].closing
    task = asyncio.create_task(state.feed.run(closing), name="wallboard-feed")
    yield
    closing.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- pages -------------------------------------------------------------------------------------------

@routes.get("/agent")
@guard(AGENT)
async def agent_page(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "agent.html", login)


@routes.get("/wallboard")
@guard(SUPERVISOR)
async def wallboard_page(request: web.Request, login: Login) -> web.StreamResponse:
    return render(request, "wallboard.html", login)


# --- JSON and SSE ------------------------------------------------------------------------------------

def _json_text(text: str) -> web.Response:
    return web.Response(text=text, content_type="application/json")


def _error_json(error: CallcenterError) -> web.Response:
    message = error.message if isinstance(error, ActionRefused) else str(error)
    return web.json_response({"error": message, "error_id": error.error_id}, status=error.http_status)


def _agent_view(backend: PanelBackend, user_id: int) -> tuple[str, str]:
    """The (event, JSON) an agent is shown: their view, or a notice saying why there is none."""
    try:
        return "view", to_json(backend.agent_view(user_id))
    except ActionRefused as error:
        return "notice", to_json({"error": error.message})


@routes.get("/api/agent")
@guard(AGENT, api=True)
async def agent_json(request: web.Request, login: Login) -> web.StreamResponse:
    try:
        return _json_text(to_json(request.app[PANEL].backend.agent_view(login.user.id)))
    except ActionRefused as error:
        return _error_json(error)


@routes.get("/api/agent/events")
@guard(AGENT, api=True)
async def agent_events(request: web.Request, login: Login) -> web.StreamResponse:
    """``event: view`` with the agent's view now and whenever it changes; ``: ping`` when idle. The view is
    built once per version for all of the agent's streams (``PersonalViews``), and sent only when its text
    differs from the last one sent."""
    state = request.app[PANEL]
    backend, views, closing = state.backend, state.agent_views, request.app[WEB].closing
    loop = asyncio.get_running_loop()
    version = backend.version
    event, text = views.get(login.user.id)
    stream = await EventStream.open(request)
    checked = last_sent = loop.time()
    try:
        await stream.send(event, text)
        last = text
        while True:
            new = await wait_first(backend.wait_change(version, state.ping_interval), closing, None)
            if new is None or stream.closed:
                break
            if loop.time() - checked >= state.recheck_interval:
                if not await still_allowed(request, login, AGENT):
                    break
                checked = loop.time()
            timed_out = new == version
            if not timed_out:
                version = new
                event, text = views.get(login.user.id)
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


@routes.get("/api/wallboard")
@guard(SUPERVISOR, api=True)
async def wallboard_json(request: web.Request, login: Login) -> web.StreamResponse:
    state = request.app[PANEL]
    view_filter = await state.backend.wallboard_filter(login.user.id)
    state.feed.snapshot()
    return _json_text(state.feed.text_for(view_filter))


@routes.get("/api/supervisor/monitor")
@guard(SUPERVISOR, api=True)
async def monitor_json(request: web.Request, login: Login) -> web.StreamResponse:
    """The supervisor's own monitoring session (``monitor_view``)."""
    try:
        return _json_text(to_json(request.app[PANEL].backend.monitor_view(login.user.id)))
    except ActionRefused as error:
        return _error_json(error)


def _monitor_text(state: PanelState, user_id: int) -> str:
    """The supervisor's ``monitor_view`` as JSON; when the backend refuses it, the view of nobody."""
    try:
        return to_json(state.backend.monitor_view(user_id))
    except ActionRefused:
        return NO_MONITOR


@routes.get("/api/wallboard/events")
@guard(SUPERVISOR, api=True)
async def wallboard_events(request: web.Request, login: Login) -> web.StreamResponse:
    """``event: wallboard`` with the shared wallboard text now and whenever it changes; ``event: monitor``
    with the viewer's own ``monitor_view`` whenever it differs from the last one sent (the page starts from
    ``NO_MONITOR`` at every connection, so a first one is sent only when there is something to show)."""
    state = request.app[PANEL]
    feed, closing = state.feed, request.app[WEB].closing
    loop = asyncio.get_running_loop()
    # The viewer's scope, re-read with the session every ``recheck_interval``; actions read it afresh.
    view_filter = await state.backend.wallboard_filter(login.user.id)
    with feed.watching():
        seq, _ = feed.snapshot()
        stream = await EventStream.open(request)
        checked, scopes_seen = loop.time(), state.scopes_version
        monitor = NO_MONITOR
        try:
            await stream.send("wallboard", feed.text_for(view_filter))
            while not closing.is_set():
                current = _monitor_text(state, login.user.id)
                if current != monitor:
                    await stream.send("monitor", current)
                    monitor = current
                newer = await feed.next(seq, state.ping_interval, closing)
                if closing.is_set() or stream.closed:
                    break
                if loop.time() - checked >= state.recheck_interval or state.scopes_version != scopes_seen:
                    if not await still_allowed(request, login, SUPERVISOR):
                        break
                    checked, scopes_seen = loop.time(), state.scopes_version
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


# --- actions -----------------------------------------------------------------------------------------

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


@routes.post("/api/agent/action")
@guard(AGENT, api=True)
async def agent_action(request: web.Request, login: Login) -> web.StreamResponse:
    backend = request.app[PANEL].backend
    return await _act(request, lambda action, params: backend.agent_action(login.user.id, action, params))


@routes.post("/api/supervisor/action")
@guard(SUPERVISOR, api=True)
async def supervisor_action(request: web.Request, login: Login) -> web.StreamResponse:
    backend = request.app[PANEL].backend
    return await _act(request, lambda action, params: backend.supervisor_action(login.user.id, action, params))
