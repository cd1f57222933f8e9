"""What the dialer learns of a campaign as it calls (DIA-2): `Estimates` of the outcome shares and of
the time to each outcome, the answering-machine detector's analysis time, talk and wrap-up times, from
the campaign's own calls, starting from a `Prior`. The dialer service feeds them (docs/dialer-pacing.md
has the calls) and the predictive pacer (predictive.py) forecasts with them. Pure Python, no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import NormalDist

OUTCOMES = ("human", "machine", "busy", "no_answer", "failed")
# What `Estimates.samples` holds: times to a person, to a machine, to any other outcome; talks, wrap-ups.
SAMPLE_KINDS = ("human", "machine", "other", "talk", "wrapup")
_RING_KIND = {"human": "human", "machine": "machine", "busy": "other", "no_answer": "other", "failed": "other"}


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
