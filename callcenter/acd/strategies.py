"""Which free agents a queue offers a call to (ACD-1). Pure functions over the agents' state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from callcenter.acd.model import Agent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _idle(agent: Agent) -> datetime:
    return agent.idle_since or _EPOCH


def choose(strategy: str, queue: str, free: Sequence[Agent], tried: set[int],
           last_offered: dict[str, int]) -> list[Agent]:
    """The agent(s) to ring for the next call of ``queue``; [] when nobody is free.

    ``tried`` are agents who already let this call ring out: they come last, so a caller is not
    offered to the same agent twice while someone else could take it. ``last_offered`` remembers
    the round-robin position per queue.
    """
    candidates = [a for a in free if queue in a.skills]
    if not candidates:
        return []
    untried = [a for a in candidates if a.user_id not in tried]
    pool = untried or candidates
    if strategy == "ring-all":
        return sorted(pool, key=lambda a: a.extension)
    if strategy == "round-robin":
        ordered = sorted(pool, key=lambda a: a.extension)
        previous = last_offered.get(queue)
        if previous is not None:
            after = [a for a in ordered if int(a.extension) > previous]
            ordered = after + [a for a in ordered if a not in after]
        return ordered[:1]
    if strategy == "fewest-calls":
        return [min(pool, key=lambda a: (a.calls_today, _idle(a), a.extension))]
    if strategy == "skills":
        # The best skill level wins; among equals the one idle longest.
        return [min(pool, key=lambda a: (-a.skills.get(queue, 0), _idle(a), a.extension))]
    return [min(pool, key=lambda a: (_idle(a), a.extension))]  # longest-idle
