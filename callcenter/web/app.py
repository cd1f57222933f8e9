"""The web application every feature's pages are installed on: ``make_app`` builds it with what all of them
share (sessions and guards: guards.py; templates: pages.py; security headers: headers.py; static files;
the end of the event streams at shutdown) and its own routes: health, metrics, a status page,
/api/phones and the demo IVR's balance lookup.

The composition root (callcenter/app.py) then installs each feature's pages, e.g.
``users_http.install(webapp, accounts, throttle)`` and ``acd_http.install(webapp, panel)``."""

from __future__ import annotations

import asyncio
import hmac
import html
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callcenter.web.guards import SUPERVISOR, WEB, Accounts, WebState, allowed, current_login
from callcenter.web.headers import add_headers
from callcenter.web.pages import add_pages

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]
StatusReport = Callable[[], dict[str, Any]]
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")
STATUS: web.AppKey[StatusReport] = web.AppKey("status")
METRICS_TOKEN: web.AppKey[str] = web.AppKey("metrics_token", str)
NEEDS_LOGIN = "Log in as a supervisor or admin, or send Authorization: Bearer <metrics_token>"
STATIC_DIR = Path(__file__).parent / "static"


async def may_read_status(request: web.Request) -> bool:
    """Whether a request may read the metrics and the phones: the metrics token (a scraper), or a
    supervisor's or admin's panel session. Phone states and call counts are not for the public."""
    token = request.app.get(METRICS_TOKEN, "")
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    if WEB not in request.app:
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
{'<p><a href="/login">Agent panel and wallboard</a></p>' if WEB in request.app else ''}
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
             accounts: Accounts | None = None, session_key: str = "", secure_cookies: bool = False,
             metrics_token: str = "", demo: bool = False) -> web.Application:
    """The web application. With ``accounts`` (the user behind a session: users/accounts.py) it has
    sessions, so features can install their pages on it (``guard``); ``session_key`` (hex, at least 16
    bytes) signs the session cookies, and ``secure_cookies`` marks them Secure even on plain HTTP (behind a
    TLS proxy). /metrics and /api/phones need ``metrics_token`` as a bearer token or a supervisor's
    session; ``demo`` adds the demo IVR's /demo/balance."""
    app = web.Application()
    app[HEALTH] = health_check
    app[STATUS] = status
    app[METRICS_TOKEN] = metrics_token
    add_pages(app)
    add_headers(app)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/phones", api_phones)
    if demo:
        app.router.add_get("/demo/balance", demo_balance)
    if accounts is not None:
        app[WEB] = WebState(accounts, session_key, secure_cookies)
        app.on_shutdown.append(_close_streams)
        app.router.add_static("/static/", STATIC_DIR)
    return app


async def _close_streams(app: web.Application) -> None:
    """Ends the open event streams, so a graceful shutdown does not wait for them."""
    app[WEB].closing.set()
