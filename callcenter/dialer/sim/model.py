"""The pacing simulator: the real pacers (pacing.py, predictive.py) and the VICIdial-style yardstick
(vicidial.py) against a discrete-event model of a campaign.

N agents work a shift of ``hours`` (from 09:00) on each of ``days`` days; simulated time runs from
midnight of the first day, so the 24-hour window sees whole days and the run fits in the 30-day window.
Every second of the shift the pacer is asked for a number of calls and they are placed. A call rings,
then: busy or failed after a few seconds, no answer at the ring timeout, or answered by a person or a
machine after a time drawn from the population's distributions. An answered call goes through AMD:
a machine is hung up (unless AMD takes it for a person: a false negative, which an agent gets and drops
after a few seconds), a person is passed on (unless AMD takes them for a machine: a false positive,
hung up). A person passed on needs an agent within 2 s of the verdict, or the call is abandoned; a
connected call talks, the agent wraps up and is ready again. Times are lognormal by mean and sd.

The model feeds `Estimates` and `AbandonLedger` as the dialer service does (placement.py): the outcome
and ring time when known, the AMD time, talk and wrap-up times as they end; ``human_answered`` with the
verdict time once a person is connected, ``abandoned`` once they are not, ``machine_answered`` when an
agent drops a machine the AMD let through. The reported figures are the model's truth: people only (a
machine let through is agent time, not a contact), with the UK window counting the estimated AMD false
positives as the rule does. Deterministic for a seed: calls draw from one random stream in the order
they are placed, agents from another, so the pacers of one comparison meet the same contacts.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from callcenter.dialer.estimates import Estimates
from callcenter.dialer.pacing import (
    ABANDON_SECONDS,
    UK_24_HOURS,
    US_30_DAYS,
    AbandonLedger,
    BusyAgent,
    ProgressivePacer,
    Snapshot,
)
from callcenter.dialer.predictive import PredictivePacer
from callcenter.dialer.sim.vicidial import AdaptivePacer

PACERS = ("progressive", "vicidial", "predictive")
SHIFT_START = 9 * 3600.0  # the shift starts at 09:00 each day


class Pacer(Protocol):
    """What the simulator drives: ours (`ProgressivePacer`, `PredictivePacer`) and the yardstick."""

    name: str

    def decide(self, snap: Snapshot) -> int:
        """How many new calls to place now (>= 0)."""
        ...


@dataclass(frozen=True)
class Dist:
    """A lognormal duration in seconds, by its mean and standard deviation."""

    mean: float
    sd: float
    mu: float = field(init=False, repr=False, compare=False)
    sigma: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mean <= 0 or self.sd < 0:
            raise ValueError(f"a duration needs mean > 0 and sd >= 0, got {self.mean}, {self.sd}")
        sigma = math.sqrt(math.log1p((self.sd / self.mean) ** 2))
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "mu", math.log(self.mean) - sigma * sigma / 2)

    def at(self, z: float) -> float:
        """The duration for a standard normal draw ``z``."""
        return math.exp(self.mu + self.sigma * z)


@dataclass(frozen=True)
class VicidialSettings:
    """The VICIdial-style pacer's campaign settings (VICIdial's own defaults here); its dropped
    percentage is the target and its latest server time the end of the shift."""

    mode: str = "ADAPT_HARD_LIMIT"
    maximum_level: float = 3.0
    intensity: float = 0.0
    dl_diff_target: float = 0.0


@dataclass(frozen=True)
class Population:
    """Who the campaign calls: outcome shares of a placed call (the rest rings out unanswered), how
    long each takes, how long people talk and agents wrap up, and how the AMD behaves."""

    name: str
    human: float  # a person answers
    machine: float  # an answering machine answers
    busy: float = 0.06
    failed: float = 0.02
    human_answer: Dist = Dist(9.0, 4.0)  # placed -> a person answers
    machine_answer: Dist = Dist(14.0, 5.0)
    busy_time: Dist = Dist(5.0, 1.5)
    failed_time: Dist = Dist(2.0, 0.5)
    talk: Dist = Dist(120.0, 90.0)
    wrapup: Dist = Dist(20.0, 10.0)
    amd_time: Dist = Dist(2.5, 0.8)  # answer -> AMD verdict
    amd_false_positive: float = 0.01  # share of people AMD takes for a machine (hung up on)
    amd_false_negative: float = 0.10  # share of machines AMD passes on as a person
    machine_talk: Dist = Dist(8.0, 4.0)  # an agent's time on a machine AMD let through
    machine_wrapup: Dist = Dist(4.0, 2.0)
    ring_timeout: float = 25.0
    # What a VICIdial admin settles on for this list: the setting of tune_vicidial() with the most talk
    # time among those whose campaign drop rate stays within the target (bench/dialer.py --tune-vicidial).
    vicidial: VicidialSettings = VicidialSettings()

    def __post_init__(self) -> None:
        if self.ring_timeout < 15:
            raise ValueError("ring_timeout must be at least 15 s")
        if min(self.human, self.machine, self.busy, self.failed) < 0 or self.no_answer < 0:
            raise ValueError(f"population {self.name}: outcome shares must be >= 0 and add up to at most 1")

    @property
    def no_answer(self) -> float:
        return 1.0 - self.human - self.machine - self.busy - self.failed

    @property
    def false_positive_share(self) -> float:
        """Share of AMD "machine" verdicts that are people: the estimate the UK window counts."""
        people = self.human * self.amd_false_positive
        machines = self.machine * (1 - self.amd_false_negative)
        return people / (people + machines) if people + machines > 0 else 0.0


POPULATIONS: dict[str, Population] = {p.name: p for p in (
    # Consumers at home: a quarter answer, answering machines common, short sales calls.
    Population("b2c", human=0.27, machine=0.15, busy=0.07, failed=0.03,
               talk=Dist(110.0, 90.0), wrapup=Dist(20.0, 10.0),
               vicidial=VicidialSettings(maximum_level=1.1, intensity=-20.0)),
    # Businesses in office hours: switchboards answer, longer conversations and notes.
    Population("b2b", human=0.45, machine=0.08, busy=0.05, failed=0.02, human_answer=Dist(8.0, 3.5),
               talk=Dist(200.0, 150.0), wrapup=Dist(35.0, 15.0),
               vicidial=VicidialSettings(maximum_level=1.0, intensity=-20.0)),
    # An old, worked list: few people, many machines and dead numbers, short calls.
    Population("lowcontact", human=0.12, machine=0.30, busy=0.06, failed=0.08, human_answer=Dist(11.0, 5.0),
               talk=Dist(75.0, 60.0), wrapup=Dist(15.0, 8.0), amd_false_negative=0.12,
               vicidial=VicidialSettings(maximum_level=1.75, intensity=-20.0)),
)}


@dataclass(frozen=True)
class RunResult:
    """One run; the JSON field names of ``callcenter dialer simulate --json`` (docs/dialer-pacing.md)."""

    pacer: str
    agents: int
    population: str
    days: int
    hours: float
    talk_min_per_agent_hour: float  # minutes talking to people per logged-in agent hour
    occupancy: float  # share of logged-in time on calls (people or machines) or wrap-up
    calls_placed: int
    connects: int  # people connected to an agent
    human_answered: int  # people passed by AMD (connected or abandoned)
    abandoned: int
    abandon_rate: float  # abandoned / human_answered, the whole run
    worst_24h: float  # worst rolling 24-hour window, UK count (estimated AMD false positives included)
    worst_30d: float  # worst 30-day window (the run so far), US count
    worst_hour: float  # worst rolling hour, US count (for information)
    amd_machines: int  # machines AMD hung up on
    amd_false_positives: int  # people AMD hung up on
    amd_false_negatives: int  # machines AMD passed to an agent (or abandoned)
    unanswered: int  # busy, failed or no answer

    @property
    def worst_window(self) -> float:
        return max(self.worst_24h, self.worst_30d)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_pacer(name: str, estimates: Estimates, ledger: AbandonLedger,
               vicidial: VicidialSettings | None = None, shift_end: float = 17 * 3600.0) -> Pacer:
    if name == "progressive":
        return ProgressivePacer(ledger)
    if name == "vicidial":
        v = vicidial or VicidialSettings()
        hhmm = int(shift_end // 3600) * 100 + int(shift_end % 3600 // 60)
        return AdaptivePacer(ledger, mode=v.mode, dropped_percentage=ledger.target * 100,
                             maximum_level=v.maximum_level, intensity=v.intensity, dl_diff_target=v.dl_diff_target,
                             latest_server_time=hhmm)
    if name == "predictive":
        return PredictivePacer(estimates, ledger)
    raise ValueError(f"pacer must be one of {', '.join(PACERS)}, got {name!r}")


_new_busy = BusyAgent.__new__
_set_phase, _set_elapsed, _set_left = (vars(BusyAgent)[name].__set__ for name in ("phase", "elapsed", "wrapup_left"))


def busy_agent(phase: str, elapsed: float) -> BusyAgent:
    """``BusyAgent(phase, elapsed)`` with its slots set directly: the simulator builds a hundred of
    them a second and the dataclass ``__init__`` of a frozen class costs twice as much (a test checks
    that both give the same object)."""
    agent = _new_busy(BusyAgent)
    _set_phase(agent, phase)
    _set_elapsed(agent, elapsed)
    _set_left(agent, None)
    return agent


# Call kinds, decided when a call is placed.
_PERSON, _FALSE_POSITIVE, _MACHINE, _FALSE_NEGATIVE, _BUSY, _FAILED, _NO_ANSWER = range(7)
_UNANSWERED = {_BUSY: "busy", _FAILED: "failed", _NO_ANSWER: "no_answer"}
# Events.
_RESOLVED, _DEADLINE, _TALK_END, _WRAP_END = range(4)
_READY, _TALK, _WRAP = 0, 1, 2
_PHASES = ("", "talk", "wrapup")


def simulate(pacer: str | Callable[[Estimates, AbandonLedger], Pacer], agents: int, population: Population, *,
             days: int = 3, hours: float = 6.0, seed: int = 1, target: float = 0.03,
             vicidial: VicidialSettings | None = None, decide_times: list[float] | None = None) -> RunResult:
    """One run of a pacer by name (``PACERS``), or of the pacer a function makes from the run's
    estimates and ledger. The VICIdial-style pacer runs with ``vicidial``, else the population's
    settings. ``decide_times``, when given, collects the seconds each ``decide()`` took."""
    if agents < 1 or days < 1 or not 0 < hours <= 15:
        raise ValueError("need at least one agent and one day, and a shift of up to 15 hours")
    pop = population
    calls_rng = random.Random(f"{seed}/{agents}/{pop.name}/calls")
    agents_rng = random.Random(f"{seed}/{agents}/{pop.name}/agents")
    gauss, uniform, agent_gauss = calls_rng.gauss, calls_rng.random, agents_rng.gauss
    estimates = Estimates()
    ledger = AbandonLedger(target, (US_30_DAYS, UK_24_HOURS), pop.false_positive_share)
    if isinstance(pacer, str):
        brain = make_pacer(pacer, estimates, ledger, vicidial or pop.vicidial, SHIFT_START + hours * 3600)
    else:
        brain = pacer(estimates, ledger)
    decide = brain.decide

    heap: list[tuple[float, int, int, int]] = []
    push, pop_event = heapq.heappush, heapq.heappop
    seq = 0
    calls: dict[int, tuple[float, int, float]] = {}  # id -> placed, kind, answered
    ringing: dict[int, float] = {}  # id -> placed, until the outcome is known
    waiting: deque[int] = deque()
    waiting_since: dict[int, float] = {}  # id -> verdict time, while waiting for an agent
    state = [_READY] * agents
    since = [0.0] * agents
    serving = [_PERSON] * agents
    verdict_of = [0.0] * agents
    ready = list(range(agents))
    cut = [0.0, 0.0]  # shift being counted: start, end
    talk_seconds = busy_seconds = 0.0
    placed = connects = abandoned_count = machines = false_positives = false_negatives = unanswered = 0
    answered_at: list[float] = []
    abandoned_at: list[float] = []
    machine_at: list[float] = []

    h_edge = pop.human
    m_edge = h_edge + pop.machine
    b_edge = m_edge + pop.busy
    f_edge = b_edge + pop.failed
    latest = pop.ring_timeout - 0.5

    def within(a: float, b: float) -> float:
        return max(0.0, min(b, cut[1]) - max(a, cut[0]))

    def connect(agent: int, call: int, verdict: float, now: float) -> None:
        nonlocal seq, connects, talk_seconds, busy_seconds
        ledger.human_answered(verdict)
        kind = calls.pop(call)[1]
        state[agent], since[agent], serving[agent], verdict_of[agent] = _TALK, now, kind, verdict
        length = (pop.talk if kind == _PERSON else pop.machine_talk).at(agent_gauss())
        seq += 1
        push(heap, (now + length, seq, _TALK_END, agent))
        spent = within(now, now + length)
        busy_seconds += spent
        if kind == _PERSON:
            connects += 1
            talk_seconds += spent

    def handle(t: float, event: int, who: int) -> None:
        nonlocal seq, busy_seconds, machines, false_positives, false_negatives, abandoned_count, unanswered
        if event == _RESOLVED:
            placed_at, kind, answered = calls[who]
            del ringing[who]
            if kind in _UNANSWERED:
                del calls[who]
                unanswered += 1
                estimates.call_result(_UNANSWERED[kind], t - placed_at)
            elif kind in (_MACHINE, _FALSE_POSITIVE):
                del calls[who]
                estimates.call_result("machine", answered - placed_at)
                estimates.amd(t - answered)
                ledger.machine_detected(t)
                machine_at.append(t)
                if kind == _MACHINE:
                    machines += 1
                else:
                    false_positives += 1
            else:
                estimates.call_result("human", answered - placed_at)
                estimates.amd(t - answered)
                if kind == _PERSON:
                    answered_at.append(t)
                else:
                    false_negatives += 1
                if ready:
                    connect(ready.pop(), who, t, t)
                else:
                    waiting.append(who)
                    waiting_since[who] = t
                    seq += 1
                    push(heap, (t + ABANDON_SECONDS, seq, _DEADLINE, who))
        elif event == _DEADLINE:
            verdict = waiting_since.pop(who, None)
            if verdict is not None:
                ledger.abandoned(verdict)
                if calls.pop(who)[1] == _PERSON:
                    abandoned_at.append(verdict)
                    abandoned_count += 1
        elif event == _TALK_END:
            estimates.talk(t - since[who])
            if serving[who] == _FALSE_NEGATIVE:
                ledger.machine_answered(verdict_of[who])
            length = (pop.wrapup if serving[who] == _PERSON else pop.machine_wrapup).at(agent_gauss())
            state[who], since[who] = _WRAP, t
            seq += 1
            push(heap, (t + length, seq, _WRAP_END, who))
            busy_seconds += within(t, t + length)
        else:  # _WRAP_END
            estimates.wrapup(t - since[who])
            state[who] = _READY
            while waiting:
                call = waiting.popleft()
                verdict = waiting_since.pop(call, None)
                if verdict is not None:
                    connect(who, call, verdict, t)
                    return
            ready.append(who)

    def place(now: float) -> None:
        nonlocal seq, placed
        r, coin, z, z_amd = uniform(), uniform(), gauss(0.0, 1.0), gauss(0.0, 1.0)
        if r < m_edge:
            person = r < h_edge
            answered = now + min((pop.human_answer if person else pop.machine_answer).at(z), latest)
            resolved = answered + pop.amd_time.at(z_amd)
            if person:
                kind = _FALSE_POSITIVE if coin < pop.amd_false_positive else _PERSON
            else:
                kind = _FALSE_NEGATIVE if coin < pop.amd_false_negative else _MACHINE
        else:
            answered = 0.0
            if r < b_edge:
                kind, resolved = _BUSY, now + pop.busy_time.at(z)
            elif r < f_edge:
                kind, resolved = _FAILED, now + pop.failed_time.at(z)
            else:
                kind, resolved = _NO_ANSWER, now + pop.ring_timeout
        placed += 1
        seq += 1
        calls[seq] = (now, kind, answered)
        ringing[seq] = now
        push(heap, (resolved, seq, _RESOLVED, seq))

    clock = time.perf_counter
    for day in range(days):
        start = day * 86400.0 + SHIFT_START
        end = start + hours * 3600
        cut[0], cut[1] = start, end
        tick = start
        while tick < end:
            while heap and heap[0][0] <= tick:
                t, _, event, who = pop_event(heap)
                handle(t, event, who)
            busy = tuple([busy_agent(_PHASES[s], tick - since[i]) for i, s in enumerate(state) if s])
            snap = Snapshot(tick, len(ready), busy, tuple([tick - p for p in ringing.values()]), len(waiting_since))
            if decide_times is None:
                wanted = decide(snap)
            else:
                began = clock()
                wanted = decide(snap)
                decide_times.append(clock() - began)
            for _ in range(wanted):
                place(tick)
            tick += 1.0
        while heap:  # the shift is over: calls in flight end, agents finish
            t, _, event, who = pop_event(heap)
            handle(t, event, who)

    floor = math.ceil(1 / target)
    share = pop.false_positive_share
    logged_hours = agents * hours * days
    return RunResult(
        pacer=brain.name, agents=agents, population=pop.name, days=days, hours=hours,
        talk_min_per_agent_hour=round(talk_seconds / 60 / logged_hours, 3),
        occupancy=round(busy_seconds / (logged_hours * 3600), 4),
        calls_placed=placed, connects=connects, human_answered=len(answered_at), abandoned=abandoned_count,
        abandon_rate=round(abandoned_count / len(answered_at), 5) if answered_at else 0.0,
        worst_24h=round(worst_window(answered_at, abandoned_at, machine_at, 86400.0, share, floor, end), 5),
        worst_30d=round(worst_window(answered_at, abandoned_at, [], 30 * 86400.0, 0.0, floor, end), 5),
        worst_hour=round(worst_window(answered_at, abandoned_at, [], 3600.0, 0.0, floor, end), 5),
        amd_machines=machines, amd_false_positives=false_positives, amd_false_negatives=false_negatives,
        unanswered=unanswered)


def worst_window(answered: Sequence[float], abandoned: Sequence[float], machines: Sequence[float], seconds: float,
                 false_positive_share: float, min_answers: int, until: float = math.inf) -> float:
    """The highest abandon rate of any window (t - seconds, t] for t up to ``until``: (abandoned +
    estimated false positives) / (answered + estimated false positives), with false_positive_share x
    machine verdicts estimated. ``answered`` includes the abandoned. Windows with fewer than
    ``min_answers`` answers are not scored: there one abandoned call is over the target by itself.
    Windows ending after ``until`` (the end of the run) are not scored either: the campaign goes on."""
    events: list[tuple[float, int, int]] = []  # time, 0 = leaves / 1 = enters, kind
    for kind, times in enumerate((answered, abandoned, machines)):
        for t in times:
            events.append((t, 1, kind))
            events.append((t + seconds, 0, kind))
    events.sort()
    events.append((math.inf, 0, 0))
    counts = [0, 0, 0]
    worst = 0.0
    for i, (t, enters, kind) in enumerate(events[:-1]):
        if t > until:
            break
        counts[kind] += 1 if enters else -1
        if events[i + 1][0] > t and counts[0] >= min_answers:  # every event of this instant is in
            fp = false_positive_share * counts[2]
            rate = (counts[1] + fp) / (counts[0] + fp)
            if rate > worst:
                worst = rate
    return worst


def _run(job: tuple[str, int, Population, int, float, int, float, VicidialSettings | None]) -> RunResult:
    pacer, agents, population, days, hours, seed, target, vicidial = job
    return simulate(pacer, agents, population, days=days, hours=hours, seed=seed, target=target, vicidial=vicidial)


def compare(agents_list: Iterable[int] = (5, 20, 100), populations: Iterable[Population] | None = None,
            days: int = 3, hours: float = 6.0, seed: int = 1, *, target: float = 0.03,
            pacers: Sequence[str] = PACERS, vicidial: VicidialSettings | None = None,
            workers: int | None = None) -> list[RunResult]:
    """Every pacer on every agent count and population, ordered population, agents, pacer. Runs in
    ``workers`` processes (default: one per CPU); the results do not depend on it."""
    pops = list(populations) if populations is not None else list(POPULATIONS.values())
    jobs = [(pacer, agents, pop, days, hours, seed, target, vicidial)
            for pop in pops for agents in agents_list for pacer in pacers]
    # The longest runs first, so the processes finish together.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1] / max(jobs[i][2].human, 0.05))
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) == 1:
        done = [_run(jobs[i]) for i in order]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            done = list(pool.map(_run, [jobs[i] for i in order]))
    results: list[RunResult | None] = [None] * len(jobs)
    for i, result in zip(order, done, strict=True):
        results[i] = result
    return [r for r in results if r is not None]


# The settings a VICIdial admin would try: the adaptive methods that brake on the day's drop rate, the
# maximum level (VICIdial's default 3.0 and below), less intense or balanced adjustments.
VICIDIAL_GRID = tuple(VicidialSettings(mode, level, intensity) for mode in ("ADAPT_HARD_LIMIT", "ADAPT_TAPERED")
                      for level in (1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0) for intensity in (-20.0, 0.0))


def _run_vicidial(job: tuple[int, Population, int, float, int, float, VicidialSettings]) -> RunResult:
    agents, population, days, hours, seed, target, settings = job
    return simulate("vicidial", agents, population, days=days, hours=hours, seed=seed, target=target,
                    vicidial=settings)


def tune_vicidial(population: Population, agents: int = 20, days: int = 3, hours: float = 6.0, seed: int = 2, *,
                  target: float = 0.03, grid: Sequence[VicidialSettings] = VICIDIAL_GRID,
                  workers: int | None = None) -> tuple[VicidialSettings, list[tuple[VicidialSettings, RunResult]]]:
    """The VICIdial-style pacer with every setting of ``grid``: the one with the most talk time among
    those that keep every window within ``target`` (the rule ours is held to; VICIdial's own drop rate
    over the run is not enough: its brake acts after the fact, so single windows go over), and every run.
    Level 1.0 (progressive) is always legal. Tune on another seed than the comparison's: an admin tunes
    on past days, not on the day judged."""
    jobs = [(agents, population, days, hours, seed, target, settings) for settings in grid]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        results = [_run_vicidial(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            results = list(pool.map(_run_vicidial, jobs))
    runs = list(zip(grid, results, strict=True))
    legal = [run for run in runs if run[1].worst_window <= target]
    best = max(legal, key=lambda run: run[1].talk_min_per_agent_hour) if legal else \
        min(runs, key=lambda run: run[1].abandon_rate)
    return best[0], runs


COLUMNS = (
    ("population", "population", "{}"), ("agents", "agents", "{}"), ("pacer", "pacer", "{}"),
    ("talk min/agent h", "talk_min_per_agent_hour", "{:.1f}"), ("occupancy", "occupancy", "{:.1%}"),
    ("calls", "calls_placed", "{}"), ("connects", "connects", "{}"), ("abandon", "abandon_rate", "{:.2%}"),
    ("worst 24h", "worst_24h", "{:.2%}"), ("worst 30d", "worst_30d", "{:.2%}"), ("worst hour", "worst_hour", "{:.2%}"),
)


def table(rows: Sequence[RunResult]) -> str:
    """The results as aligned text columns."""
    cells = [[title for title, _, _ in COLUMNS]]
    cells += [[fmt.format(getattr(r, key)) for _, key, fmt in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for c in cells:
        padded = (v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True)))
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)
