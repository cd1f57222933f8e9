"""What a supervisor sees of the floor and may act on: the queues, agents and campaigns of the units in
their scope (users/units.py ``supervisor_scope``), everything only by the explicit grant of every unit.

A queue is in a unit by its configuration (``[queues.<name>] org_unit``), a campaign by its queue, an
agent, their pause requests and their live calls by the unit the agent is in now. The directory of
who is where is read from the database each time it is asked for (no cache of units): a stream re-reads
it with the viewer's scope when it re-checks the session, every action reads it afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.settings import QueueSpec
from callcenter.db.models import OrgUnit, User
from callcenter.users.units import NO_SCOPE, Scope


@dataclass(frozen=True)
class UnitDirectory:
    """Who is in which unit now: users by id and by extension, queues by name (None: no unit)."""

    user_units: Mapping[int, int | None]
    extension_units: Mapping[str, int | None]
    queue_units: Mapping[str, int | None]


def load_directory(session: Session, queues: Mapping[str, QueueSpec]) -> UnitDirectory:
    users = session.execute(select(User.id, User.extension, User.org_unit_id)).all()
    unit_ids = {name: unit_id for unit_id, name in session.execute(select(OrgUnit.id, OrgUnit.name))}
    return UnitDirectory(
        {user_id: unit for user_id, _, unit in users},
        {extension: unit for _, extension, unit in users if extension},
        {name: unit_ids.get(spec.org_unit) if spec.org_unit else None for name, spec in queues.items()})


@dataclass(frozen=True)
class WallboardFilter:
    """The part of the wallboard one supervisor may see. ``key`` is the same for every supervisor with
    the same scope, so they share one filtered text."""

    key: Hashable
    apply: Callable[[dict[str, Any]], dict[str, Any]]


def wallboard_filter(scope: Scope | None, directory: UnitDirectory) -> WallboardFilter:
    if scope is not None and scope.top:
        return WallboardFilter("all", lambda view: view)
    allowed = scope.unit_ids if scope is not None else frozenset()

    def agent(user_id: object) -> bool:
        return isinstance(user_id, int) and directory.user_units.get(user_id) in allowed

    def queue(name: object) -> bool:
        return isinstance(name, str) and directory.queue_units.get(name) in allowed

    def apply(view: dict[str, Any]) -> dict[str, Any]:
        shown = {
            **view,
            "queues": [q for q in view.get("queues", []) if queue(q.get("name"))],
            "agents": [a for a in view.get("agents", []) if agent(a.get("id"))],
            "approvals": [a for a in view.get("approvals", []) if agent(a.get("agent_id"))],
            "live_calls": [c for c in view.get("live_calls", [])
                           if directory.extension_units.get(str(c.get("agent", ""))) in allowed],
            "campaigns": [c for c in view.get("campaigns", []) if queue(c.get("queue"))],
        }
        if not allowed:
            shown["notice"] = NO_SCOPE
        return shown

    return WallboardFilter(("units", tuple(sorted(allowed))), apply)


class OutOfScope(Exception):
    """A supervisor acted on an agent, a queue or a campaign outside their scope."""


AGENT_OUT = "That agent is not in your organisational units."
QUEUE_OUT = "That queue is not in your organisational units."


def _require(scope: Scope | None, unit_id: int | None, refusal: str) -> None:
    if scope is None or not scope.covers(unit_id):
        raise OutOfScope(refusal)


def check_agent(scope: Scope | None, directory: UnitDirectory, user_id: int) -> None:
    _require(scope, directory.user_units.get(user_id), AGENT_OUT)


def check_extension(scope: Scope | None, directory: UnitDirectory, extension: str) -> None:
    _require(scope, directory.extension_units.get(extension), AGENT_OUT)


def check_queue(scope: Scope | None, directory: UnitDirectory, queue: str) -> None:
    _require(scope, directory.queue_units.get(queue), QUEUE_OUT)
