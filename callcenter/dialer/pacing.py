"""Outbound pacing (DIA-2, DIA-3): how many calls to place now.

The dialer service asks a pacer about once a second with a `Snapshot` of the campaign (ready agents,
busy agents and how long they have been in their phase, calls ringing and their ages, people waiting
for an agent) and places as many calls as it answers. Three pacers:

- `ProgressivePacer`: one call per free agent. Abandons only when an agent counted free does not take the
  call within 2 s (a phone slow to answer).
- `AdaptivePacer`: VICIdial's ADAPT_* dial methods (AST_VDadapt.pl / AST_VDauto_dial.pl), kept as the
  yardstick: a dial level nudged every 15 s by the ready-agents minus waiting-calls differential,
  braked once the day's drop percentage is over the limit.
- `PredictivePacer`: ours. For n new calls it forecasts the people who will answer over the next
  half-minute (the calls in flight by their age, the n, and the calls the next seconds will place)
  against the agents who will be free by then (ready now, plus busy agents finishing, from their
  talk and wrap-up so far), computes the expected abandons, and places the largest n whose forecast
  abandon rate stays within what every abandon window (`AbandonLedger`) can still afford. Below
  `min_agents`, and until the estimates rest on the campaign's own outcomes, it is progressive.

Both of ours obey the abandon target whatever happens: while any window of the ledger is over it, they
dial one call per `OVER_TARGET_AGENTS_PER_CALL` free agents (`abandon_brake`), and their `decision()`
says so in words for the wallboard.

`Estimates` learns answer rates and the time distributions from the outcomes the service reports;
`AbandonLedger` counts answers, abandons and machine verdicts over the regulators' rolling windows
(30 days per campaign in the US, 24 hours in the UK, where an estimate of the answering-machine
detector's false positives counts as abandons). Pure Python, no I/O: `simulate.py` drives these same
classes. docs/dialer-pacing.md has the model, the numbers and the sources.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Protocol

ABANDON_SECONDS = 2.0  # a person who answered gets an agent within 2 s, or the call counts as abandoned
# The ledger's time buckets: a window's edge falls on a whole minute (reports.py counts the same way).
BUCKET_SECONDS = 60.0
OUTCOMES = ("human", "machine", "busy", "no_answer", "failed")
_RING_KIND = {"human": "human", "machine": "machine", "busy": "other", "no_answer": "other", "failed": "other"}
_SAMPLE_KINDS = ("human", "machine", "other", "talk", "wrapup")


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


class Pacer(Protocol):
    name: str

    def decide(self, snap: Snapshot) -> int:
        """How many new calls to place now (>= 0)."""
        ...


def _progressive(snap: Snapshot) -> int:
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


# --- estimates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prior:
    """What `Estimates` assume before the campaign has outcomes of its own: a consumer list. ``weight``
    is how many observations the prior is worth (its samples leave as real ones arrive)."""

    human: float = 0.30
    machine: float = 0.15
    busy: float = 0.08
    failed: float = 0.02  # the rest rings out unanswered
    human_seconds: float = 10.0  # placed -> a person answers
    machine_seconds: float = 13.0  # placed -> a machine answers
    amd_seconds: float = 0.0  # answer -> AMD verdict, until the campaign reports its own
    busy_seconds: float = 5.0
    failed_seconds: float = 2.0
    no_answer_seconds: float = 25.0  # the ring timeout
    talk_mean: float = 120.0
    talk_sd: float = 90.0
    wrapup_mean: float = 20.0
    wrapup_sd: float = 10.0
    weight: int = 20

    def share(self, outcome: str) -> float:
        if outcome == "no_answer":
            return max(0.0, 1.0 - self.human - self.machine - self.busy - self.failed)
        return float(getattr(self, outcome))


def lognormal_points(mean: float, sd: float, count: int) -> list[float]:
    """``count`` evenly spaced quantiles of the lognormal with this mean and standard deviation."""
    if count <= 0:
        return []
    sigma = math.sqrt(math.log1p((sd / mean) ** 2))
    mu = math.log(mean) - sigma * sigma / 2
    unit = NormalDist()
    return [math.exp(mu + sigma * unit.inv_cdf((i + 0.5) / count)) for i in range(count)]


class Estimates:
    """Live estimates from the last ``memory`` outcomes of each kind, starting from a prior so the first
    minutes are sane: outcome shares, the time from placing a call to its outcome (per outcome), the
    answering-machine detector's analysis time, talk and wrap-up times. The service reports every placed
    call once its outcome is known, and every AMD analysis, talk and wrap-up once it ends."""

    def __init__(self, memory: int = 500, prior: Prior | None = None) -> None:
        if memory < 10:
            raise ValueError("memory must be at least 10 outcomes")
        self.memory = memory
        self.prior = prior or Prior()
        p, k = self.prior, self.prior.weight
        self._outcomes: deque[str] = deque(maxlen=memory)
        self._counts = dict.fromkeys(OUTCOMES, 0)
        other = ([p.busy_seconds] * round(k * p.busy) + [p.failed_seconds] * round(k * p.failed)
                 + [p.no_answer_seconds] * round(k * p.share("no_answer")))
        self._samples: dict[str, deque[float]] = {
            "human": deque(lognormal_points(p.human_seconds, 0.4 * p.human_seconds, k), maxlen=memory),
            "machine": deque(lognormal_points(p.machine_seconds, 0.4 * p.machine_seconds, k), maxlen=memory),
            "other": deque(other or [p.no_answer_seconds], maxlen=memory),
            "talk": deque(lognormal_points(p.talk_mean, p.talk_sd, k), maxlen=memory),
            "wrapup": deque(lognormal_points(p.wrapup_mean, p.wrapup_sd, k), maxlen=memory),
        }
        self._amd: deque[float] = deque(maxlen=memory)
        self._talks_seen = 0
        self._sorted: dict[str, tuple[int, list[float]]] = {}
        self.version = 0  # changes with every observation

    def call_result(self, outcome: str, ring_seconds: float) -> None:
        """A placed call's outcome is known: ``ring_seconds`` from placing it to the answer (for "human"
        and "machine") or to the failure; report the AMD analysis after the answer with `amd`."""
        if outcome not in self._counts:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if len(self._outcomes) == self.memory:
            self._counts[self._outcomes[0]] -= 1
        self._outcomes.append(outcome)
        self._counts[outcome] += 1
        self._samples[_RING_KIND[outcome]].append(max(0.0, ring_seconds))
        self.version += 1

    def amd(self, seconds: float) -> None:
        """An answered call's AMD analysis took ``seconds`` (answer -> verdict): the person starts
        needing an agent that much after the answer."""
        self._amd.append(max(0.0, seconds))
        self.version += 1

    def talk(self, seconds: float) -> None:
        self._samples["talk"].append(max(0.0, seconds))
        self._talks_seen += 1
        self.version += 1

    def wrapup(self, seconds: float) -> None:
        self._samples["wrapup"].append(max(0.0, seconds))
        self.version += 1

    @property
    def observed(self) -> int:
        """Outcomes in memory (the prior not counted)."""
        return len(self._outcomes)

    def rate(self, outcome: str) -> float:
        """Share of placed calls ending in ``outcome``: the counts in memory plus the prior's weight."""
        k = self.prior.weight
        return (self._counts[outcome] + k * self.prior.share(outcome)) / (len(self._outcomes) + k)

    @property
    def observed_talks(self) -> int:
        """Talk times reported (the prior's not counted), up to ``memory``."""
        return min(self._talks_seen, self.memory)

    @property
    def human_rate(self) -> float:
        return self.rate("human")

    @property
    def machine_rate(self) -> float:
        return self.rate("machine")

    def human_rate_upper(self, z: float = 1.0) -> float:
        """The human rate plus ``z`` standard errors: more people answering means more abandons, so the
        pacer plans with this while the data is thin."""
        p = self.human_rate
        return min(1.0, p + z * math.sqrt(p * (1 - p) / (len(self._outcomes) + self.prior.weight)))

    def samples(self, kind: str) -> list[float]:
        """Sorted samples of "human", "machine" or "other" (busy, failed, no answer) times to outcome,
        or of "talk" or "wrapup" times (cached until the next observation)."""
        cached = self._sorted.get(kind)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        values = sorted(self._samples[kind])
        self._sorted[kind] = (self.version, values)
        return values

    @property
    def mean_amd(self) -> float:
        return sum(self._amd) / len(self._amd) if self._amd else self.prior.amd_seconds

    @property
    def mean_talk(self) -> float:
        values = self._samples["talk"]
        return sum(values) / len(values)

    @property
    def mean_wrapup(self) -> float:
        values = self._samples["wrapup"]
        return sum(values) / len(values)


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
        return Decision(_progressive(snap))

    def decide(self, snap: Snapshot) -> int:
        return self.decision(snap).calls


