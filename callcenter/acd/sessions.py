"""Agent sessions (DIA-6): an agent's phone is called once and kept connected.

A predictive dialer cannot wait for a phone to ring and be picked up: a person who answered must hear
an agent within 2 seconds, and a person clicking "answer" takes longer than that. So, like VICIdial's
agent conference, the controller calls the agent's phone once when they join a campaign and keeps that
leg in the agent's own bridge (silence, or music, between calls). A call for the agent is connected by
moving the leg into the call's bridge, with a short beep to the agent; when the call ends the leg goes
back to the agent's bridge. The phone itself never rings again during the session.

This module keeps the sessions and does their Asterisk work; the ACD decides when a session is used
(``services.py``) and the dialer when one is opened or closed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from callcenter.acd.bridges import create_or_adopt
from callcenter.acd.model import Agent
from callcenter.errors import AriError

log = logging.getLogger(__name__)

# The second Stasis argument of a session leg (the first is the ACD's own).
SESSION_ARG = "session"
BEEP = "sound:beep"
# How long the agent's phone rings for the session: a person walking back to their desk, not a queue call.
SESSION_RING_SECONDS = 30


class SessionControl(Protocol):
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def create_bridge(self, bridge_id: str, kind: str) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None: ...
    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None: ...
    async def bridge_moh(self, bridge_id: str, moh_class: str) -> None: ...
    async def play(self, channel_id: str, media: list[str] | str, playback_id: str,
                   lang: str | None = None) -> None: ...


@dataclass
class AgentSession:
    """One agent's kept phone leg while it lasts."""

    agent: Agent
    channel_id: str
    bridge_id: str
    label: str  # what the session is for, as the agent is told ("campaign spring")
    music: str  # "" keeps the agent's line silent between calls; else a music-on-hold class
    started_at: datetime
    up: bool = False  # the phone answered
    lent: bool = False  # the leg is in a call's bridge now
    answered_at: datetime | None = None


class AgentSessions:
    def __init__(self, control: SessionControl) -> None:
        self.control = control
        self._by_agent: dict[int, AgentSession] = {}
        self._by_channel: dict[str, AgentSession] = {}

    def of(self, agent: Agent) -> AgentSession | None:
        return self._by_agent.get(agent.user_id)

    def up(self, agent: Agent) -> bool:
        session = self._by_agent.get(agent.user_id)
        return session is not None and session.up

    def leg(self, channel_id: str | None) -> AgentSession | None:
        return self._by_channel.get(channel_id) if channel_id else None

    def channel_ids(self) -> set[str]:
        return set(self._by_channel)

    def all(self) -> list[AgentSession]:
        return list(self._by_agent.values())

    def begin(self, agent: Agent, label: str, music: str, now: datetime) -> AgentSession:
        """A session whose phone is about to be called (the ACD originates the leg)."""
        session = AgentSession(agent, f"acd-session-{uuid.uuid4().hex[:16]}", f"acd-agent-{agent.user_id}",
                               label, music, now)
        self._by_agent[agent.user_id] = session
        self._by_channel[session.channel_id] = session
        return session

    async def answered(self, session: AgentSession, now: datetime) -> None:
        """The agent picked up: their leg waits in their own bridge."""
        await create_or_adopt(self.control, session.bridge_id, "mixing,dtmf_events")
        await self.control.add_to_bridge(session.bridge_id, session.channel_id)
        if session.music:
            with contextlib.suppress(AriError):
                await self.control.bridge_moh(session.bridge_id, session.music)
        session.up, session.answered_at = True, now

    async def lend(self, session: AgentSession, bridge_id: str) -> None:
        """The leg joins a call's bridge (leaving the agent's own first)."""
        session.lent = True
        with contextlib.suppress(AriError):
            await self.control.remove_from_bridge(session.bridge_id, session.channel_id)
        await self.control.add_to_bridge(bridge_id, session.channel_id)

    async def beep(self, session: AgentSession) -> None:
        """Tells the agent a person is on the line (the customer does not hear it)."""
        with contextlib.suppress(AriError):
            await self.control.play(session.channel_id, BEEP, f"acd-beep-{uuid.uuid4().hex[:16]}")

    async def take_back(self, session: AgentSession) -> None:
        """The call is over for the agent: the leg returns to their own bridge."""
        session.lent = False
        try:
            await self.control.add_to_bridge(session.bridge_id, session.channel_id)
        except AriError as exc:
            # The leg is gone (its own event ends the session) or moving it failed: the line is useless.
            log.info("agent %s: the session leg could not return to its bridge: %s", session.agent.extension, exc)

    def forget(self, session: AgentSession) -> None:
        self._by_agent.pop(session.agent.user_id, None)
        self._by_channel.pop(session.channel_id, None)

    async def close(self, session: AgentSession) -> None:
        """Ends a session on purpose (logout, no campaign needs it): hang-up is not a dropped line."""
        self.forget(session)
        with contextlib.suppress(AriError):
            await self.control.hangup(session.channel_id)
        await self._remove_bridge(session)

    async def gone(self, channel_id: str) -> AgentSession | None:
        """The session's leg hung up (the agent, their phone or the network): the session is over."""
        session = self._by_channel.get(channel_id)
        if session is None:
            return None
        self.forget(session)
        await self._remove_bridge(session)
        return session

    async def _remove_bridge(self, session: AgentSession) -> None:
        if session.up:
            with contextlib.suppress(AriError):
                await self.control.destroy_bridge(session.bridge_id)
