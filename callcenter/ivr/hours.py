"""Weekly business hours in a time zone: `mon-fri: "08:00-18:00"`, `sat: "09:00-12:00, 13:00-15:00"`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class HoursError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def _days(key: str) -> list[int]:
    parts = [p.strip().lower() for p in key.split(",")]
    days: list[int] = []
    for part in parts:
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise HoursError(key, f"{key!r}: days are mon..sun, a range like mon-fri, or a list")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise HoursError(key, f"{key!r}: a day range runs forwards (mon-fri)")
        days.extend(range(start, end + 1))
    return days


def _ranges(key: str, value: object) -> list[tuple[time, time]]:
    text = str(value).strip()
    if text.lower() in ("closed", ""):
        return []
    ranges: list[tuple[time, time]] = []
    for chunk in text.split(","):
        match = _RANGE.match(chunk.strip())
        if not match:
            raise HoursError(key, f"{key}: {chunk.strip()!r} is not a time range like 08:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise HoursError(key, f"{key}: {chunk.strip()!r} has an impossible time")
        start, end = time(h1, m1), time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise HoursError(key, f"{key}: {chunk.strip()!r} ends before it starts")
        ranges.append((start, end))
    return ranges


@dataclass(frozen=True)
class WeeklyHours:
    zone: str
    week: tuple[tuple[tuple[time, time], ...], ...]  # index 0 = Monday

    @classmethod
    def parse(cls, weekly: Mapping[str, object], zone: str) -> WeeklyHours:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise HoursError("timezone", f"unknown time zone {zone!r}") from None
        week: list[list[tuple[time, time]]] = [[] for _ in DAYS]
        for key, value in weekly.items():
            for day in _days(str(key)):
                week[day].extend(_ranges(str(key), value))
        return cls(zone, tuple(tuple(sorted(day)) for day in week))

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.zone))
        moment = local.time()
        return any(start <= moment < end for start, end in self.week[local.weekday()])
