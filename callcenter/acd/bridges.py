"""Bridges the ACD keeps by a fixed name (a queue's holding bridge, an agent's session bridge)."""

from __future__ import annotations

import logging
from typing import Protocol

from callcenter.errors import AriError

log = logging.getLogger(__name__)


class BridgeControl(Protocol):
    async def create_bridge(self, bridge_id: str, kind: str) -> None: ...


async def create_or_adopt(control: BridgeControl, bridge_id: str, kind: str) -> None:
    """Creates the bridge; one a previous controller left on the Asterisk we adopted serves as it is."""
    try:
        await control.create_bridge(bridge_id, kind)
    except AriError as exc:
        if exc.status != 409:
            raise
        log.info("bridge %s exists already (left by a previous controller); using it", bridge_id)
