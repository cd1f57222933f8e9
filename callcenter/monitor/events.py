"""What monitoring offers other features: its feature code and the request that starts monitoring from it."""

from __future__ import annotations

from dataclasses import dataclass

FEATURE_PREFIX = "#44"
# Stasis arguments of the channels monitoring originates: the snoop on the agent, the supervisor's phone.
SNOOP_ARG = "monitor"
SUPERVISOR_ARG = "monitor-supervisor"


def is_monitor_code(number: str) -> bool:
    """``#44`` followed by an extension."""
    return number.startswith(FEATURE_PREFIX) and number[len(FEATURE_PREFIX):].isdigit()


@dataclass(frozen=True)
class MonitorByCode:
    """A supervisor dialled ``#44`` + an agent's extension on ``channel_id``. Answer: None when monitoring
    started on the channel, else the prompt to play before hanging up (denied, no call)."""

    channel_id: str
    supervisor_extension: str
    number: str
