"""When the dialer may call a contact, and what happens to it after an attempt or a wrap-up code.

- A ``CallingWindow`` (default 08:00-21:00, every day) is read in the contact's local time. A
  contact whose number spans several zones is called only while the window is open in *every* one
  of them. Wall-clock times are compared, so on the day clocks change the window still opens at
  08:00 local time; a start inside the skipped hour opens at the change.
- A ``RetryRule`` per outcome of an unanswered attempt (busy, no answer, machine, abandoned,
  failed) gives the delay before the next attempt and the number of attempts *with that outcome*
  after which the contact is closed (as VICIdial counts); pass a total instead to count them all.
- A ``Disposition`` per wrap-up code says what the agent's code does: close the contact, retry it
  after a delay, call back at the time the agent picked, or put the number on the do-not-call list.

Everything takes and returns aware datetimes; nothing here reads the clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TypeAlias
from zoneinfo import ZoneInfo

OUTCOMES = ("busy", "no_answer", "machine", "abandoned", "failed")
# "machine": the agent found an answering machine that AMD had passed as a person; the contact follows
# the machine retry rule and the call stops counting as a person in the abandon windows.
ACTIONS = ("done", "retry", "callback", "dnc", "machine")

#: next_open looks this far ahead before it gives up (zones whose windows never overlap).
HORIZON = timedelta(days=8)

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_DURATION = re.compile(r"([0-9]+)\s*([smhd])")
_DURATION_ALL = re.compile(r"^(?:[0-9]+\s*[smhd]\s*)+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SAMPLE = timedelta(hours=6)  # clock changes are further apart than this

Spans: TypeAlias = list[tuple[datetime, datetime]]  # UTC [begin, end) stretches, in order


def _aware(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got {at.isoformat()}")
    return at.astimezone(UTC)


# -- calling windows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CallingWindow:
    """Open from ``start`` (included) to ``end`` (excluded) local time on ``days`` (Monday = 0)."""

    start: time = time(8, 0)
    end: time = time(21, 0)
    days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a calling window's times are local wall-clock times, without a zone")
        if not self.start < self.end:
            raise ValueError(f"a calling window must start before it ends (got {self.start:%H:%M}-{self.end:%H:%M});"
                             " windows over midnight are not supported")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"a calling window needs days from 0 (Monday) to 6 (Sunday), got {sorted(self.days)}")

    def __str__(self) -> str:
        text = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if self.days == frozenset(range(7)):
            return text
        runs: list[list[int]] = []
        for day in sorted(self.days):
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = (f"{_DAYS[r[0]]}-{_DAYS[r[-1]]}" if len(r) > 2 else ",".join(_DAYS[d] for d in r) for r in runs)
        return f"{text} {','.join(names)}"

    def open_at(self, zones: Sequence[str], at: datetime) -> bool:
        """Whether ``at`` is inside the window in every one of ``zones``."""
        instant = _aware(at, "at")
        return all(self._open_in(ZoneInfo(z), instant) for z in _zones(zones))

    def _open_in(self, zone: ZoneInfo, instant: datetime) -> bool:
        local = instant.astimezone(zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, zones: Sequence[str], at: datetime) -> datetime | None:
        """The earliest instant (aware, UTC) from ``at`` on when the window is open in every zone.

        None when that is more than ``HORIZON`` away (zones whose windows never overlap). Exact to
        the second, clock changes included: each zone's open stretches are worked out in UTC and
        intersected.
        """
        instant = _aware(at, "at")
        names = _zones(zones)
        if all(self._open_in(ZoneInfo(z), instant) for z in names):
            return instant
        until = instant + HORIZON
        common: Spans | None = None
        for name in names:
            spans = self._spans(ZoneInfo(name), instant, until)
            common = spans if common is None else _intersect(common, spans)
        for begin, finish in common or ():
            if finish > instant:
                found = max(begin, instant)
                return found if found <= until else None
        return None

    def _spans(self, zone: ZoneInfo, since: datetime, until: datetime) -> Spans:
        """The UTC stretches between ``since`` and ``until`` when this window is open in ``zone``."""
        pieces = _constant_offsets(zone, since - timedelta(days=2), until + timedelta(days=2))
        found: Spans = []
        day = since.date() - timedelta(days=1)
        while day <= until.date() + timedelta(days=1):
            if day.weekday() in self.days:
                # The local wall-clock times, written as if they were UTC: wall = instant + offset.
                opens = datetime.combine(day, self.start, UTC)
                closes = datetime.combine(day, self.end, UTC)
                for begin, finish, offset in pieces:
                    low, high = max(begin, opens - offset), min(finish, closes - offset)
                    if low < high:
                        found.append((low, high))
            day += timedelta(days=1)
        spans: Spans = []
        for low, high in sorted(found):  # a clock going back over midnight can repeat a day's end
            if spans and low <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(high, spans[-1][1]))
            else:
                spans.append((low, high))
        return spans


def _zones(zones: Sequence[str]) -> Sequence[str]:
    if isinstance(zones, str):
        return (zones,)
    if not zones:
        raise ValueError("a contact without a time zone cannot be checked against a calling window")
    return zones


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _constant_offsets(zone: ZoneInfo, since: datetime, until: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """[since, until) cut at the zone's clock changes: (begin, end, UTC offset) pieces, in order."""
    pieces: list[tuple[datetime, datetime, timedelta]] = []
    begin, offset = since, _offset(zone, since)
    probe = since
    while probe < until:
        step = min(probe + _SAMPLE, until)
        if _offset(zone, step) == offset:
            probe = step
            continue
        low, high = probe, step  # the offset changes in (low, high]: bisect down to a second
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if _offset(zone, middle) == offset:
                low = middle
            else:
                high = middle
        change = low.replace(microsecond=0) + timedelta(seconds=1)  # clocks change on a whole second
        pieces.append((begin, change, offset))
        begin, offset = change, _offset(zone, change)
        probe = change
    pieces.append((begin, until, offset))
    return pieces


