"""Whether a call is recorded: the policies of its queue (or campaign), its agent and the default.

A policy is ``always``, ``never`` or a percentage (``"25%"``: about one call in four). When several
apply, ``always`` wins (a compliance rule on a queue cannot be switched off by an agent setting),
then ``never``, then the highest percentage; the default applies only when no other policy is set.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


def check_policy(policy: str) -> str:
    if policy in ("always", "never") or _PERCENT.match(policy):
        return policy
    raise ValueError(f'recording policy must be always, never or a percentage like "25%", got {policy!r}')


def combined(policies: Iterable[str], default: str) -> str:
    """The one policy that applies to a call covered by ``policies`` (empty strings are unset)."""
    given = [check_policy(p) for p in policies if p]
    if not given:
        return check_policy(default)
    if "always" in given:
        return "always"
    if "never" in given:
        return "never"
    return f"{max(int(p[:-1]) for p in given)}%"


def should_record(policy: str, draw: Callable[[], float] = random.random) -> bool:
    """``draw`` returns a number in [0, 1): injected so tests decide the percentage's coin."""
    policy = check_policy(policy)
    if policy == "always":
        return True
    if policy == "never":
        return False
    return draw() * 100 < int(policy[:-1])
