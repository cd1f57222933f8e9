"""/api/v1/queues, /api/v1/agents and /api/v1/click-to-call: the wallboard's figures and agents as the token
user's supervisor scope shows them (acd/scope.py, the same filter as the wallboard), and a call placed by an
agent in that scope through the ACD's click-to-call (the agent's phone rings, then the number; docs/api.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from callcenter.acd.http import PanelBackend
from callcenter.errors import ActionRefused
from callcenter.users.tokens import TokenUser
from callcenter.web.api import BadRequest, Operation, add_route
from callcenter.web.roles import SUPERVISOR

API_PANEL: web.AppKey[PanelBackend] = web.AppKey("api_panel")
NUMBER = re.compile(r"\+?[0-9*#]{1,30}")
AGENT_OUT = "No such agent in the token user's organisational units"

QUEUE_SCHEMA = {"type": "object", "description": "A queue's wallboard figures (docs/wallboard.md)",
                "properties": {"name": {"type": "string"}}}
AGENT_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "extension": {"type": "string"},
    "state": {"type": "string"}, "reason": {"type": ["string", "null"]},
    "since": {"type": ["string", "null"], "format": "date-time"}, "calls_today": {"type": "integer"},
    "queues": {"type": "array", "items": {"type": "string"}}}}
CALL_BODY = {"type": "object", "required": ["extension", "number"], "properties": {
    "extension": {"type": "string", "description": "The agent whose phone places the call"},
    "number": {"type": "string", "description": "The number to call: digits, optional leading +"},
    "external_id": {"type": "string", "maxLength": 100,
                    "description": "Your id of the call: sent back as external_id in its webhooks"}}}


def install(app: web.Application, panel: PanelBackend) -> None:
    app[API_PANEL] = panel
    add_route(app, "GET", "/api/v1/queues", list_queues, Operation(
        "Per-queue figures in the token user's scope", roles=SUPERVISOR,
        response={"type": "object", "properties": {"items": {"type": "array", "items": QUEUE_SCHEMA}}}))
    add_route(app, "GET", "/api/v1/agents", list_agents, Operation(
        "Agents in the token user's scope, with their state", roles=SUPERVISOR,
        response={"type": "object", "properties": {"items": {"type": "array", "items": AGENT_SCHEMA}}}))
    add_route(app, "POST", "/api/v1/click-to-call", click_to_call, Operation(
        "Place a call from an agent's phone (the ACD's click-to-call)", roles=SUPERVISOR, body=CALL_BODY,
        response={"type": "object", "properties": {"status": {"type": "string", "enum": ["dialling"]}}}))


async def scoped_view(request: web.Request, who: TokenUser) -> dict[str, Any]:
    panel = request.app[API_PANEL]
    view_filter = await panel.wallboard_filter(who.user_id)
    return view_filter.apply(panel.wallboard())


async def list_queues(request: web.Request, who: TokenUser) -> web.StreamResponse:
    return web.json_response({"items": (await scoped_view(request, who))["queues"]})


async def list_agents(request: web.Request, who: TokenUser) -> web.StreamResponse:
    fields = ("id", "name", "extension", "state", "reason", "since", "calls_today", "queues")
    agents = (await scoped_view(request, who))["agents"]
    return web.json_response({"items": [{name: agent.get(name) for name in fields} for agent in agents]})


async def click_to_call(request: web.Request, who: TokenUser) -> web.StreamResponse:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    extension, number = body.get("extension"), body.get("number")
    if not isinstance(extension, str) or not extension:
        raise BadRequest("extension: the agent's extension, a string")
    if not isinstance(number, str) or not NUMBER.fullmatch(number):
        raise BadRequest("number: 1-30 digits (and * #), optionally after a +")
    external_id = body.get("external_id", "")
    if not isinstance(external_id, str) or len(external_id) > 100 or any(ord(c) < 32 for c in external_id):
        raise BadRequest("external_id: a string of at most 100 characters, no control characters")
    agents = (await scoped_view(request, who))["agents"]
    agent = next((a for a in agents if a.get("extension") == extension), None)
    if agent is None:
        raise ActionRefused(AGENT_OUT, 404)
    await request.app[API_PANEL].agent_action(agent["id"], "dial", {"number": number, "external_id": external_id})
    return web.json_response({"status": "dialling"})
