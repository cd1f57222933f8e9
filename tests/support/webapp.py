"""The web application as the composition root builds it, for tests: ``make_app`` with sessions, then the
features' pages a test passes (login and password: users/http.py; the agent page and the wallboard:
acd/http.py).

    app = build_app(backend)                      # a fake that is both the accounts and the panel
    app = build_app(panel, accounts=UserAccounts(db))   # then install_admin(app, ...): tests/support/admin.py
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callcenter.acd import http as acd_http
from callcenter.users import http as users_http
from callcenter.users.accounts import UserAccounts
from callcenter.users.throttle import LoginThrottle
from callcenter.web.app import make_app

KEY = "5e" * 32


async def healthy() -> dict[str, Any]:
    return {"db": {"ok": True}}


def status() -> dict[str, Any]:
    return {"phones": [], "stasis_calls": 0, "sip": "ok"}


def build_app(panel: acd_http.PanelBackend | None = None, *, accounts: users_http.AccountService | None = None,
              throttle: LoginThrottle | None = None, session_key: str = KEY,
              health_check: Callable[[], Awaitable[dict[str, Any]]] = healthy,
              status_report: Callable[[], dict[str, Any]] = status, **make_app_kwargs: Any) -> web.Application:
    """``make_app`` with the login pages and, given ``panel``, the agent page and the wallboard.
    ``accounts`` defaults to the panel itself when it plays both parts (test_web's ``FakeBackend``), else to
    the real accounts on the panel's database (``AcdPanel.db``). Other keywords go to ``make_app``
    (``metrics_token``, ``secure_cookies``, ``demo``)."""
    if accounts is None:
        if hasattr(panel, "authenticate"):
            accounts = panel  # type: ignore[assignment]
        else:
            accounts = UserAccounts(panel.db)  # type: ignore[union-attr]
    assert accounts is not None
    app = make_app(health_check, status_report, accounts=accounts, session_key=session_key, **make_app_kwargs)
    users_http.install(app, accounts, throttle)
    if panel is not None:
        acd_http.install(app, panel)
    return app
