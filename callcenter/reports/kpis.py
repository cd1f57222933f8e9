"""The published KPI formulas (docs/kpis.md): pure functions over summable counters, so the live wallboard
and the historical reports compute every figure the same way.

`QueueCounts` and `AgentTimes` hold only sums and counts (and one maximum), so the figures of any period are
those of the sum of its intervals: ``sum(intervals, QueueCounts())``. The derived figures are properties;
every ratio is ``None`` when its denominator is zero (no call, no logged-in time), never 0 or an error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Callers who hang up within this many seconds of entering the queue are short abandons (default).
SHORT_ABANDON_SECONDS = 5.0


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when whole is zero (no figure rather than a false 0 %)."""
    return part / whole if whole else None


def percent(part: float, whole: float) -> float | None:
    r = ratio(part, whole)
    return None if r is None else 100.0 * r


@dataclass(frozen=True)
class QueueCall:
    """What the formulas need of one queue call (one `acd_calls` record with a queue)."""

    wait_seconds: float          # entry to answer, or entry to the end for a call not answered
    answered: bool
    abandoned: bool              # the caller hung up while waiting or ringing
    overflowed: bool = False     # left for another queue, voicemail, an IVR flow or the callback list
    talk_seconds: float | None = None
    transferred: bool = False    # answered, then transferred by the agent
    callback_requested: bool = False


