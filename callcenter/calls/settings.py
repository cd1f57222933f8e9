"""Incoming numbers: the ``[dids.<number>]`` table says where a call to each DID goes."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from callcenter.settings_file import SettingsFile


@dataclass(frozen=True)
class DidRoute:
    name: str
    route: str


ROUTE_KINDS = ("ivr", "greeting", "extension", "queue")
DEFAULT_DIDS = {"1000": {"name": "Main line", "route": "ivr:main"}}
_DID_RE = re.compile(r"^[0-9+*#]{1,32}$")


def parse_dids(source: SettingsFile) -> dict[str, DidRoute]:
    """``[dids]``: DID -> its name and route (``kind:target``); see :func:`check_did_routes` for queues."""
    raw = source.table("dids", DEFAULT_DIDS)
    if not isinstance(raw, dict):
        raise source.error("[dids]", "must be a table of DID = { name, route }", source.line_of("dids"))
    dids: dict[str, DidRoute] = {}
    for did, spec in raw.items():
        line = source.line_of(f"dids.{did}") or source.line_of("dids", did)
        key = f"[dids.{did}]"
        if not _DID_RE.match(did):
            raise source.error(key, "a DID is 1-32 digits, +, * or #", line)
        if not isinstance(spec, dict) or set(spec) - {"name", "route"} or "route" not in spec:
            raise source.error(key, 'must be { name = "...", route = "kind:target" }', line)
        route = spec["route"]
        kind, _, target = str(route).partition(":")
        if kind not in ROUTE_KINDS or not target:
            raise source.error(key, f"route {route!r}: must be one of "
                               f"{', '.join(k + ':<target>' for k in ROUTE_KINDS)}", line)
        dids[did] = DidRoute(name=str(spec.get("name", did)), route=str(route))
    return dids


def check_did_routes(dids: Mapping[str, DidRoute], queues: Collection[str], source: SettingsFile) -> None:
    """A DID routed to ``queue:<name>`` needs that queue among the configured ``queues`` (their names)."""
    for did, route in dids.items():
        kind, _, target = route.route.partition(":")
        if kind == "queue" and target not in queues:
            raise source.error(f"[dids.{did}]", f"route {route.route!r}: no queue {target!r} is configured",
                               source.line_of(f"dids.{did}"))
