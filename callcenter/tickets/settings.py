"""The tickets feature's settings: the ``[tickets]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class TicketsSettings:
    # The close target of the report's "close SLA breaches": a call ticket closed later than this many hours
    # after it was made breaches it (docs/tickets.md).
    close_target_hours: float = opt(24.0, lo=0.1, hi=24 * 365)
    # The organisational unit of a missed-call ticket no agent was offered: the unit of the queue the caller
    # waited in, else this one (a caller who hung up in the IVR). Empty: no unit, so only staff with every
    # unit see those tickets (scopes fail closed).
    missed_calls_unit: str = opt("", pattern=r"^[^/]{0,100}$")
