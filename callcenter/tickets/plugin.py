"""The tickets feature (CRM-2, docs/tickets.md): the store every change goes through (tickets/store.py), the
automatic rules driven by the calls (tickets/rules.py), the pages (tickets/http.py, the report:
tickets/report_http.py) and the REST API (tickets/api_http.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.customers.history import HistoryItem
from callcenter.features import Core
from callcenter.tickets import api_http, http, report_http, views
from callcenter.tickets.rules import TicketRules
from callcenter.tickets.store import Announce, TicketStore, no_one
from callcenter.users.units import Scope


@dataclass
class Tickets:
    """What the feature hands back: the store, the rules (the ledger's hook for calls dialled from a phone)
    and the screen pop's list of a caller's open tickets."""

    store: TicketStore
    rules: TicketRules

    @staticmethod
    def card_tickets(session: Session, customer_id: int | None, number: str) -> list[dict[str, Any]]:
        return views.card_tickets(session, customer_id, number)

    @staticmethod
    def customer_history(session: Session, scope: Scope, customer_id: int, limit: int) -> list[HistoryItem]:
        return views.customer_history(session, scope, customer_id, limit)


def load(core: Core, announce: Announce = no_one) -> Tickets:
    """``announce``: where ticket.created / ticket.status_changed go, in the change's transaction (webhooks)."""
    store = TicketStore(core.settings.customers.default_region, announce)
    queues, settings = core.settings.queues, core.settings.tickets
    rules = TicketRules(store, core.records, core.bus, lambda queue: queues[queue].org_unit if queue in queues else "",
                        settings.missed_calls_unit)
    tickets = Tickets(store, rules)
    files_dir = core.settings.files_dir

    def install(app: web.Application) -> None:
        pages = http.TicketPages(core.db, tickets.store, core.bus, files_dir,
                                 core.settings.tickets.close_target_hours, core.records.caught_up)
        http.install(app, pages)
        report_http.install(app)
        api_http.install(app, api_http.TicketApi(core.db, tickets.store))

    core.pages(install)
    return tickets
