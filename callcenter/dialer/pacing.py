"""Outbound pacing (DIA-2, DIA-3): how many calls to place now, within the abandon rules.

The dialer service asks a pacer about once a second with a `Snapshot` of the campaign (ready agents,
busy agents and how long they have been in their phase, calls ringing and their ages, people waiting
for an agent) and places as many calls as it answers. Two pacers run campaigns:

- `ProgressivePacer` (here): one call per free agent. Abandons only when an agent counted free does not
  take the call within 2 s (a phone slow to answer).
- `PredictivePacer` (predictive.py): ours. For n new calls it forecasts the people who will answer over
  the next half-minute against the agents who will be free by then, and places the largest n whose
  forecast abandon rate stays within what every abandon window (`AbandonLedger`) can still afford.

Both obey the abandon target whatever happens: while any window of the ledger is over it, they
dial one call per `OVER_TARGET_AGENTS_PER_CALL` free agents (`abandon_brake`), and their `decision()`
says so in words for the wallboard.

`AbandonLedger` counts answers, abandons and machine verdicts over the regulators' rolling windows
(30 days per campaign in the US, 24 hours in the UK, where an estimate of the answering-machine
detector's false positives counts as abandons); `Estimates` (estimates.py) learns answer rates and the
time distributions from the outcomes the service reports. Pure Python, no I/O: the simulator
(callcenter/dialer/sim/) drives these same classes, against a VICIdial-style yardstick of its own.
docs/dialer-pacing.md has the model, the numbers and the sources.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ABANDON_SECONDS = 2.0  # a person who answered gets an agent within 2 s, or the call counts as abandoned
# The ledger's time buckets: a window's edge falls on a whole minute (reports.py counts the same way).
BUCKET_SECONDS = 60.0




@dataclass(frozen=True, slots=True)
class BusyAgent:
    """An agent of the campaign on a call ("talk") or finishing one ("wrapup"), not paused."""

    phase: str
    elapsed: float  # seconds in this phase so far
    wrapup_left: float | None = None  # seconds of wrap-up left, when the phase is "wrapup" and it has a deadline


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The campaign at one moment. ``dialing`` holds, for each placed call whose outcome is not known
    yet (ringing, or answered and still being analysed by AMD), the seconds since it was placed;
    ``waiting`` counts people who answered (passed AMD) and wait for an agent."""

    now: float  # seconds on any monotonic origin
    ready: int
    busy: tuple[BusyAgent, ...]
    dialing: tuple[float, ...]
    waiting: int

    @property
    def logged_in(self) -> int:
        """Agents logged in to the campaign and not paused."""
        return self.ready + len(self.busy)


@dataclass(frozen=True)
class Window:
    """A span over which the abandon rate must stay within the target."""

    name: str
    seconds: float
    count_amd_false_positives: bool = False  # the UK rule: people AMD hung up on count as abandoned


US_30_DAYS = Window("30d", 30 * 86400.0)
UK_24_HOURS = Window("24h", 86400.0, count_amd_false_positives=True)


def progressive_calls(snap: Snapshot) -> int:
    """One call per free agent: ready agents less the calls already ringing or waiting for them."""
    return max(0, snap.ready - len(snap.dialing) - snap.waiting)


# While a window is over the target, each call placed has this many free agents behind it: when the agent
# the ACD offers the person to is slow or away, a second one can still take them within the 2 seconds.
# A campaign over target is dialling people it cannot serve; fewer calls, each with a spare agent, brings
# the rate down with every person connected, where a pause would leave a 30-day window over for weeks.
OVER_TARGET_AGENTS_PER_CALL = 2


