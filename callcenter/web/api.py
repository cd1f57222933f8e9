"""The REST API's shared face (docs/api.md): bearer-token guard, JSON errors, pagination, and the OpenAPI
registry every feature's api module adds its routes to, published at /api/docs.

A feature declares each route once, next to its handler:

    add_route(app, "GET", "/api/v1/cdrs", list_cdrs, Operation("List CDRs", roles=ADMIN, params=(...)))

``add_route`` puts the handler on the router *and* its operation in the document, so the two cannot drift
(tests/unit/test_api.py checks it)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.users.tokens import ApiTokens, TokenUser

log = logging.getLogger(__name__)

PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 200
BAD_REQUEST = "invalid-request"

ApiHandler = Callable[[web.Request, TokenUser], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    kind: str = "string"  # an OpenAPI type: string, integer
    where: str = "query"  # query or path
    fmt: str = ""  # an OpenAPI format: date...


# The day range every dated list takes (read with ``day_param``).
DAY_RANGE_PARAMS = (Param("from", "First day (UTC, inclusive)", fmt="date"),
                    Param("to", "Last day (UTC, inclusive)", fmt="date"))
PAGE_PARAMS = (Param("page", "Page number, from 1", "integer"),
               Param("per_page", f"Rows per page, 1-{PER_PAGE_MAX} (default {PER_PAGE_DEFAULT})", "integer"))


@dataclass(frozen=True)
class Operation:
    """One route's entry in the OpenAPI document."""

    summary: str
    roles: tuple[str, ...]
    params: tuple[Param, ...] = ()
    response: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    body: Mapping[str, Any] | None = None  # a JSON request body's schema
    content_type: str = "application/json"  # of the 200 answer
    paged: bool = False
    success: str = "200"  # the status of a success: "201" for a create

    def document(self) -> dict[str, Any]:
        params = self.params + (PAGE_PARAMS if self.paged else ())
        response: Mapping[str, Any] = self.response
        if self.paged:
            response = {"type": "object", "required": ["items", "page", "per_page", "pages", "total"],
                        "properties": {"items": {"type": "array", "items": self.response},
                                       "page": {"type": "integer"}, "per_page": {"type": "integer"},
                                       "pages": {"type": "integer"}, "total": {"type": "integer"}}}
        content = ({"schema": response} if self.content_type == "application/json"
                   else {"schema": {"type": "string", "format": "binary"}})
        errors = {"$ref": "#/components/responses/Error"}
        operation: dict[str, Any] = {
            "summary": self.summary,
            "description": f"Roles: {', '.join(self.roles)}.",
            "security": [{"bearer": []}],
            "parameters": [{"name": p.name, "in": p.where, "required": p.where == "path", "description": p.description,
                            "schema": {"type": p.kind, **({"format": p.fmt} if p.fmt else {})}} for p in params],
            "responses": {self.success: {"description": "Created" if self.success == "201" else "OK",
                                         "content": {self.content_type: content}},
                          "400": errors, "401": errors, "403": errors, "404": errors},
        }
        if self.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": self.body}}}
        return operation


@dataclass
class ApiRegistry:
    """The operations of every /api/v1 route, by path and lower-case method."""

    paths: dict[str, dict[str, Operation]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        error = {"type": "object", "required": ["error", "error_id"],
                 "properties": {"error": {"type": "string"}, "error_id": {"type": "string"}}}
        return {
            "openapi": "3.1.0",
            "info": {"title": "Call centre controller API", "version": "1",
                     "description": "Token-authenticated JSON API for integrations (docs/api.md)."},
            "paths": {path: {method: op.document() for method, op in sorted(methods.items())}
                      for path, methods in sorted(self.paths.items())},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {"Error": error},
                "responses": {"Error": {"description": "An error", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            },
        }


API_TOKENS: web.AppKey[ApiTokens] = web.AppKey("api_tokens", ApiTokens)
API_REGISTRY: web.AppKey[ApiRegistry] = web.AppKey("api_registry", ApiRegistry)


def registry(app: web.Application) -> ApiRegistry:
    """The app's registry; the first call also adds /api/docs."""
    if API_REGISTRY not in app:
        app[API_REGISTRY] = ApiRegistry()
        app.router.add_get("/api/docs", api_docs)
    return app[API_REGISTRY]


def install(app: web.Application, tokens: ApiTokens) -> None:
    """The tokens every API route checks against (users/plugin.py)."""
    app[API_TOKENS] = tokens
    registry(app)


def add_route(app: web.Application, method: str, path: str, handler: ApiHandler, operation: Operation) -> None:
    """``handler`` behind the token guard at ``path``, and its operation in the OpenAPI document."""
    methods = registry(app).paths.setdefault(path, {})
    if method.lower() in methods:
        raise ValueError(f"{method} {path} declared twice")
    methods[method.lower()] = operation
    app.router.add_route(method, path, token_guard(operation.roles)(handler))


async def api_docs(request: web.Request) -> web.Response:
    return web.json_response(request.app[API_REGISTRY].document())


def api_error(status: int, message: str, error_id: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "error_id": error_id}, status=status, headers=headers)


class BadRequest(CallcenterError):
    """A query parameter or body the API cannot take; the message says which and why."""

    error_id = BAD_REQUEST
    http_status = 400


def bearer_secret(request: web.Request) -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def token_guard(roles: tuple[str, ...]) -> Callable[[ApiHandler], Handler]:
    """401 (with WWW-Authenticate) without a valid token, 403 when its user has none of ``roles``; a
    CallcenterError becomes its JSON error and status. The secret is never logged."""
    def wrap(handler: ApiHandler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            secret = bearer_secret(request)
            tokens = request.app.get(API_TOKENS)
            who = await tokens.authenticate(secret) if secret is not None and tokens is not None else None
            if who is None:
                challenge = 'Bearer realm="api"' + ("" if secret is None else ', error="invalid_token"')
                message = "A bearer token is needed" if secret is None else "The token is unknown, revoked or expired"
                return api_error(401, message, "unauthorized", {"WWW-Authenticate": challenge})
            if not set(roles) & set(who.roles):
                return api_error(403, f"The token's user needs the role {' or '.join(roles)}", "forbidden")
            try:
                return await handler(request, who)
            except CallcenterError as error:
                status = error.http_status if 400 <= error.http_status < 600 else 500
                if status >= 500:
                    log.warning("api: %s %s failed: %s", request.method, request.path, error)
                return api_error(status, str(error), error.error_id)
        return checked
    return wrap


# --- parameters --------------------------------------------------------------------------------------

def int_param(values: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name}: a whole number from {low} to {high}")
    return int(raw)


def pagination(request: web.Request) -> tuple[int, int]:
    """(page, per_page) of ``?page=&per_page=``."""
    return (int_param(request.query, "page", 1, 1, 1_000_000),
            int_param(request.query, "per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX))


def day_param(values: Mapping[str, str], name: str) -> date | None:
    raw = values.get(name, "")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: a date as YYYY-MM-DD") from None


def text_param(values: Mapping[str, str], name: str, longest: int) -> str:
    raw = values.get(name, "").strip()
    if len(raw) > longest or any(ord(c) < 32 for c in raw):
        raise BadRequest(f"{name}: at most {longest} characters, no control characters")
    return raw


def paged(items: list[Any], page: int, per_page: int, pages: int, total: int) -> web.Response:
    return web.json_response({"items": items, "page": page, "per_page": per_page, "pages": pages, "total": total})
