"""The HTTP face: health, metrics, a status page and, given a backend, the agent panel and wallboard
(panel.py)."""

from __future__ import annotations

import asyncio
import hmac
import html
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callcenter.users.throttle import LoginThrottle
from callcenter.web.admin import add_admin
from callcenter.web.backend import AdminBackend, PanelBackend
from callcenter.web.panel import PANEL, SUPERVISOR, add_panel, allowed, current_login

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
StatusReport = Callable[[], dict[str, Any]]
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")
STATUS: web.AppKey[StatusReport] = web.AppKey("status")
METRICS_TOKEN: web.AppKey[str] = web.AppKey("metrics_token", str)
NEEDS_LOGIN = "Log in as a supervisor or admin, or send Authorization: Bearer <metrics_token>"


async def may_read_status(request: web.Request) -> bool:
    """Whether a request may read the metrics and the phones: the metrics token (a scraper), or a
    supervisor's or admin's panel session. Phone states and call counts are not for the public."""
    token = request.app.get(METRICS_TOKEN, "")
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    if PANEL not in request.app:
        return False
    login = await current_login(request)
    return login is not None and allowed(login.user, SUPERVISOR)


async def health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH]()
    ok = all(part["ok"] for part in report.values())
    return web.json_response({"ok": ok, **report}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    if not await may_read_status(request):
        return web.json_response({"error": NEEDS_LOGIN}, status=401)
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def index(request: web.Request) -> web.Response:
    report = await request.app[HEALTH]()
    status = request.app[STATUS]() if await may_read_status(request) else None
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class={'ok' if part['ok'] else 'bad'}>"
        f"{'ok' if part['ok'] else html.escape(str(part.get('error', 'down')))}</td></tr>"
        for name, part in report.items())
    phones = "".join(
        f"<tr><td>{html.escape(p['extension'])}</td><td>{html.escape(p['name'])}</td>"
        f"<td>{html.escape(p['state'])}</td></tr>" for p in status["phones"]) if status else ""
    details = (f"<h2>Phones</h2><table><tr><th>Extension</th><th>Name</th><th>State</th></tr>{phones}</table>"
               f"<p>Calls in the Stasis app now: {status['stasis_calls']}. SIP: {html.escape(status['sip'])}</p>"
               if status else "")
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>Call centre</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{padding:2px 12px}} .ok{{color:green}} .bad{{color:#b00}}</style>
</head><body><h1>Call centre controller</h1>
<h2>Health</h2><table>{rows}</table>
{details}
{'<p><a href="/login">Agent panel and wallboard</a></p>' if PANEL in request.app else ''}
</body></html>"""
    return web.Response(text=body, content_type="text/html")


async def api_phones(request: web.Request) -> web.Response:
    if not await may_read_status(request):
        return web.json_response({"error": NEEDS_LOGIN}, status=401)
    return web.json_response(request.app[STATUS]()["phones"])


async def demo_balance(request: web.Request) -> web.Response:
    """The demo IVR's account lookup (ivr_flows/main.yaml). Account 999 answers too late and 000
    fails, so the lookup's timeout and failure branches can be tried from a phone."""
    account = request.query.get("account", "")
    if not account.isdigit():
        return web.json_response({"error": "account must be digits"}, status=400)
    if account == "999":
        await asyncio.sleep(10)
    if account == "000":
        return web.json_response({"error": "lookup failed"}, status=500)
    balance = sum(int(d) for d in account) * 7 + len(account)
    return web.json_response({"account": account, "balance": balance, "currency": "EUR"})


def make_app(health_check: HealthCheck, status: Callable[[], dict[str, Any]], *,
             backend: PanelBackend | None = None, session_key: str = "",
             secure_cookies: bool = False, admin: AdminBackend | None = None, metrics_token: str = "",
             demo: bool = False, throttle: LoginThrottle | None = None) -> web.Application:
    """The web application. With a ``backend`` it also serves the panel (login, /agent, /wallboard and
    their APIs); ``session_key`` (hex, at least 16 bytes) signs its session cookies, and
    ``secure_cookies`` marks them Secure even on plain HTTP (behind a TLS proxy). With ``admin`` too, the
    admin pages (/admin/recordings, /admin/cdr, /admin/retention, /admin/units, /admin/monitoring:
    web/admin.py). /metrics and /api/phones need ``metrics_token`` as a bearer token or a supervisor's
    session; ``demo`` adds the demo IVR's /demo/balance; ``throttle`` is the login throttle the panel
    shares with FTPS."""
    app = web.Application()
    app[HEALTH] = health_check
    app[STATUS] = status
    app[METRICS_TOKEN] = metrics_token
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/phones", api_phones)
    if demo:
        app.router.add_get("/demo/balance", demo_balance)
    if backend is not None:
        add_panel(app, backend, session_key, secure_cookies, throttle)
    if admin is not None:
        if backend is None:
            raise ValueError("the admin pages need the panel: give a backend too")
        add_admin(app, admin)
    return app