@dataclass(frozen=True)
class QueueCounts:
    """The summable figures of a queue over a period. ``abandoned`` excludes the short abandons."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    transfers: int = 0
    callbacks_requested: int = 0
    callbacks_completed: int = 0
    answered_wait_sum: float = 0.0   # Σ wait of answered calls (ASA)
    wait_sum: float = 0.0            # Σ wait of every call that left waiting (answered, abandoned, overflowed)
    waited: int = 0                  # the number of those calls
    wait_max: float = 0.0            # the longest of those waits
    talk_sum: float = 0.0            # Σ talk of answered calls with a recorded talk time
    talked: int = 0

    def __add__(self, other: QueueCounts) -> QueueCounts:
        if not isinstance(other, QueueCounts):
            return NotImplemented
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        values["wait_max"] = max(self.wait_max, other.wait_max)
        return QueueCounts(**values)

    def __radd__(self, other: object) -> QueueCounts:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    @staticmethod
    def of_call(call: QueueCall, threshold: float, short_abandon: float = SHORT_ABANDON_SECONDS) -> QueueCounts:
        """One call's contribution. ``threshold``: the queue's service-level seconds (answered at or under it
        counts as within); ``short_abandon``: an abandon with a wait under it is a short abandon."""
        wait = max(0.0, float(call.wait_seconds))
        short = call.abandoned and not call.answered and wait < short_abandon
        abandoned = call.abandoned and not call.answered and not short
        overflowed = call.overflowed and not call.answered and not call.abandoned
        talked = call.answered and call.talk_seconds is not None
        waited = call.answered or call.abandoned or call.overflowed
        return QueueCounts(
            offered=1, answered=int(call.answered), answered_in_sl=int(call.answered and wait <= threshold),
            abandoned=int(abandoned), short_abandoned=int(short), overflowed=int(overflowed),
            transfers=int(call.transferred), callbacks_requested=int(call.callback_requested),
            callbacks_completed=int(call.callback_requested and call.answered),
            answered_wait_sum=wait if call.answered else 0.0, wait_sum=wait if waited else 0.0,
            waited=int(waited), wait_max=wait if waited else 0.0,
            talk_sum=float(call.talk_seconds or 0.0) if talked else 0.0, talked=int(talked))

    @property
    def service_level(self) -> float | None:
        """% answered within the threshold of (answered + abandoned), short abandons excluded."""
        return percent(self.answered_in_sl, self.answered + self.abandoned)

    @property
    def abandon_rate(self) -> float | None:
        """% abandoned (short abandons excluded) of the calls offered less the short abandons."""
        return percent(self.abandoned, self.offered - self.short_abandoned)

    @property
    def asa(self) -> float | None:
        """Average speed of answer: Σ wait of answered calls / answered."""
        return ratio(self.answered_wait_sum, self.answered)

    @property
    def average_wait(self) -> float | None:
        """Average wait of every call that left waiting (answered, abandoned, short abandoned, overflowed)."""
        return ratio(self.wait_sum, self.waited)

    @property
    def longest_wait(self) -> float | None:
        return self.wait_max if self.waited else None

    @property
    def average_talk(self) -> float | None:
        return ratio(self.talk_sum, self.talked)


# Offer outcomes that count against the agent (the ones the ACD's missed_limit counts).
UNANSWERED_OFFERS = frozenset({"no_answer", "busy", "rejected", "failed", "withdrawn", "overtaken"})
LOGGED_IN_STATES = frozenset({"ready", "ringing", "on_call", "wrap_up", "paused"})


@dataclass(frozen=True)
class AgentTimes:
    """The summable figures of an agent over a period: seconds per state (the work log), seconds per pause
    reason, offers and talk. ``hold_seconds`` is kept for AHT; the ACD does not record hold yet (0)."""

    logged_in_seconds: float = 0.0
    ready_seconds: float = 0.0
    ringing_seconds: float = 0.0
    on_call_seconds: float = 0.0
    wrap_up_seconds: float = 0.0
    paused_seconds: float = 0.0
    pause_reasons: Mapping[str, float] = field(default_factory=dict)
    handled: int = 0        # offers that rang the agent
    completed: int = 0      # of those, answered
    unanswered: int = 0     # of those, missed (UNANSWERED_OFFERS)
    talked: int = 0         # answered calls with a recorded talk time
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    first_response_sum: float = 0.0   # Σ ring seconds of answered offers

    def __add__(self, other: AgentTimes) -> AgentTimes:
        if not isinstance(other, AgentTimes):
            return NotImplemented
        values = {f.name: getattr(self, f.name) + getattr(other, f.name)
                  for f in fields(self) if f.name != "pause_reasons"}
        return AgentTimes(pause_reasons=merge_seconds(self.pause_reasons, other.pause_reasons), **values)

    def __radd__(self, other: object) -> AgentTimes:
        if other == 0:
            return self
        return NotImplemented

    @staticmethod
    def in_state(state: str, seconds: float, reason: str = "") -> AgentTimes:
        """``seconds`` spent in one work-log state (``logged_out`` counts nothing)."""
        if state not in LOGGED_IN_STATES:
            return AgentTimes()
        reasons = {reason or "(none)": seconds} if state == "paused" else {}
        values: dict[str, Any] = {f"{state}_seconds": seconds}
        return replace(AgentTimes(logged_in_seconds=seconds, pause_reasons=reasons), **values)

    @property
    def handle_seconds(self) -> float:
        """Talk + hold + wrap-up."""
        return self.talk_seconds + self.hold_seconds + self.wrap_up_seconds

    @property
    def aht(self) -> float | None:
        """Average handle time: (talk + hold + wrap-up) / answered calls."""
        return ratio(self.handle_seconds, self.completed)

    @property
    def average_talk(self) -> float | None:
        return ratio(self.talk_seconds, self.talked)

    @property
    def completion(self) -> float | None:
        """% of the offers that rang the agent that they answered."""
        return percent(self.completed, self.handled)

    @property
    def average_first_response(self) -> float | None:
        """Average ring seconds before the agent answered."""
        return ratio(self.first_response_sum, self.completed)

    @property
    def occupancy(self) -> float | None:
        """% (on call + wrap-up) of the time available for calls: logged in less paused."""
        return percent(self.on_call_seconds + self.wrap_up_seconds, self.logged_in_seconds - self.paused_seconds)

    @property
    def utilisation(self) -> float | None:
        """% (on call + wrap-up) of the logged-in time, pauses included."""
        return percent(self.on_call_seconds + self.wrap_up_seconds, self.logged_in_seconds)


def merge_seconds(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    merged = dict(a)
    for key, seconds in b.items():
        merged[key] = merged.get(key, 0.0) + seconds
    return merged