# --- VICIdial's adaptive modes -----------------------------------------------------------------------


class AdaptivePacer:
    """VICIdial's ADAPT_HARD_LIMIT / ADAPT_TAPERED / ADAPT_AVERAGE dial methods, as its AST_VDadapt.pl
    (version 2.4) and AST_VDauto_dial.pl compute them; the settings keep VICIdial's campaign field names.

    Every second it samples ready agents, calls waiting for an agent and agents logged in, and places
    ``round(level x (ready + talking agents)) - (calls ringing + waiting + connected)`` calls. Every
    15 s the level becomes ``level x (1 + differential / agents)`` with the differential the 15-sample
    average of ready agents minus waiting calls (plus ``dl_diff_target``), scaled by ``intensity``
    (percent: more intense raises faster and lowers slower), capped at ``maximum_level``, at least 1.
    Every 60 s it reads the drop statistics; once more than 50 calls were placed today and drops exceed
    ``dropped_percentage`` of today's answers, HARD_LIMIT sets the level to 1.0, AVERAGE halves it and
    TAPERED multiplies it by (latest_server_time - now as HHMM) / 1000 when that is under 1000 (1.0
    once past it). More than 50% drops among the last minute's calls (over 20 calls) halves it too.
    "Today" starts at local midnight: ``utc_offset`` seconds shift ``snap.now`` to local time."""

    name = "vicidial"
    MODES = ("ADAPT_HARD_LIMIT", "ADAPT_TAPERED", "ADAPT_AVERAGE")

    def __init__(self, ledger: AbandonLedger, *, mode: str = "ADAPT_HARD_LIMIT", dropped_percentage: float = 3.0,
                 maximum_level: float = 3.0, intensity: float = 0.0, dl_diff_target: float = 0.0,
                 latest_server_time: int = 2100, start_level: float = 1.0, utc_offset: float = 0.0) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.ledger = ledger
        self.mode = mode
        self.dropped_percentage = dropped_percentage
        self.maximum_level = maximum_level
        self.intensity = intensity
        self.dl_diff_target = dl_diff_target
        self.latest_server_time = latest_server_time
        self.utc_offset = utc_offset
        self.level = start_level
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=15)
        self._next_level: float | None = None
        self._next_drops: float | None = None
        self._day: float | None = None
        self._calls_today = 0
        self._recent: deque[tuple[float, int]] = deque()  # (time, calls placed) over the last minute
        # The drop statistics as of the last 60-second update.
        self.calls_today = self.answers_today = self.drops_today = self.calls_one = self.drops_one = 0

    def decide(self, snap: Snapshot) -> int:
        now = snap.now
        local = now + self.utc_offset
        day = local - local % 86400
        if day != self._day:
            self._day, self._calls_today = day, 0
        talking = sum(1 for a in snap.busy if a.phase == "talk")
        self._samples.append((snap.ready, snap.waiting, snap.ready + len(snap.busy)))
        if self._next_drops is None or now >= self._next_drops:
            self._drop_stats(now, day - self.utc_offset)
            self._next_drops = now + 60
        if self._next_level is None:
            self._next_level = now + 15
        elif now >= self._next_level:
            self._adjust(local)
            self._next_level = now + 15
        goal = round(self.level * (snap.ready + talking))
        calls = max(0, goal - (len(snap.dialing) + snap.waiting + talking))
        self._calls_today += calls
        self._recent.append((now, calls))
        return calls

    def _drop_stats(self, now: float, day_start: float) -> None:
        while self._recent and self._recent[0][0] <= now - 60:
            self._recent.popleft()
        self.calls_today = self._calls_today
        self.answers_today, self.drops_today, _ = self.ledger.counts(day_start, now)
        self.calls_one = sum(n for _, n in self._recent)
        self.drops_one = self.ledger.counts(now - 60, now)[1]

    def _adjust(self, local: float) -> None:
        k = len(self._samples)
        ready = sum(s[0] for s in self._samples) / k
        waiting = sum(s[1] for s in self._samples) / k
        agents = sum(s[2] for s in self._samples) / k
        target = ready - waiting + self.dl_diff_target
        pct = target / agents * 100 if target != 0 and agents != 0 else 0.0
        factor = self.intensity / 100
        pct *= abs(factor - 1) if pct < 0 else factor + 1
        level = min(round(self.level * (pct / 100 + 1), 3), self.maximum_level)
        level = max(level, 1.0)
        if self.calls_one > 20 and self.drops_one / self.calls_one * 100 > 50:
            level /= 2
        drop_pct = self.drops_today / max(self.answers_today, 1) * 100 if self.drops_today else 0.0
        if self.calls_today > 50 and drop_pct > self.dropped_percentage:
            if self.mode == "ADAPT_HARD_LIMIT":
                level = 1.0
            elif self.mode == "ADAPT_AVERAGE":
                level /= 2
            else:
                seconds = local % 86400
                hours_left = self.latest_server_time - (int(seconds // 3600) * 100 + int(seconds % 3600 // 60))
                level = 1.0 if hours_left < 0 else level * min(1.0, hours_left / 1000)
        self.level = max(level, 1.0)


# --- ours --------------------------------------------------------------------------------------------

# Checkpoints (seconds from now) where people answering are set against agents getting free; the list
# is cut at the longest time to a person seen, which ends it.
_GRID = (1.0, 3.0, 5.5, 8.0, 11.0, 14.0, 18.0, 23.0, 29.0, 36.0, 45.0, 56.0, 70.0, 90.0)
_INV_SQRT2 = 1 / math.sqrt(2)
_INV_SQRT2PI = 1 / math.sqrt(2 * math.pi)
_WRAP_POINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # wrap-up quantiles standing in for its distribution after a talk
# Keys of the agent table (computed inline in decide()): talking agents by elapsed time (5 s steps to
# 300 s, then 30 s steps), agents in wrap-up by elapsed second, agents whose wrap-up ends in a known
# number of seconds.
_WRAP_KEYS, _LEAVING_KEYS = 1000, 3000


def expected_excess(mean: float, var: float) -> float:
    """E[max(X, 0)] for X ~ Normal(mean, var)."""
    if var < 1e-12:
        return mean if mean > 0 else 0.0
    sd = math.sqrt(var)
    z = mean / sd
    if z < -8:
        return 0.0
    return mean * 0.5 * math.erfc(-z * _INV_SQRT2) + sd * _INV_SQRT2PI * math.exp(-0.5 * z * z)


class PredictivePacer:
    """Ours: forecast the abandons of each candidate number of new calls and place the most the budget
    allows, at least the progressive number; progressive below ``min_agents`` logged-in agents, and
    until the estimates rest on the campaign's own outcomes (100 of them, and two finished talks per
    agent: the first talks to end are the short ones).

    The forecast over the next half-minute or so, for n new calls: A(u), the people answering within
    u seconds: each call in flight by its age a, P(person in (a, a + u]) / P(no outcome by a) from the
    estimated outcome shares and times to outcome (AMD time included), plus the n new calls, plus the
    calls the next seconds will place (the recent rate of calls beyond progressive: they compete for
    the same agents, and a forecast without them is optimistic); F(v), the busy agents free within
    v seconds, from the empirical talk and wrap-up times conditioned on the time already spent. A
    person answering at u is lost if no agent is free by u + 2 s, so the abandons are the running
    maximum of A(u) - F(u + 2) - (ready - waiting) (the loss-system reflection), taken as the largest
    E[max(A(u) - F(u + 2) - ready + waiting, 0)] over a grid of u, each a sum of independent
    Bernoulli counts taken as normal. The people are counted with the human rate plus
    ``answer_rate_z`` standard errors.

    The budget: ``ledger.allowed_rate`` x the expected answers, every window keeping a buffer of
    1 + ``buffer_z`` x sqrt(abandons expected over the ledger's look-ahead) abandons in hand. One
    decision adds at most twice the calls per second a fully busy team needs to the progressive number,
    and the calls in flight stay under ``max_lines_per_agent`` per logged-in agent.

    A window already over the target means the forecasts were wrong (agents slower to take calls than
    their states said, say): the pacer stops betting and brakes as the progressive one does
    (`abandon_brake`), whatever the agents and the estimates, until every window is back within it.
    """

    name = "predictive"

    def __init__(self, estimates: Estimates, ledger: AbandonLedger, *, min_agents: int = 5,
                 patience: float = ABANDON_SECONDS, buffer_z: float = 3.0, answer_rate_z: float = 1.0,
                 overspend: float = 1.0, max_lines_per_agent: float = 8.0, refresh_seconds: float = 120.0,
                 agents_per_call_over_target: int = OVER_TARGET_AGENTS_PER_CALL) -> None:
        if agents_per_call_over_target < 2:
            raise ValueError("over target, each call needs at least 2 free agents behind it")
        self.estimates = estimates
        self.agents_per_call_over_target = agents_per_call_over_target
        self.ledger = ledger
        self.min_agents = min_agents
        self.patience = patience
        self.buffer_z = buffer_z
        self.answer_rate_z = answer_rate_z
        self.overspend = overspend
        self.max_lines_per_agent = max_lines_per_agent
        self.refresh_seconds = refresh_seconds
        self._built_version = -1
        self._built_at = -math.inf
        # Tables of the current estimates (see _refresh): per checkpoint, then filled lazily per key.
        self._grid: tuple[float, ...] = ()
        self._p = (0.0, 0.0, 0.0)  # person, machine, other outcome shares
        self._sorted: dict[str, list[float]] = {}
        self._amd_shift = 0.0
        self._cycle = 1.0  # talk + wrap-up, seconds
        self._age_cap = 0
        self._new: tuple[float, ...] = ()  # one new call: P(person by u_k)..., their variances...
        self._stream_humans: tuple[float, ...] = ()  # one call per second from 1 s on: people by u_k
        self._wrap_points: tuple[float, ...] = ()
        self._calls: dict[int, tuple[float, ...]] = {}  # by age: q_k..., q_k(1 - q_k)..., q_last
        self._agents: dict[int, tuple[float, ...]] = {}  # by agent key: -r_k..., r_k(1 - r_k)..., 0
        # Calls per second placed beyond the progressive number, recently (exponentially weighted).
        self._stream = 0.0
        self._stream_at = -math.inf
        self._last = 0  # the previous decision, where the next search starts
        # What the last decide() saw, for reports and tests.
        self.last_rate = 0.0
        self.last_answers = 0.0
        self.last_abandons = 0.0

    def decision(self, snap: Snapshot) -> Decision:
        brake = abandon_brake(self.ledger, snap.now, self.agents_per_call_over_target)
        if brake is not None:
            calls = brake.calls(snap)
            # Recorded as no calls beyond progressive: the forecast after the brake expects none to follow.
            return Decision(self._placed(snap.now, calls, calls), brake)
        return Decision(self._forecast(snap))

    def decide(self, snap: Snapshot) -> int:
        return self.decision(snap).calls

    def _forecast(self, snap: Snapshot) -> int:
        dialing, busy = snap.dialing, snap.busy
        logged_in = snap.ready + len(busy)
        progressive = _progressive(snap)
        if logged_in < self.min_agents:
            return progressive
        est = self.estimates
        if est.observed < 100 or est.observed_talks < max(30, 2 * logged_in):
            self._built_at = -math.inf  # the first forecast will use everything learnt so far
            return progressive
        self._refresh(snap.now)
        # Calls per second a fully busy team needs: the first forecast assumes that many will follow,
        # and no decision adds more than twice that to the progressive number (a burst of calls all
        # answered within the same few seconds is a bet the next seconds could not correct).
        steady = logged_in / (self._cycle * max(self._p[0], 0.01))
        if self._stream_at == -math.inf:
            self._stream = steady
        recovery = logged_in * self.ledger.look_ahead / self._cycle
        buffer = 1 + self.buffer_z * math.sqrt(self.ledger.target * recovery)
        rate = self.ledger.allowed_rate(snap.now, recovery_answers=recovery, buffer=buffer, overspend=self.overspend)
        self.last_rate = rate
        if rate <= 0:
            return self._placed(snap.now, progressive, progressive)
        # People answering minus agents free, per checkpoint (means, then variances), and the people.
        cap, calls, agents = self._age_cap, self._calls, self._agents
        vectors = [calls.get(k) or self._call_vector(k) for k in [int(a) if a < cap else cap for a in dialing]]
        keys = [(int(a.elapsed * 0.2) if a.elapsed < 300 else min(60 + int((a.elapsed - 300) / 30), 120))
                if a.phase == "talk" else _WRAP_KEYS + min(int(a.elapsed), 900) if a.wrapup_left is None
                else _LEAVING_KEYS + min(math.ceil(a.wrapup_left), 900) for a in busy]
        vectors += [agents.get(k) or self._agent_vector(k) for k in keys]
        m = len(self._grid)
        sums = [sum(col) for col in zip(*vectors, strict=True)] if vectors else [0.0] * (2 * m + 1)
        free_now = snap.ready - snap.waiting
        stream, stream_humans = self._stream, self._stream_humans
        mean0 = [sums[k] + stream * stream_humans[k] - free_now for k in range(m)]
        var0 = [sums[m + k] + stream * stream_humans[k] for k in range(m)]
        # The waiting are counted by the ledger once served or abandoned.
        answers0 = sums[2 * m] + stream * stream_humans[-1] + snap.waiting
        new = self._new
        per_call = new[m - 1]

        def loss(n: int) -> float:
            """Forecast abandons with n new calls."""
            worst = 0.0
            for k in range(m):
                mean, var = mean0[k] + n * new[k], var0[k] + n * new[m + k]
                if var > 1e-12:
                    sd = math.sqrt(var)
                    z = mean / sd
                    if z < -8:
                        continue
                    e = mean * 0.5 * math.erfc(-z * _INV_SQRT2) + sd * _INV_SQRT2PI * math.exp(-0.5 * z * z)
                else:
                    e = mean if mean > 0 else 0.0
                if e > worst:
                    worst = e
            return worst

        lo = progressive
        lo_loss = loss(lo)
        limit = min(lo + math.ceil(2 * steady),
                    max(lo, int(self.max_lines_per_agent * logged_in) - len(dialing) - snap.waiting))
        if lo_loss <= rate * (answers0 + lo * per_call) and limit > lo:
            # The largest n that fits: the forecast is convex in n. Try the last answer first, then
            # gallop up or bisect down.
            hi = limit + 1
            guess = min(max(self._last, lo + 1), limit)
            forecast = loss(guess)
            if forecast <= rate * (answers0 + guess * per_call):
                lo, lo_loss, step = guess, forecast, 1
                while lo + step <= limit:
                    forecast = loss(lo + step)
                    if forecast > rate * (answers0 + (lo + step) * per_call):
                        hi = lo + step
                        break
                    lo, lo_loss, step = lo + step, forecast, step * 2
            else:
                hi = guess
            while hi - lo > 1:
                mid = (lo + hi) // 2
                forecast = loss(mid)
                if forecast <= rate * (answers0 + mid * per_call):
                    lo, lo_loss = mid, forecast
                else:
                    hi = mid
        self.last_answers = answers0 + lo * per_call
        self.last_abandons = lo_loss
        return self._placed(snap.now, lo, progressive)

    def _placed(self, now: float, calls: int, progressive: int) -> int:
        """Remember the decision: the start of the next search, and the rate of calls beyond progressive."""
        gap = min(max(now - self._stream_at, 0.0), 60.0) if self._stream_at > -math.inf else 1.0
        self._stream_at = now
        self._stream += (1 - math.exp(-gap / 30)) * ((calls - progressive) / max(gap, 1.0) - self._stream)
        self._last = calls
        return calls

    # Tables, rebuilt from the estimates at most every refresh_seconds; filled lazily per key.
    def _refresh(self, now: float) -> None:
        est = self.estimates
        if est.version == self._built_version or now - self._built_at < self.refresh_seconds:
            return
        self._built_version, self._built_at = est.version, now
        p_human = est.human_rate_upper(self.answer_rate_z)
        raw = est.human_rate
        scale = (1 - p_human) / (1 - raw) if raw < 1 else 0.0
        p_machine = est.machine_rate * scale
        self._p = (p_human, p_machine, max(0.0, 1 - p_human - p_machine))
        self._sorted = {kind: est.samples(kind) for kind in _SAMPLE_KINDS}
        self._amd_shift = est.mean_amd
        self._cycle = max(est.mean_talk + est.mean_wrapup, 1.0)
        humans = self._sorted["human"]
        longest = humans[-1] + self._amd_shift + 0.5 if humans else 30.0
        self._grid = (*(u for u in _GRID if u < longest), longest)
        rings = [self._sorted[kind][-1] for kind in ("human", "machine", "other") if self._sorted[kind]]
        self._age_cap = int(max(rings, default=60.0) + self._amd_shift) + 1
        q = [p_human * self._cdf("human", u) for u in self._grid]
        self._new = (*q, *(x * (1 - x) for x in q), q[-1])
        # Calls placed one a second from 1 s on: the people among them by each checkpoint.
        steps = [p_human * self._cdf("human", 0.5 * i) for i in range(int(longest * 2) + 2)]
        self._stream_humans = tuple(0.5 * sum(steps[: max(0, int((u - 1) * 2))]) for u in self._grid)
        wraps = self._sorted["wrapup"]
        self._wrap_points = tuple(wraps[min(int(f * len(wraps)), len(wraps) - 1)] for f in _WRAP_POINTS) \
            if wraps else (0.0,)
        self._calls, self._agents = {}, {}

    def _cdf(self, kind: str, x: float) -> float:
        """P(outcome by ``x`` s after placing); a person or machine is "out" at the AMD verdict."""
        values = self._sorted[kind]
        if kind != "other":
            x -= self._amd_shift
        return bisect_right(values, x) / len(values) if values else 0.0

    def _call_vector(self, key: int) -> tuple[float, ...]:
        """A call placed ``key`` (+0.5) seconds ago without outcome yet: P(person by each checkpoint)."""
        age = key + 0.5
        p_human, p_machine, p_other = self._p
        cdf = self._cdf
        unresolved = (p_human * (1 - cdf("human", age)) + p_machine * (1 - cdf("machine", age))
                      + p_other * (1 - cdf("other", age)))
        if unresolved < 1e-6:
            q = [0.0] * len(self._grid)
        else:
            before = cdf("human", age)
            q = [min(1.0, p_human * (cdf("human", age + u) - before) / unresolved) for u in self._grid]
        vector = (*q, *(x * (1 - x) for x in q), q[-1])
        self._calls[key] = vector
        return vector

    def _agent_vector(self, key: int) -> tuple[float, ...]:
        """A busy agent: minus P(free by each checkpoint + patience), the variances, 0 people."""
        if key >= _LEAVING_KEYS:
            r = [1.0 if key - _LEAVING_KEYS <= u + self.patience else 0.0 for u in self._grid]
        elif key >= _WRAP_KEYS:
            r = self._wrap_free(key - _WRAP_KEYS + 0.5)
        else:
            r = self._talk_free(key * 5 + 2.5 if key < 60 else 300 + (key - 60) * 30 + 15)
        vector = (*(-x for x in r), *(x * (1 - x) for x in r), 0.0)
        self._agents[key] = vector
        return vector

    def _conditional(self, values: list[float], elapsed: float) -> tuple[float, int, int]:
        """``elapsed`` moved back so at least 5 samples lie beyond it; the index past it; how many beyond."""
        n = len(values)
        if n - bisect_right(values, elapsed) < 5:
            elapsed = values[max(0, n - 5)] - 1e-9 if n else 0.0
        base = bisect_right(values, elapsed)
        return elapsed, base, max(n - base, 1)

    def _talk_free(self, elapsed: float) -> list[float]:
        """Talking for ``elapsed`` s: P(call over and wrap-up done by each checkpoint + patience)."""
        talks = self._sorted["talk"]
        elapsed, base, beyond = self._conditional(talks, elapsed)
        points = self._wrap_points
        r = []
        for u in self._grid:
            done = 0
            for w in points:
                done += max(0, bisect_right(talks, elapsed + u + self.patience - w) - base)
            r.append(min(1.0, done / (beyond * len(points))))
        return r

    def _wrap_free(self, elapsed: float) -> list[float]:
        """In wrap-up for ``elapsed`` s, end unknown: P(done by each checkpoint + patience)."""
        wraps = self._sorted["wrapup"]
        elapsed, base, beyond = self._conditional(wraps, elapsed)
        return [min(1.0, (bisect_right(wraps, elapsed + u + self.patience) - base) / beyond) for u in self._grid]
