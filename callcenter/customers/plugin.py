"""The customers feature (CRM-1): the pages every role opens (customers/http.py), the admins' merge,
import and custom fields (customers/admin_http.py) and the REST API (customers/api_http.py); the screen
pop reads the same tables (acd/records.customer_card)."""

from __future__ import annotations

from aiohttp import web

from callcenter.customers import admin_http, api_http, http
from callcenter.features import Core


def load(core: Core) -> http.CustomerPages:
    """Answers the pages' service: other features add to its ``history_sources``."""
    region = core.settings.customers.default_region
    pages = http.CustomerPages(core.db, region, core.settings.files_dir)

    def install(app: web.Application) -> None:
        http.install(app, pages)
        admin_http.install(app)
        api_http.install(app, api_http.CustomerApi(core.db, region))

    core.pages(install)
    return pages
