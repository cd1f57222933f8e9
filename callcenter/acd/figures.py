"""Today's figures of the queues (the wallboard's), a caller's position and estimated wait."""

from __future__ import annotations

import logging
from typing import Any

from callcenter import metrics
from callcenter.acd.core import (
    AcdCore,
    queue_rank,
)
from callcenter.acd.model import (
    AcdCall,
    AgentState,
)
from callcenter.acd.records import DayFigures, start_of_day

log = logging.getLogger(__name__)


class Figures(AcdCore):
    def _roll_day(self) -> None:
        today = start_of_day(self.timers.now())
        if today != self._day:
            self._day = today
            for runtime in self.queues.values():
                runtime.figures = DayFigures()
            for agent in self.agents.values():
                agent.calls_today = 0

    def queue_figures(self) -> list[dict[str, Any]]:
        self._roll_day()
        now = self.timers.now()
        out = []
        for name, runtime in sorted(self.queues.items()):
            f = runtime.figures
            waiting = [c for c in self.calls.values() if c.queue == name and c.waiting]
            oldest = min((c.entered_at for c in waiting if c.entered_at), default=None)
            left = f.answered + f.abandoned + f.overflowed
            out.append({
                "name": name, "waiting": len(waiting),
                "oldest_since": oldest.isoformat() if oldest else None,
                "longest_wait": round((now - oldest).total_seconds()) if oldest else 0,
                "service_level": round(100.0 * f.answered_in_sl / left, 1) if left else None,
                "service_level_seconds": runtime.spec.service_level,
                "offered": f.offered, "answered": f.answered, "abandoned": f.abandoned,
                "overflowed": f.overflowed,
                "avg_wait": round(f.wait_total / f.answered, 1) if f.answered else None,
                "avg_talk": round(f.talk_total / f.talked, 1) if f.talked else None,
            })
        return out

    def position(self, call: AcdCall) -> int:
        ahead = [c for c in self.calls.values()
                 if c.queue == call.queue and c.waiting and queue_rank(c) < queue_rank(call)]
        return len(ahead) + 1

    def estimated_wait(self, queue: str, position: int) -> float | None:
        """Seconds until an agent takes a caller at ``position`` (docs/wallboard.md): callers ahead
        beyond the free agents, served by the staffed agents at the recent average handle time."""
        runtime = self.queues[queue]
        staffed = [a for a in self.agents.values() if queue in a.skills and a.logged_in
                   and a.state is not AgentState.PAUSED]
        if not staffed:
            return None
        free = sum(1 for a in staffed if a.free)
        times = runtime.handle_times
        handle = sum(times) / len(times) if times else float(self.settings.default_handle_time)
        return max(0, position - free) * handle / len(staffed)

    def _count_answer(self, call: AcdCall, wait: float) -> None:
        """A queue call was answered for the first time, after ``wait`` seconds: today's figures."""
        runtime = self.queues.get(call.queue or "")
        if runtime is None:
            return
        runtime.figures.answered += 1
        runtime.figures.wait_total += wait
        if wait <= runtime.spec.service_level:
            runtime.figures.answered_in_sl += 1
        metrics.ACD_CALLS.labels(call.queue, "answered").inc()
        metrics.ACD_WAIT.observe(wait)
