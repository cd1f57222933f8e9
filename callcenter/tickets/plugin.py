"""The tickets feature (CRM-2, docs/tickets.md): the store every change goes through (tickets/store.py), the
pages (tickets/http.py, the report: tickets/report_http.py) and the REST API (tickets/api_http.py). The
automatic rules driven by call events are tickets/rules.py, wired here by the composition root's owner."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from callcenter.features import Core
from callcenter.tickets import api_http, http, report_http
from callcenter.tickets.store import TicketStore


@dataclass
class Tickets:
    """What the feature hands back: the store (the rules and the webhooks' announce hook use it)."""

    store: TicketStore


def load(core: Core) -> Tickets:
    tickets = Tickets(TicketStore(core.settings.customers.default_region))
    files_dir = core.settings.files_dir

    def install(app: web.Application) -> None:
        pages = http.TicketPages(core.db, tickets.store, core.bus, files_dir,
                                 core.settings.tickets.close_target_hours)
        http.install(app, pages)
        report_http.install(app)
        api_http.install(app, api_http.TicketApi(core.db, tickets.store))

    core.pages(install)
    return tickets
