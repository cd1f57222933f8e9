"""/api/v1/customers: search, read, create and change customers as the token's user may (customers/
services.py ``customer_scope``: an agent's unit, a manager's units, every unit only by the grant; a customer
outside it is 404). The same checks as the pages: numbers to E.164 with ``[customers] default_region``,
custom values by kind, required fields; a refusal names the field (docs/api.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from callcenter.customers.fields import CustomerError, list_fields
from callcenter.customers.services import (
    CustomerInput,
    CustomerRow,
    CustomerView,
    create_customer,
    find_by_number,
    get_customer,
    normalise_phones,
    search_customers,
    update_customer,
)
from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.users.tokens import TokenUser
from callcenter.web.api import BadRequest, Operation, Param, add_route, paged, pagination, text_param

T = TypeVar("T")
ROLES = ("agent", "supervisor", "admin")
TEXTS = ("name", "email", "company", "note")


@dataclass(frozen=True)
class CustomerApi:
    db: Database
    region: str

    async def run(self, work: Callable[[Session], T]) -> T:
        return await in_thread(self.db, work)


CUSTOMER_API: web.AppKey[CustomerApi] = web.AppKey("api_customers", CustomerApi)

_TEXT = {"type": "string"}
ROW_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": _TEXT, "phones": {"type": "array", "items": _TEXT}, "email": _TEXT,
    "company": _TEXT, "unit": _TEXT}}
CUSTOMER_SCHEMA = {"type": "object", "properties": {
    **ROW_SCHEMA["properties"], "note": _TEXT,  # type: ignore[dict-item]
    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
    "fields": {"type": "object", "description": "Custom field name -> value (\"\" for none)",
               "additionalProperties": _TEXT}}}
BODY_PROPERTIES = {
    "name": _TEXT, "email": _TEXT, "company": _TEXT, "note": _TEXT,
    "phones": {"type": "array", "items": _TEXT, "description": "Numbers in any usual format, brought to E.164"},
    "fields": {"type": "object", "additionalProperties": _TEXT, "description": "Custom field name -> value"}}
CREATE_BODY = {"type": "object", "required": ["name"], "properties": BODY_PROPERTIES}
PATCH_BODY = {"type": "object", "properties": BODY_PROPERTIES,
              "description": "Only the keys given change; phones, when given, become the customer's numbers"}
ID_PARAM = Param("id", "The customer's number (#12 on its page)", "integer", where="path")


def install(app: web.Application, customers: CustomerApi) -> None:
    app[CUSTOMER_API] = customers
    add_route(app, "GET", "/api/v1/customers", list_customers, Operation(
        "Customers in the token user's scope, by name", roles=ROLES, paged=True, response=ROW_SCHEMA, params=(
            Param("q", "Search every field: part of the name, e-mail, company, notes, a custom value, or digits "
                       "of a number"),
            Param("phone", "Exactly this number (any usual format, brought to E.164)"))))
    add_route(app, "GET", "/api/v1/customers/{id}", read_customer, Operation(
        "One customer with its numbers and custom fields", roles=ROLES, response=CUSTOMER_SCHEMA,
        params=(ID_PARAM,)))
    add_route(app, "POST", "/api/v1/customers", new_customer, Operation(
        "Create a customer (in the token user's unit)", roles=ROLES, body=CREATE_BODY, response=CUSTOMER_SCHEMA,
        success="201"))
    add_route(app, "PATCH", "/api/v1/customers/{id}", change_customer, Operation(
        "Change a customer", roles=ROLES, body=PATCH_BODY, response=CUSTOMER_SCHEMA, params=(ID_PARAM,)))


def customer_json(view: CustomerView) -> dict[str, Any]:
    return {"id": view.id, "name": view.name, "phones": list(view.phones), "email": view.email,
            "company": view.company, "unit": view.unit, "note": view.note,
            "created_at": view.created_at.isoformat(), "updated_at": view.updated_at.isoformat(),
            "fields": {spec.name: value for spec, value in view.values}}


def row_json(row: CustomerRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "phones": list(row.phones), "email": row.email,
            "company": row.company, "unit": row.unit}


def refused(error: CustomerError) -> web.Response:
    """A refused value: its message with the field it names (``field``)."""
    return web.json_response({"error": f"{error.field}: {error.message}", "error_id": error.error_id,
                              "field": error.field}, status=error.http_status)


def _id(request: web.Request) -> int:
    typed = request.match_info["id"]
    if not typed.isascii() or not typed.isdigit() or len(typed) > 12:
        raise BadRequest("id: the customer's number, a whole number")
    return int(typed)


async def _body(request: web.Request) -> Mapping[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    unknown = sorted(set(body) - set(BODY_PROPERTIES))
    if unknown:
        raise BadRequest(f"{unknown[0]}: not a customer property (one of {', '.join(BODY_PROPERTIES)})")
    for name in TEXTS:
        if name in body and not isinstance(body[name], str):
            raise BadRequest(f"{name}: a string")
    phones = body.get("phones", [])
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise BadRequest("phones: a list of strings")
    fields = body.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise BadRequest("fields: an object of custom field name -> string")
    return body


def _known_fields(session: Session, body: Mapping[str, Any]) -> None:
    names = {spec.name for spec in list_fields(session)}
    for name in body.get("fields", {}):
        if name not in names:
            raise CustomerError(str(name)[:64], "no such custom field")


async def list_customers(request: web.Request, who: TokenUser) -> web.StreamResponse:
    customers = request.app[CUSTOMER_API]
    page, per_page = pagination(request)
    typed = text_param(request.query, "q", 100)
    phone = text_param(request.query, "phone", 40)
    if phone:
        try:
            numbers = normalise_phones([phone], customers.region)
        except CustomerError as error:
            return refused(CustomerError("phone", error.message))

        def by_number(session: Session) -> list[dict[str, Any]]:
            found = find_by_number(session, who.user_id, numbers[0])
            return [] if found is None else [customer_json(get_customer(session, who.user_id, found))]
        items = await customers.run(by_number)
        shown = items if page == 1 else []
        return paged(shown, page, per_page, 1 if items else 0, len(items))
    try:
        result = await customers.run(lambda s: search_customers(s, who.user_id, typed, page, per_page))
    except CustomerError as error:
        return refused(error)
    return paged([row_json(row) for row in result.rows], page, per_page, result.pages, result.total)


async def read_customer(request: web.Request, who: TokenUser) -> web.StreamResponse:
    customer_id = _id(request)
    try:
        view = await request.app[CUSTOMER_API].run(lambda s: get_customer(s, who.user_id, customer_id))
    except CustomerError as error:
        return refused(error)
    return web.json_response(customer_json(view))


async def new_customer(request: web.Request, who: TokenUser) -> web.StreamResponse:
    customers = request.app[CUSTOMER_API]
    body = await _body(request)
    data = CustomerInput(body.get("name", ""), body.get("phones", []), body.get("email", ""),
                         body.get("company", ""), body.get("note", ""), body.get("fields", {}))

    def create(session: Session) -> dict[str, Any]:
        _known_fields(session, body)
        customer_id = create_customer(session, who.user_id, data, customers.region)
        return customer_json(get_customer(session, who.user_id, customer_id))
    try:
        created = await customers.run(create)
    except CustomerError as error:
        return refused(error)
    return web.json_response(created, status=201, headers={"Location": f"/api/v1/customers/{created['id']}"})


async def change_customer(request: web.Request, who: TokenUser) -> web.StreamResponse:
    customers = request.app[CUSTOMER_API]
    customer_id = _id(request)
    body = await _body(request)

    def change(session: Session) -> dict[str, Any]:
        _known_fields(session, body)
        now = get_customer(session, who.user_id, customer_id)
        values = {spec.name: value for spec, value in now.values}
        data = CustomerInput(body.get("name", now.name), body.get("phones", list(now.phones)),
                             body.get("email", now.email), body.get("company", now.company),
                             body.get("note", now.note), {**values, **body.get("fields", {})})
        update_customer(session, who.user_id, customer_id, data, customers.region)
        return customer_json(get_customer(session, who.user_id, customer_id))
    try:
        changed = await customers.run(change)
    except CustomerError as error:
        return refused(error)
    return web.json_response(changed)