def _intersect(a: Spans, b: Spans) -> Spans:
    out: Spans = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low < high:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _clock(text: str, what: str, source: str) -> time:
    found = _TIME.match(text)
    if found is None or int(found[1]) > 23 or int(found[2]) > 59:
        hint = " (use 23:59 for the end of the day)" if text.startswith("24") else ""
        raise ValueError(f"calling window {source!r}: the {what} time {text!r} is not HH:MM{hint}")
    return time(int(found[1]), int(found[2]))


def _day(text: str, source: str) -> int:
    word = text.strip().lower()
    if word in _DAYS:
        return _DAYS.index(word)
    if word in _FULL_DAYS:
        return _FULL_DAYS.index(word)
    raise ValueError(f"calling window {source!r}: {text.strip()!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")


def parse_window(text: str) -> CallingWindow:
    """``"08:00-21:00"``, optionally followed by days: ``"09:00-18:00 mon-fri"``, ``"10:00-14:00 sat,sun"``.

    Day ranges may wrap (``fri-mon``). The end is excluded; windows over midnight are not supported.
    """
    found = re.match(r"^\s*([0-9:]+)\s*-\s*([0-9:]+)\s*(.*)$", text.replace("\u2013", "-"))
    if found is None:
        raise ValueError(f"calling window {text!r}: write it like 08:00-21:00 or 09:00-18:00 mon-fri")
    start, end = _clock(found[1], "start", text), _clock(found[2], "end", text)
    if not start < end:
        raise ValueError(f"calling window {text!r}: it must start before it ends; windows over midnight"
                         " are not supported")
    days: set[int] = set()
    for item in re.sub(r"\s*-\s*", "-", found[3]).replace(",", " ").split():
        if "-" in item:
            low, _, high = item.partition("-")
            first, last = _day(low, text), _day(high, text)
            days.update((first + k) % 7 for k in range((last - first) % 7 + 1))
        else:
            days.add(_day(item, text))
    return CallingWindow(start, end, frozenset(days) if days else frozenset(range(7)))


