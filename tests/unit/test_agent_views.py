"""The agent views of a busy floor on the real AcdPanel and AcdService (test_acd's fakes): what every
agent's view shares (callbacks, pause reasons, wrap-up codes, transfer targets) is built once per change,
not once per agent, and each view is what a panel building it afresh would show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from callcenter.acd.model import Agent
from callcenter.acd.panel import AcdPanel
from callcenter.acd.records import DayFigures
from callcenter.acd.services import AcdService
from callcenter.db.engine import Database
from tests.unit.test_acd import make, queue

FLOOR = 50


class CountingCallbacks(dict[str, dict[str, Any]]):
    """The ACD's callback list, counting how often a view reads all of it."""

    reads = 0

    def values(self) -> Any:
        self.reads += 1
        return super().values()


def floor_of(size: int) -> tuple[AcdService, CountingCallbacks]:
    members = {str(3000 + n): 1 for n in range(size)}
    acd, _, timers = make([queue("sales", members)])
    agents = {n: Agent(n, str(3000 + n), f"Agent {n}", since=timers.now(), idle_since=timers.now())
              for n in range(1, size + 1)}
    for agent in agents.values():
        agent.skills = {"sales": 1}
    callbacks = [{"id": n, "number": f"+49301{n:04d}", "name": "", "queue": "sales", "reason": "abandoned",
                  "count": 1, "last_at": timers.now() - timedelta(minutes=n)} for n in range(300)]
    acd.load({"sales": queue("sales", members)}, agents, {"sales": DayFigures()}, {}, callbacks)
    counting = CountingCallbacks(acd.callbacks)
    acd.callbacks = counting
    return acd, counting


def panel_on(acd: AcdService) -> AcdPanel:
    return AcdPanel(acd, cast(Database, None), lambda: ["main", "support"])


async def test_fifty_agents_views_after_one_change_share_the_floor_lists() -> None:
    """Before: each of the 50 views sorted the callbacks and labelled every agent again (50 x 50)."""
    acd, callbacks = floor_of(FLOOR)
    panel = panel_on(acd)
    for user_id in acd.agents:
        await acd.login(user_id)
    views = [panel.agent_view(user_id) for user_id in acd.agents]
    assert callbacks.reads == 1
    await acd.pause(7, "break")  # one change
    callbacks.reads = 0
    views = {user_id: panel.agent_view(user_id) for user_id in acd.agents}
    assert callbacks.reads == 1, "the shared lists are built once for the 50 views of one change"
    fresh = panel_on(acd)
    assert all(views[user_id] == fresh.agent_view(user_id) for user_id in acd.agents)
    mine = views[1]["transfer_targets"]["agent"]
    assert len(mine) == FLOOR - 1 and all(target["id"] != "3001" for target in mine)
    assert {"id": "3007", "label": "Agent 7 (3007) - paused"} in mine
    assert len(views[1]["callbacks"]) == 100 and views[1]["callbacks"][0]["id"] == 0


async def test_a_view_follows_every_change_and_the_ivr_flows() -> None:
    acd, _ = floor_of(3)
    flows = ["main"]
    panel = AcdPanel(acd, cast(Database, None), lambda: list(flows))
    await acd.login(1)
    await acd.login(2)
    assert [t["id"] for t in panel.agent_view(1)["transfer_targets"]["agent"]] == ["3002"]
    await acd.logout(2)
    assert panel.agent_view(1)["transfer_targets"]["agent"] == []
    flows.append("night")  # a flow file appeared: no ACD change, the next view has it
    assert [t["id"] for t in panel.agent_view(1)["transfer_targets"]["ivr"]] == ["main", "night"]
