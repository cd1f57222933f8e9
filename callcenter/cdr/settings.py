"""The CDR feature's settings: the ``[cdr]`` section (polling, rating)."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class CdrSettings:
    poll_interval: float = opt(0.2, lo=0.01, hi=10)
    # The rate table for calls out through the trunk: CSV prefix,destination,rate (per minute).
    rates_file: str = opt("config/rates.csv")
    # Charged time is billsec rounded up to this many seconds (1: per second, 60: per started minute)...
    billing_increment: int = opt(1, lo=1, hi=3600)
    # ...and never less than this many seconds for an answered call.
    billing_minimum: int = opt(0, lo=0, hi=3600)
    # Dialled numbers with a national 0 get this country code for the rate lookup ("49"); "": none.
    country_code: str = opt("", pattern=r"^[0-9]{0,4}$")