@dataclass(frozen=True, slots=True)
class Brake:
    """Why a pacer dials fewer than one call per free agent: the window furthest over the target."""

    window: str
    rate: float  # share, as ``AbandonLedger.rates`` counts it
    target: float  # share
    agents_per_call: int

    @property
    def reason(self) -> str:
        """For the wallboard, e.g. "abandon rate 5.2% over target 3% in window 24h: dialling 1 call per 2
        free agents"."""
        return (f"abandon rate {self.rate * 100:.1f}% over target {round(self.target * 100, 2):g}% in window "
                f"{self.window}: dialling 1 call per {self.agents_per_call} free agents")

    def calls(self, snap: Snapshot) -> int:
        """One call per ``agents_per_call`` free agents, less the calls ringing or waiting (each holds as many)."""
        return max(0, snap.ready // self.agents_per_call - len(snap.dialing) - snap.waiting)


@dataclass(frozen=True, slots=True)
class Decision:
    """A pacer's answer: the calls to place now, and the brake that held them back, if any."""

    calls: int
    brake: Brake | None = None

    @property
    def reason(self) -> str:
        """Why the pacer dials below one call per free agent; "" when it does not."""
        return self.brake.reason if self.brake is not None else ""


def abandon_brake(ledger: AbandonLedger, now: float,
                  agents_per_call: int = OVER_TARGET_AGENTS_PER_CALL) -> Brake | None:
    """The brake every mode obeys: the window whose rate is furthest over the ledger's target, or None
    while every window is at or under it. A window with a single abandon among few answers is over too:
    the rules count the rate, not its confidence, and the brake only slows the campaign down. A window
    over only by the estimated AMD false positives, with no person actually abandoned, does not brake:
    those estimates are a share of the machine verdicts, which fewer calls would not change."""
    worst: tuple[str, float] | None = None
    for name, window in ledger.rates(now).items():
        if window.rate > ledger.target and window.abandoned > 0 and (worst is None or window.rate > worst[1]):
            worst = (name, window.rate)
    if worst is None:
        return None
    return Brake(worst[0], worst[1], ledger.target, agents_per_call)


def over_target_figures(row: Mapping[str, Any]) -> list[str]:
    """The windows over the target of a campaign's wallboard row (``DialerService.status()``: ``abandon``
    maps a window to its ``rate`` as a share, ``target`` is in percent), as "24h 5.2%": what a supervisor
    is shown before starting or resuming the campaign."""
    target, windows = row.get("target"), row.get("abandon")
    if not isinstance(target, int | float) or not isinstance(windows, Mapping):
        return []
    figures = []
    for name, window in windows.items():
        rate = window.get("rate") if isinstance(window, Mapping) else None
        if isinstance(rate, int | float) and rate * 100 > target:
            figures.append(f"{name} {rate * 100:.1f}%")
    return figures


# --- the ledger --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowRate:
    answered: int  # people who answered (passed AMD), connected or abandoned
    abandoned: int
    estimated_false_positives: float  # 0 unless the window counts them
    rate: float  # (abandoned + est. false positives) / (answered + est. false positives)


class _Span:
    """Running sums over the buckets that start after ``now - seconds``."""

    __slots__ = ("abandoned", "answered", "first", "machines", "seconds")

    def __init__(self, seconds: float, first: int) -> None:
        self.seconds = seconds
        self.first = first  # absolute index of the oldest bucket counted
        self.answered = 0
        self.abandoned = 0
        self.machines = 0


class AbandonLedger:
    """Answers, abandons and AMD machine verdicts over each rolling window, in time buckets
    (``bucket_seconds``, so a 30-day window costs a few thousand small lists at any call volume).

    Feed it in time order (a few seconds out of order is fine), including at start-up when the last
    30 days are replayed from the database, with the time the person answered: ``human_answered(t)`` for
    every person connected to an agent, ``abandoned(t)`` for every person who got no agent within 2 s
    (an abandoned call counts as answered too: call one or the other, not both);
    ``machine_detected(t)`` for every AMD "machine" verdict; ``machine_answered(t)`` (same ``t`` as the
    ``human_answered``) when an agent found an answering machine the AMD had passed as a person, so the
    windows count people only. ``amd_false_positive_rate`` is the share of "machine" verdicts that were
    in fact a person (from the AMD's measured accuracy): windows with ``count_amd_false_positives`` add
    that many estimated abandons, to the answers too.

    A window holds the buckets that end after ``now - seconds``: its edge is fuzzy by one bucket."""

    def __init__(self, target: float, windows: Sequence[Window], amd_false_positive_rate: float = 0.0, *,
                 look_ahead: float = 900.0, bucket_seconds: float = BUCKET_SECONDS) -> None:
        if not 0 < target < 1:
            raise ValueError(f"target must be a share between 0 and 1, got {target}")
        if not windows or len({w.name for w in windows}) != len(windows):
            raise ValueError("give at least one window, each with its own name")
        if not 0 <= amd_false_positive_rate < 1:
            raise ValueError("amd_false_positive_rate must be a share between 0 and 1")
        self.target = target
        self.windows = tuple(windows)
        self.amd_false_positive_rate = amd_false_positive_rate
        self.look_ahead = look_ahead
        self.bucket = min(bucket_seconds, min(w.seconds for w in self.windows) / 60)
        self._starts: list[float] = []
        self._counts: list[list[int]] = []  # per bucket: answered, abandoned, machines
        self._offset = 0  # absolute index of self._starts[0]
        self._now = -math.inf
        # Per window: the whole window, and the part that will still be in it ``look_ahead`` from now.
        self._spans: list[tuple[Window, _Span, _Span | None]] = [
            (w, _Span(w.seconds, 0), _Span(w.seconds - look_ahead, 0) if w.seconds > look_ahead else None)
            for w in self.windows]

    # Feeding.
    def human_answered(self, t: float) -> None:
        self._add(t, 0)

    def abandoned(self, t: float) -> None:
        """A person answered and was abandoned (counts as answered too)."""
        self._add(t, 1)

    def machine_detected(self, t: float) -> None:
        self._add(t, 2)

    def machine_answered(self, t: float) -> None:
        """The call counted by ``human_answered(t)`` was an answering machine (the agent's disposition):
        it no longer counts as answered."""
        self._add(t, 3)

    def _add(self, t: float, kind: int) -> None:
        start = math.floor(t / self.bucket) * self.bucket
        starts = self._starts
        if not starts or start > starts[-1]:
            starts.append(start)
            self._counts.append([0, 0, 0])
            i = len(starts) - 1
        elif start == starts[-1]:
            i = len(starts) - 1
        else:  # an event out of order
            i = bisect_left(starts, start)
            if i == len(starts) or starts[i] != start:
                starts.insert(i, start)
                self._counts.insert(i, [0, 0, 0])
                self._bump(self._counts[i], kind)
                self._recount()
                return
        self._bump(self._counts[i], kind)
        index = self._offset + i
        for _, whole, kept in self._spans:
            for span in (whole, kept):
                if span is not None and index >= span.first:
                    if kind == 2:
                        span.machines += 1
                    elif kind == 3:
                        span.answered -= 1
                    else:
                        span.answered += 1
                        span.abandoned += kind

    @staticmethod
    def _bump(counts: list[int], kind: int) -> None:
        if kind == 2:
            counts[2] += 1
        elif kind == 3:
            counts[0] -= 1
        else:
            counts[0] += 1
            counts[1] += kind

    def _recount(self) -> None:
        """After a bucket was inserted in the middle: every span again from the oldest bucket."""
        answered, abandoned, machines = (sum(c[k] for c in self._counts) for k in range(3))
        for _, whole, kept in self._spans:
            for span in (whole, kept):
                if span is not None:
                    span.first = self._offset
                    span.answered, span.abandoned, span.machines = answered, abandoned, machines
        now, self._now = self._now, -math.inf
        if now > -math.inf:
            self._advance(now)

    def _advance(self, now: float) -> None:
        if now <= self._now:
            return
        self._now = now
        starts, counts, offset, width = self._starts, self._counts, self._offset, self.bucket
        end = offset + len(starts)
        for _, whole, kept in self._spans:
            for span in (whole, kept):
                if span is None:
                    continue
                edge = now - span.seconds
                i = span.first
                while i < end and starts[i - offset] + width <= edge:
                    c = counts[i - offset]
                    span.answered -= c[0]
                    span.abandoned -= c[1]
                    span.machines -= c[2]
                    i += 1
                span.first = i
        oldest = min(w[1].first for w in self._spans)
        if oldest - offset > 4096:
            drop = oldest - offset
            del starts[:drop]
            del counts[:drop]
            self._offset += drop

    def _estimated_false_positives(self, window: Window, span: _Span) -> float:
        return self.amd_false_positive_rate * span.machines if window.count_amd_false_positives else 0.0

    def _slack(self, window: Window, span: _Span) -> float:
        """Abandons the span could still take: target x live answers - abandons (est. FPs in both)."""
        fp = self._estimated_false_positives(window, span)
        return self.target * (span.answered + fp) - (span.abandoned + fp)

    # Reading.
    def rates(self, now: float) -> dict[str, WindowRate]:
        self._advance(now)
        out = {}
        for window, span, _ in self._spans:
            fp = self._estimated_false_positives(window, span)
            live = span.answered + fp
            out[window.name] = WindowRate(span.answered, span.abandoned, fp,
                                          (span.abandoned + fp) / live if live > 0 else 0.0)
        return out

    def counts(self, since: float, until: float) -> tuple[int, int, int]:
        """Answered, abandoned and machine verdicts in the buckets starting in [since, until]."""
        starts = self._starts
        lo, hi = bisect_left(starts, since - 1e-9), bisect_right(starts, until)
        answered = abandoned = machines = 0
        for c in self._counts[lo:hi]:
            answered += c[0]
            abandoned += c[1]
            machines += c[2]
        return answered, abandoned, machines

    def allowed_rate(self, now: float, *, recovery_answers: float, buffer: float, overspend: float = 1.0) -> float:
        """The abandon rate the pacer may plan for now: the budget of the tightest window.

        For each window the slack is target x live answers - abandons (with estimated false positives
        on both sides where the window counts them), taking the smaller of the window as it is and of
        the part of it that will still be inside ``look_ahead`` from now (old answers leaving a rolling
        window take their slack with them). The plan is to hold ``buffer`` abandons of slack in hand:
        the pacer runs at the target (less the share estimated false positives take) plus the
        difference between slack and buffer spread over the next ``recovery_answers`` answers; never
        below 0 and never above target x (1 + overspend)."""
        self._advance(now)
        t = self.target
        allowed = t * (1 + overspend)
        for window, whole, kept in self._spans:
            slack = self._slack(window, whole)
            if kept is not None:
                slack = min(slack, self._slack(window, kept))
            base = t
            if window.count_amd_false_positives:
                per_answer = self._estimated_false_positives(window, whole) / max(whole.answered, 30)
                base -= (1 - t) * per_answer
            allowed = min(allowed, base + (slack - buffer) / max(recovery_answers, 1.0))
        return max(0.0, allowed)


# --- progressive -------------------------------------------------------------------------------------


class ProgressivePacer:
    """One call per free agent: ready agents minus the calls already ringing or waiting for them; while a
    window of ``ledger`` is over the target, one call per ``agents_per_call_over_target`` free agents
    (`abandon_brake`). Without a ledger it cannot brake: give it the campaign's."""

    name = "progressive"

    def __init__(self, ledger: AbandonLedger | None = None, *,
                 agents_per_call_over_target: int = OVER_TARGET_AGENTS_PER_CALL) -> None:
        if agents_per_call_over_target < 2:
            raise ValueError("over target, each call needs at least 2 free agents behind it")
        self.ledger = ledger
        self.agents_per_call_over_target = agents_per_call_over_target

    def decision(self, snap: Snapshot) -> Decision:
        if self.ledger is not None:
            brake = abandon_brake(self.ledger, snap.now, self.agents_per_call_over_target)
            if brake is not None:
                return Decision(brake.calls(snap), brake)
        return Decision(progressive_calls(snap))

    def decide(self, snap: Snapshot) -> int:
        return self.decision(snap).calls
