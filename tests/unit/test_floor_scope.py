"""Supervisors see and act on their units' queues, agents and campaigns only (acd/scope.py): the
wallboard each one is shown, and every action checked against the database at the time it is taken."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from callcenter.acd.panel import AcdPanel
from callcenter.acd.scope import load_directory, wallboard_filter
from callcenter.acd.services import AcdService
from callcenter.acd.settings import QueueSpec
from callcenter.db.engine import Database
from callcenter.errors import ActionRefused
from callcenter.users import services as users
from callcenter.users import units
from callcenter.users.units import supervisor_scope

QUEUES = {"sales": QueueSpec("sales", org_unit="North"), "support": QueueSpec("support", org_unit="South"),
          "spare": QueueSpec("spare")}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'floor.db'}")
    database.migrate()
    with database.session() as session:
        users.add_user(session, name="Alice", extension="2001", org_unit="North")
        users.add_user(session, name="Bob", extension="2002", org_unit="South")
        users.add_user(session, name="Nina", extension="2005", roles=("supervisor",))
        users.add_user(session, name="Otto", extension="2006", roles=("supervisor",))
        users.add_user(session, name="Tess", extension="2007", roles=("supervisor",))
        units.save_unit(session, "North", admins=["2005"])
        units.grant_all_units(session, "2007", True)
    return database


def ids(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {u.extension or u.login: u.id for u in users.list_users(session)}


def board(agent_ids: dict[str, int]) -> dict[str, Any]:
    alice, bob = agent_ids["2001"], agent_ids["2002"]
    return {
        "generated_at": "2030-01-01T09:00:00+00:00",
        "queues": [{"name": "sales", "waiting": 1}, {"name": "support", "waiting": 2}, {"name": "spare"}],
        "agents": [{"id": alice, "extension": "2001"}, {"id": bob, "extension": "2002"}],
        "approvals": [{"agent_id": bob, "reason": "lunch"}],
        "live_calls": [{"agent": "2001", "number": "+4930111"}, {"agent": "2002", "number": "+4940222"}],
        "campaigns": [{"name": "spring", "queue": "sales"}, {"name": "autumn", "queue": "support"}],
    }


def shown_to(db: Database, extension: str, view: dict[str, Any]) -> dict[str, Any]:
    with db.session() as session:
        user = users.find_user(session, extension)
        return wallboard_filter(supervisor_scope(session, user), load_directory(session, QUEUES)).apply(view)


def test_each_supervisor_sees_their_units_and_only_a_grant_sees_everything(db: Database) -> None:
    """Before: every supervisor saw every queue, agent, pause request and live customer number."""
    agent_ids = ids(db)
    view = board(agent_ids)
    assert shown_to(db, "2007", view) == view  # given every unit
    north = shown_to(db, "2005", view)
    assert [q["name"] for q in north["queues"]] == ["sales"]
    assert [a["extension"] for a in north["agents"]] == ["2001"]
    assert north["approvals"] == [] and [c["number"] for c in north["live_calls"]] == ["+4930111"]
    assert [c["name"] for c in north["campaigns"]] == ["spring"] and "notice" not in north
    nothing = shown_to(db, "2006", view)  # a supervisor of no unit: nothing, and why
    assert all(nothing[part] == [] for part in ("queues", "agents", "approvals", "live_calls", "campaigns"))
    assert "You manage no organisational unit" in nothing["notice"]
    with db.session() as session:  # a move shows at the next read of the directory
        units.save_unit(session, "North", members=["2001", "2002"])
    assert [a["extension"] for a in shown_to(db, "2005", view)["agents"]] == ["2001", "2002"]


class FloorAcd:
    """The ACD's side of the supervisor actions, recorded (the scope checks under test are the panel's)."""

    def __init__(self) -> None:
        self.queues = {name: SimpleNamespace(spec=spec) for name, spec in QUEUES.items()}
        self.done: list[tuple[str, int]] = []

    async def decide_pause(self, by: str, agent_id: int, approve: bool) -> None:
        self.done.append(("approve" if approve else "deny", agent_id))

    async def logout(self, agent_id: int, by: str = "") -> None:
        self.done.append(("logout", agent_id))

    def notify(self) -> None:
        pass


class FloorDialer:
    def __init__(self) -> None:
        self.started: list[str] = []

    def status(self) -> list[dict[str, Any]]:
        return [{"name": "spring", "queue": "sales"}, {"name": "autumn", "queue": "support"}]

    async def start_campaign(self, name: str, by: str) -> None:
        self.started.append(name)


async def test_supervisor_actions_are_refused_outside_their_scope_checked_afresh(db: Database) -> None:
    """Before: any supervisor could log out any agent, approve any pause and start any campaign."""
    acd, dialer = FloorAcd(), FloorDialer()
    panel = AcdPanel(cast(AcdService, acd), db, list, dialer=cast(Any, dialer))
    agent_ids = ids(db)
    nina, alice, bob = agent_ids["2005"], agent_ids["2001"], agent_ids["2002"]
    await panel.supervisor_action(nina, "approve_pause", {"agent_id": str(alice)})
    await panel.supervisor_action(nina, "campaign_start", {"name": "spring"})
    for action, params in (("logout_agent", {"agent_id": str(bob)}), ("deny_pause", {"agent_id": str(bob)}),
                           ("campaign_start", {"name": "autumn"}), ("monitor_start", {"extension": "2002",
                                                                                       "mode": "silent"})):
        with pytest.raises(ActionRefused) as refused:
            await panel.supervisor_action(nina, action, params)
        assert refused.value.http_status == 403 and "not in your organisational units" in refused.value.message
    assert acd.done == [("approve", alice)] and dialer.started == ["spring"]
    with db.session() as session:  # no restart, no reload: the next action sees the move
        units.save_unit(session, "North", members=["2001", "2002"])
    await panel.supervisor_action(nina, "logout_agent", {"agent_id": str(bob)})
    assert acd.done[-1] == ("logout", bob)
    with pytest.raises(ActionRefused, match="not in your organisational units"):
        await panel.supervisor_action(agent_ids["2006"], "logout_agent", {"agent_id": str(alice)})
