"""Transitional: the names web/admin.py (and test_web_monitor.py) still import from here, now at home in
web/guards.py, web/headers.py, web/pages.py and acd/http.py. Goes when the admin pages have moved to their
features (issue 14); import from those modules instead."""

from __future__ import annotations

from callcenter.acd.http import PANEL
from callcenter.web.guards import Handler, Login, guard, redirect
from callcenter.web.headers import CSP
from callcenter.web.pages import render

__all__ = ["CSP", "PANEL", "Handler", "Login", "guard", "redirect", "render"]
