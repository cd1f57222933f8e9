"""What the users feature tells others: how its users' phones are (Asterisk device states, from AMI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class PhoneStateChanged:
    """A user's phone changed state (NOT_INUSE, INUSE, RINGING, UNAVAILABLE...)."""

    extension: str
    state: str


@dataclass(frozen=True)
class UnitsChanged:
    """An admin saved or removed an organisational unit: who may see what changed (wallboards re-read
    their viewers' scopes)."""

    unit: str


@dataclass(frozen=True)
class PhoneStatesReplaced:
    """Every user's phone state after (re)connecting to AMI: what was known before may be stale."""

    states: Mapping[str, str]
