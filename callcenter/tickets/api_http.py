"""/api/v1/tickets: list, read, create and change tickets and add replies and notes, as the token's user may
(tickets/actions.py ``ticket_scope``: an agent's unit, a manager's units, every ticket only by the grant; a
ticket outside it is 404). The same checks as the pages; a refusal names the field (docs/api.md,
docs/tickets.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.tickets import actions, views
from callcenter.tickets.actions import TicketError
from callcenter.tickets.models import ORIGINS, STATUSES
from callcenter.tickets.store import TicketStore
from callcenter.users.tokens import TokenUser
from callcenter.web.api import (
    DAY_RANGE_PARAMS,
    BadRequest,
    Operation,
    Param,
    add_route,
    day_param,
    paged,
    pagination,
    text_param,
)

T = TypeVar("T")
ROLES = ("agent", "supervisor", "admin")


@dataclass(frozen=True)
class TicketApi:
    db: Database
    store: TicketStore

    async def run(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.db, work)


TICKET_API: web.AppKey[TicketApi] = web.AppKey("api_tickets", TicketApi)

_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": ["integer", "null"]}
ROW_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "subject": _TEXT, "status": {"type": "string", "enum": list(STATUSES)},
    "origin": {"type": "string", "enum": list(ORIGINS)}, "number": _TEXT, "customer_id": _ID,
    "customer": _TEXT, "assignee_id": _ID, "assignee": _TEXT, "unit": _TEXT, "missed_calls": {"type": "integer"},
    "answered_back": {"type": "boolean"}, "created_at": _TIME, "updated_at": _TIME,
    "closed_at": {"type": ["string", "null"], "format": "date-time"}}}
ENTRY_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "at": _TIME,
    "kind": {"type": "string", "enum": ["call", "missed", "attempt", "reply", "note", "status", "assignee",
                                        "subject"]},
    "author": _TEXT, "body": _TEXT, "call_id": {"type": ["string", "null"]}, "old": _TEXT, "new": _TEXT,
    "call_state": {"type": ["string", "null"], "enum": [views.IN_PROGRESS, views.READY, views.PREPARING,
                                                        views.FAILED, views.NONE, None]},
    "recording_id": {"type": ["string", "null"]}}}
TICKET_SCHEMA = {"type": "object", "properties": {
    **ROW_SCHEMA["properties"], "timeline": {"type": "array", "items": ENTRY_SCHEMA}}}  # type: ignore[dict-item]
CREATE_BODY = {"type": "object", "required": ["subject"], "properties": {
    "subject": _TEXT, "number": {"type": "string", "description": "The customer's number (brought to E.164)"},
    "customer_id": {"type": "integer"}, "assignee_id": {"type": "integer", "description": "A user of your units"},
    "status": {"type": "string", "enum": list(STATUSES)}}}
PATCH_BODY = {"type": "object", "description": "Only the keys given change", "properties": {
    "subject": _TEXT, "status": {"type": "string", "enum": list(STATUSES)},
    "assignee_id": {"type": ["integer", "null"], "description": "A user of your units; null: unassigned"}}}
ENTRY_BODY = {"type": "object", "required": ["kind", "body"], "properties": {
    "kind": {"type": "string", "enum": ["reply", "note"]}, "body": _TEXT}}
ID_PARAM = Param("id", "The ticket's number", "integer", where="path")


def install(app: web.Application, tickets: TicketApi) -> None:
    app[TICKET_API] = tickets
    add_route(app, "GET", "/api/v1/tickets", list_tickets, Operation(
        "Tickets in the token user's scope, the most recently changed first", roles=ROLES, paged=True,
        response=ROW_SCHEMA, params=(
            Param("status", "One of " + ", ".join(STATUSES)), Param("origin", "One of " + ", ".join(ORIGINS)),
            Param("assignee", "me, unassigned or a user's id"),
            Param("q", "Digits of the number, or part of the customer's name or of the subject"),
            *DAY_RANGE_PARAMS)))
    add_route(app, "GET", "/api/v1/tickets/{id}", read_ticket, Operation(
        "One ticket with its timeline", roles=ROLES, response=TICKET_SCHEMA, params=(ID_PARAM,)))
    add_route(app, "POST", "/api/v1/tickets", new_ticket, Operation(
        "Create a ticket (origin integration)", roles=ROLES, body=CREATE_BODY, response=TICKET_SCHEMA,
        success="201"))
    add_route(app, "PATCH", "/api/v1/tickets/{id}", change_ticket, Operation(
        "Change a ticket's subject, status or assignee", roles=ROLES, body=PATCH_BODY, response=TICKET_SCHEMA,
        params=(ID_PARAM,)))
    add_route(app, "POST", "/api/v1/tickets/{id}/entries", new_entry, Operation(
        "Add a reply or an internal note", roles=ROLES, body=ENTRY_BODY, response=TICKET_SCHEMA,
        params=(ID_PARAM,)))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def row_json(row: views.TicketRow) -> dict[str, Any]:
    return {"id": row.id, "subject": row.subject, "status": row.status, "origin": row.origin, "number": row.number,
            "customer_id": row.customer_id, "customer": row.customer, "assignee_id": row.assignee_id,
            "assignee": row.assignee, "unit": row.unit, "missed_calls": row.missed_calls,
            "answered_back": row.answered_back, "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(), "closed_at": _time(row.closed_at)}


def ticket_json(view: views.TicketView) -> dict[str, Any]:
    return {**row_json(view.row), "timeline": [
        {"id": e.id, "at": e.at.isoformat(), "kind": e.kind, "author": e.author, "body": e.body,
         "call_id": e.call_id, "old": e.old, "new": e.new, "call_state": e.call or None,
         "recording_id": e.recording_id or None} for e in view.entries]}


def _id(request: web.Request) -> int:
    typed = request.match_info["id"]
    if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
        raise BadRequest("id: the ticket's number, a whole number")
    return int(typed)


async def _body(request: web.Request, allowed: Mapping[str, Any]) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"{unknown[0][:64]}: not a ticket property (one of {', '.join(allowed)})")
    for name in ("subject", "number", "status", "kind", "body"):
        if name in body and not isinstance(body[name], str):
            raise BadRequest(f"{name}: a string")
    for name in ("customer_id", "assignee_id"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise BadRequest(f"{name}: a whole number (an id)")
    return body


def _now() -> datetime:
    return datetime.now(UTC)


async def list_tickets(request: web.Request, who: TokenUser) -> web.StreamResponse:
    tickets = request.app[TICKET_API]
    page, per_page = pagination(request)
    values = request.query
    filters = views.TicketFilters(text_param(values, "status", 20), text_param(values, "origin", 20),
                                  text_param(values, "assignee", 20), text_param(values, "q", 100),
                                  day_param(values, "from"), day_param(values, "to"))
    result = await tickets.run(lambda s: views.list_tickets(s, who.user_id, filters, page, per_page))
    return paged([row_json(row) for row in result.rows], page, per_page, result.pages, result.total)


async def read_ticket(request: web.Request, who: TokenUser) -> web.StreamResponse:
    ticket_id = _id(request)
    view = await request.app[TICKET_API].run(lambda s: views.get_ticket(s, who.user_id, ticket_id))
    return web.json_response(ticket_json(view))


async def new_ticket(request: web.Request, who: TokenUser) -> web.StreamResponse:
    tickets = request.app[TICKET_API]
    body = await _body(request, CREATE_BODY["properties"])  # type: ignore[arg-type]
    if "subject" not in body:
        raise TicketError("subject", "Subject is required")

    def create(session: Session) -> views.TicketView:
        ticket_id = actions.create_ticket(session, tickets.store, who.user_id, subject=body["subject"],
                                          number=body.get("number", ""), at=_now(),
                                          customer_id=body.get("customer_id"), assignee_id=body.get("assignee_id"),
                                          status=body.get("status", "open"))
        return views.get_ticket(session, who.user_id, ticket_id)

    made = ticket_json(await tickets.run(create))
    return web.json_response(made, status=201, headers={"Location": f"/api/v1/tickets/{made['id']}"})


async def change_ticket(request: web.Request, who: TokenUser) -> web.StreamResponse:
    tickets = request.app[TICKET_API]
    ticket_id = _id(request)
    body = await _body(request, PATCH_BODY["properties"])  # type: ignore[arg-type]

    def change(session: Session) -> views.TicketView:
        at, store = _now(), tickets.store
        views.get_ticket(session, who.user_id, ticket_id)  # 404 before any field's message
        if "subject" in body:
            actions.change_subject(session, store, who.user_id, ticket_id, body["subject"], at)
        if "assignee_id" in body:
            actions.change_assignee(session, store, who.user_id, ticket_id, body["assignee_id"], at)
        if "status" in body:
            actions.change_status(session, store, who.user_id, ticket_id, body["status"], at)
        return views.get_ticket(session, who.user_id, ticket_id)

    return web.json_response(ticket_json(await tickets.run(change)))


async def new_entry(request: web.Request, who: TokenUser) -> web.StreamResponse:
    tickets = request.app[TICKET_API]
    ticket_id = _id(request)
    body = await _body(request, ENTRY_BODY["properties"])  # type: ignore[arg-type]
    for name in ("kind", "body"):
        if name not in body:
            raise TicketError(name, f"{name} is required")

    def add(session: Session) -> views.TicketView:
        actions.add_message(session, tickets.store, who.user_id, ticket_id, body["kind"], body["body"], _now())
        return views.get_ticket(session, who.user_id, ticket_id)

    return web.json_response(ticket_json(await tickets.run(add)))
