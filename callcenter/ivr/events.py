"""Requests the IVR serves for other features."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StartIvr:
    """Run an IVR flow on a channel (a DID routed to it, a queue overflowing to it). Answer: True when the
    flow started, False when no such flow is loaded."""

    channel_id: str
    flow: str
    caller: str
    did: str
    answered: bool = True
