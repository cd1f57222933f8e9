"""Our predictive pacer (DIA-2): forecast the abandons of each candidate number of new calls and place the
most the abandon budget allows (the class's docstring has the model; docs/dialer-pacing.md the numbers).
Pure Python, no I/O: pacing.py has the snapshot it reads, the ledger it spends and the brake it obeys.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from callcenter.dialer.estimates import SAMPLE_KINDS, Estimates
from callcenter.dialer.pacing import (
    ABANDON_SECONDS,
    OVER_TARGET_AGENTS_PER_CALL,
    AbandonLedger,
    Decision,
    Snapshot,
    abandon_brake,
    progressive_calls,
)

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
        progressive = progressive_calls(snap)
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
        self._sorted = {kind: est.samples(kind) for kind in SAMPLE_KINDS}
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
