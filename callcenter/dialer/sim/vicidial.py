"""The yardstick the simulator holds our pacer to: VICIdial's adaptive dial methods (`AdaptivePacer`;
model.py's `VicidialSettings` are the campaign settings an admin tunes). Never runs a campaign: the
dialer service paces with pacing.py and predictive.py; docs/dialer-pacing.md has the sources.
"""

from __future__ import annotations

from collections import deque

from callcenter.dialer.pacing import AbandonLedger, Snapshot


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
