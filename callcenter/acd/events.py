"""What the ACD tells the rest of the controller (domain events on the bus) and what it does for other
features when asked (requests). Subscribers import these types, never the ACD's services."""

from __future__ import annotations

from dataclasses import dataclass

# -- requests the ACD serves ------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterQueue:
    """Put a caller in a queue (a DID routed to a queue, an IVR's queue node). Answer: True when queued,
    False when there is no such queue."""

    channel_id: str
    queue: str
    caller: str
    caller_name: str = ""
    did: str = ""
    answered: bool = True
    priority: int = 0


@dataclass(frozen=True)
class ToggleAgentLogin:
    """An agent dialled the login feature code. Answer: the prompt to play, None when no agent has this
    extension."""

    extension: str
