"""The customers feature (CRM-1): the customer pages and custom fields (customers/http.py); the
screen pop reads the same tables (acd/records.customer_card)."""

from __future__ import annotations

from callcenter.customers import http
from callcenter.features import Core


def load(core: Core) -> None:
    pages = http.CustomerPages(core.db, core.settings.customers.default_region)
    core.pages(lambda app: http.install(app, pages))