# -- retries -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryRule:
    """``delay`` seconds before the next attempt; closed after ``max_attempts`` attempts (0: never retried)."""

    delay: int
    max_attempts: int

    def __str__(self) -> str:
        return f"{format_duration(self.delay)} x{self.max_attempts}"


DEFAULT_RETRIES: dict[str, RetryRule] = {
    "busy": RetryRule(5 * 60, 5),
    "no_answer": RetryRule(60 * 60, 4),
    "machine": RetryRule(4 * 60 * 60, 3),
    "abandoned": RetryRule(60 * 60, 3),
    "failed": RetryRule(30 * 60, 3),
}


def parse_duration(value: object) -> int:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` or ``"1h30m"``; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        if _DURATION_ALL.match(text):
            return sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    raise ValueError(f"duration {value!r} is not like 90s, 5m, 2h, 1d or a number of seconds")


def format_duration(seconds: int) -> str:
    """The shortest of ``1d``, ``2h``, ``5m``, ``90s`` that is exact."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def _count(value: object, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}: the number of attempts {value!r} must be a whole number, 0 or more")
    return value


def _retry_rule(outcome: str, value: object, default: RetryRule) -> RetryRule:
    where = f"retries.{outcome}"
    if isinstance(value, RetryRule):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "never":
            return RetryRule(0, 0)
        found = re.match(r"^(.+?)\s*x\s*([0-9]+)$", text)
        if found is None:
            raise ValueError(f"{where}: {value!r} is not like \"5m x5\" (delay, then x and the most attempts)")
        try:
            return RetryRule(parse_duration(found[1]), int(found[2]))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in ("delay", "max"))
        if unknown:
            raise ValueError(f"{where}: unknown key {', '.join(unknown)} (only delay and max)")
        try:
            delay = parse_duration(value["delay"]) if "delay" in value else default.delay
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        attempts = _count(value["max"], where) if "max" in value else default.max_attempts
        return RetryRule(delay, attempts)
    raise ValueError(f"{where}: {value!r} is not like \"5m x5\" or {{delay = \"5m\", max = 5}}")


def parse_retries(table: Mapping[str, object]) -> dict[str, RetryRule]:
    """The retry rules: ``DEFAULT_RETRIES`` with the outcomes the table names replaced.

    Each value is ``"5m x5"`` (delay, most attempts), ``"never"``, or ``{delay = "1h", max = 4}``
    (either key may be left out and keeps its default).
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"retries must be a table of outcome = rule, got {table!r}")
    unknown = [k for k in table if k not in OUTCOMES]
    if unknown:
        raise ValueError(f"retries: unknown outcome {', '.join(repr(k) for k in unknown)}; "
                         f"the outcomes are {', '.join(OUTCOMES)}")
    rules = dict(DEFAULT_RETRIES)
    for outcome, value in table.items():
        rules[outcome] = _retry_rule(outcome, value, DEFAULT_RETRIES[outcome])
    return rules


# -- what comes next ---------------------------------------------------------------------------

@dataclass(frozen=True)
class NextStep:
    """``pending`` (call again, not before ``not_before``), ``done``, ``failed`` (attempts used up) or ``dnc``."""

    status: str
    not_before: datetime | None
    reason: str


def after_attempt(outcome: str, attempts: Mapping[str, int] | int, rules: Mapping[str, RetryRule],
                  now: datetime) -> NextStep:
    """What follows an unanswered attempt.

    ``attempts`` is either the count of the contact's attempts per outcome, this one included
    (``{"busy": 2, "no_answer": 1}``): ``max_attempts`` then limits the attempts with *this*
    outcome, as VICIdial does; or one total, which ``max_attempts`` then limits. This attempt is
    always counted, even when the caller has not added it yet.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; the outcomes are {', '.join(OUTCOMES)}")
    moment = _aware(now, "now")
    rule = rules.get(outcome, DEFAULT_RETRIES[outcome])
    made = max(1, attempts if isinstance(attempts, int) else attempts.get(outcome, 0))
    label = outcome.replace("_", " ")
    if rule.max_attempts == 0:
        return NextStep("failed", None, f"{label} is never retried")
    kind = "attempts" if isinstance(attempts, int) else f"{label} attempts"
    if made >= rule.max_attempts:
        return NextStep("failed", None, f"{label} ({made} of {rule.max_attempts} {kind}), no attempts left")
    return NextStep("pending", moment + timedelta(seconds=rule.delay),
                    f"{label} ({made} of {rule.max_attempts} {kind}), again in {format_duration(rule.delay)}")


@dataclass(frozen=True)
class Disposition:
    """What a wrap-up code does: ``done``, ``retry`` (after ``delay`` seconds), ``callback``, ``dnc`` or
    ``machine`` (retried by the machine rule)."""

    action: str
    delay: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; the actions are {', '.join(ACTIONS)}")
        if self.delay < 0:
            raise ValueError(f"a disposition's delay must be 0 or more, got {self.delay}")

    def __str__(self) -> str:
        return f"retry {format_duration(self.delay)}" if self.action == "retry" else self.action


def _disposition(code: str, value: object) -> Disposition:
    where = f"dispositions.{code}"
    if not isinstance(value, str):
        raise ValueError(f"{where}: {value!r} must be text: done, retry <delay>, callback, dnc or machine")
    words = value.strip().lower().split()
    if words in (["done"], ["callback"], ["dnc"], ["machine"]):
        return Disposition(words[0])
    if words == ["retry"]:
        raise ValueError(f"{where}: retry needs a delay, like \"retry 2h\"")
    if len(words) >= 2 and words[0] == "retry":
        try:
            return Disposition("retry", parse_duration("".join(words[1:])))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    raise ValueError(f"{where}: {value!r} is not one of done, retry <delay>, callback, dnc, machine")


def parse_dispositions(table: Mapping[str, str]) -> dict[str, Disposition]:
    """Wrap-up codes from config: ``{sale = "done", call_later = "retry 2h", callback = "callback",
    remove_me = "dnc"}``."""
    if not isinstance(table, Mapping):
        raise ValueError(f"dispositions must be a table of wrap-up code = action, got {table!r}")
    codes: dict[str, Disposition] = {}
    for code, value in table.items():
        if not str(code).strip():
            raise ValueError("dispositions: a wrap-up code has an empty name")
        codes[str(code).strip()] = _disposition(code, value)
    return codes


def after_disposition(code: str, dispositions: Mapping[str, Disposition], now: datetime,
                      callback_at: datetime | None) -> NextStep:
    """What follows an agent's wrap-up code.

    A ``callback`` needs ``callback_at`` (the agent's pick; whether it is for that agent or anyone
    is the caller's to keep) and still waits for the calling window; ``callback_at`` is ignored for
    the other actions.
    """
    moment = _aware(now, "now")
    disposition = dispositions.get(code)
    if disposition is None:
        raise ValueError(f"unknown wrap-up code {code!r}; the codes are {', '.join(dispositions) or '(none)'}")
    if disposition.action == "done":
        return NextStep("done", None, f"{code}: done")
    if disposition.action == "dnc":
        return NextStep("dnc", None, f"{code}: put on the do-not-call list")
    if disposition.action == "machine":
        raise ValueError(f"wrap-up code {code!r} says answering machine: use after_attempt('machine', ...)")
    if disposition.action == "callback":
        if callback_at is None:
            raise ValueError(f"wrap-up code {code!r} is a callback: the agent must pick a time")
        at = _aware(callback_at, "callback_at")
        return NextStep("pending", at, f"{code}: call back at {at:%Y-%m-%d %H:%M} UTC")
    return NextStep("pending", moment + timedelta(seconds=disposition.delay),
                    f"{code}: again in {format_duration(disposition.delay)}")
