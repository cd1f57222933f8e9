"""Supervisor monitoring (MON-1..3): listen, whisper to the agent, or talk with both.

A session joins the supervisor's channel and a *snoop* channel on the agent's live channel in a
bridge of its own. The snoop hears both directions of the agent's call (``spy=both``); what the
supervisor says reaches the call only through the snoop's ``whisper`` direction:

- silent: ``whisper=none``: nobody hears the supervisor;
- whisper: ``whisper=out``: written towards the agent's phone only;
- barge (three-way): ``whisper=both``: towards the agent's phone and into the call, so the customer
  hears it too.

Changing mode replaces the snoop channel. Nothing is played to the parties when a supervisor joins
or changes mode. The session ends when the agent's call ends (Asterisk hangs up the snoop with the
channel it spied on) or when the supervisor hangs up; its bridge and channels go with it.

The agent's live channel comes from the controller's own ACD state (queue, outbound, callback and
transferred calls: the agent's leg), else from Asterisk's list of the agent endpoint's channels
(calls users dial to each other, which the dialplan bridges): never from guessing channel names.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import update

from callcenter.bus import Bus, ChannelClaims
from callcenter.db.engine import Database
from callcenter.db.models import MonitorEvent
from callcenter.db.models import MonitorSession as MonitorSessionRow
from callcenter.db.writer import RecordWriter
from callcenter.errors import AriError, AriNotFound, CallcenterError
from callcenter.monitor.direct import DirectCalls
from callcenter.monitor.events import FEATURE_PREFIX, SNOOP_ARG, SUPERVISOR_ARG, MonitorByCode
from callcenter.monitor.groups import Permissions, load_permissions
from callcenter.users.events import PhoneStateChanged, PhoneStatesReplaced
from callcenter.users.units import unit_when_written

log = logging.getLogger(__name__)

DENIED_PROMPT = "monitor-denied"
NO_CALL_PROMPT = "monitor-no-call"


class Mode(enum.Enum):
    SILENT = "silent"
    WHISPER = "whisper"
    BARGE = "barge"

    @property
    def whisper(self) -> str:
        return {Mode.SILENT: "none", Mode.WHISPER: "out", Mode.BARGE: "both"}[self]


KEYS = {"4": Mode.SILENT, "5": Mode.WHISPER, "6": Mode.BARGE}


class MonitorError(CallcenterError):
    """A monitoring request that cannot be done; the message is for the supervisor."""

    error_id = "monitor-refused"
    http_status = 400


class MonitorControl(Protocol):
    async def answer(self, channel_id: str) -> None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def snoop(self, channel_id: str, snoop_id: str, spy: str, whisper: str, args: list[str]) -> None: ...
    async def create_bridge(self, bridge_id: str, kind: str) -> None: ...
    async def destroy_bridge(self, bridge_id: str) -> None: ...
    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None: ...
    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int,
                        args: list[str], originator: str | None = None) -> None: ...
    async def endpoint_channels(self, technology: str, resource: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class UserRef:
    id: int
    extension: str
    name: str


@dataclass(frozen=True)
class LiveLeg:
    """The agent's channel in a connected call, and who is on the other side."""

    channel_id: str
    customer: str


@dataclass
class Session:
    id: str
    supervisor: UserRef
    agent: UserRef
    origin: str  # feature, panel
    mode: Mode
    customer: str = ""
    state: str = "ringing"  # ringing (panel: the supervisor's phone), active, ended
    supervisor_channel: str | None = None
    agent_channel: str | None = None
    snoop_channel: str | None = None
    snoop_seq: int = 0
    modes: list[tuple[datetime, Mode]] = field(default_factory=list)

    @property
    def bridge_id(self) -> str:
        return f"mon-{self.id}"


class MonitorService:
    def __init__(self, control: MonitorControl, writer: RecordWriter, permissions: Permissions, *,
                 user_by_extension: Callable[[str], UserRef | None],
                 acd_leg: Callable[[str], LiveLeg | None], bus: Bus, claims: ChannelClaims, dial_timeout: int = 30,
                 notify: Callable[[], None] = lambda: None) -> None:
        self.control = control
        self.claims = claims
        bus.serve(MonitorByCode, lambda request: self.feature(request.channel_id, request.supervisor_extension,
                                                              request.number))
        self.writer = writer
        self.permissions = permissions
        self.user_by_extension = user_by_extension
        self.acd_leg = acd_leg
        self.dial_timeout = dial_timeout
        self.notify = notify
        self.sessions: dict[str, Session] = {}
        self.by_channel: dict[str, Session] = {}  # supervisor and snoop channels
        # Calls users make without the ACD (the wallboard's direct calls): fed with their phones' states.
        self.direct = DirectCalls(lambda extension: control.endpoint_channels("PJSIP", extension), notify)
        bus.subscribe(PhoneStateChanged, lambda event: self.direct.device_state(event.extension, event.state))
        bus.subscribe(PhoneStatesReplaced, lambda event: self.direct.replace_all(event.states))

    # -- entry points -------------------------------------------------------------------------------

    def reload_permissions(self, db: Database) -> None:
        """The permission groups from the database, after an admin or the CLI changed groups or users.
        Blocking: run it in a worker thread."""
        with db.session() as session:
            self.permissions = load_permissions(session)

    def _hold(self, channel_id: str, session: Session) -> None:
        """A supervisor or snoop channel of ``session``: its keys and its end come here (ari/routing.py)."""
        self.by_channel[channel_id] = session
        self.claims.take(channel_id)

    async def feature(self, channel_id: str, supervisor_extension: str, number: str) -> str | None:
        """``#44<ext>`` dialled: monitoring starts silent on this channel; else the prompt to play
        before hanging up (denied, no call)."""
        agent_extension = number[len(FEATURE_PREFIX):]
        supervisor = self.user_by_extension(supervisor_extension)
        agent = self.user_by_extension(agent_extension)
        if supervisor is None or agent is None or not self.permissions.may_monitor(supervisor.extension,
                                                                                   agent.extension):
            self._audit_refused(supervisor_extension, supervisor, agent_extension, agent, "feature", "denied")
            log.info("monitoring %s by %s refused: not in a monitoring group", agent_extension, supervisor_extension)
            return DENIED_PROMPT
        leg = await self.find_leg(agent.extension)
        if leg is None:
            self._audit_refused(supervisor_extension, supervisor, agent_extension, agent, "feature", "no_call")
            return NO_CALL_PROMPT
        session = Session(uuid.uuid4().hex, supervisor, agent, "feature", Mode.SILENT)
        self._opened(session)
        await self.control.answer(channel_id)
        await self._join(session, channel_id, leg)
        return None

    async def start_from_panel(self, supervisor: UserRef, agent_extension: str, mode: Mode) -> Session:
        """Rings the supervisor's phone; monitoring starts in ``mode`` when they answer."""
        agent = self.user_by_extension(agent_extension)
        if agent is None or not self.permissions.may_monitor(supervisor.extension, agent_extension):
            self._audit_refused(supervisor.extension, supervisor, agent_extension, agent, "panel", "denied")
            raise MonitorError(f"You may not monitor {agent_extension}.")
        if self.session_of_supervisor(supervisor.id) is not None:
            raise MonitorError("You are monitoring already: stop that first.")
        if await self.find_leg(agent.extension) is None:
            self._audit_refused(supervisor.extension, supervisor, agent_extension, agent, "panel", "no_call")
            raise MonitorError(f"{agent.name} ({agent.extension}) has no call to monitor.")
        session = Session(uuid.uuid4().hex, supervisor, agent, "panel", mode)
        channel_id = f"mon-sup-{session.id[:20]}"
        session.supervisor_channel = channel_id
        self._hold(channel_id, session)
        self._opened(session)
        try:
            await self.control.originate(channel_id, f"PJSIP/{supervisor.extension}",
                                         f'"Monitor {agent.name}" <{agent.extension}>', self.dial_timeout,
                                         [SUPERVISOR_ARG, session.id])
        except AriError as exc:
            await self._end(session, "failed")
            raise MonitorError(f"Your phone could not be rung: {exc.message}") from None
        return session

    async def supervisor_answered(self, channel_id: str, session_id: str) -> None:
        """The supervisor's phone, rung from the panel, was answered."""
        session = self.sessions.get(session_id)
        if session is None or session.state != "ringing":
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return
        leg = await self.find_leg(session.agent.extension)
        if leg is None:
            await self._end(session, "no_call")
            return
        await self._join(session, channel_id, leg)

    async def snoop_started(self, channel_id: str, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.snoop_channel != channel_id:
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)  # a snoop replaced meanwhile
            return
        try:
            await self.control.add_to_bridge(session.bridge_id, channel_id)
        except AriNotFound:
            await self._end(session, "call_ended")

    # -- while monitoring ---------------------------------------------------------------------------

    async def dtmf(self, channel_id: str, digit: str) -> bool:
        """Keys of a supervisor's channel (True: ours): 4 silent, 5 whisper, 6 three-way."""
        session = self.by_channel.get(channel_id)
        if session is None or channel_id != session.supervisor_channel:
            return False
        mode = KEYS.get(digit)
        if mode is not None and session.state == "active":
            await self.set_mode(session, mode, "keypad")
        return True

    async def set_mode(self, session: Session, mode: Mode, by: str) -> None:
        if session.state == "ringing":
            session.mode = mode  # taken when the supervisor answers
            self.notify()
            return
        if session.state != "active" or mode is session.mode or session.agent_channel is None:
            return
        old = session.snoop_channel
        session.mode = mode
        await self._snoop(session)
        if old is not None:
            self.by_channel.pop(old, None)
            with contextlib.suppress(AriError):
                await self.control.hangup(old)
        self._mode_entered(session, by)
        log.info("monitoring %s by %s: %s", session.agent.extension, session.supervisor.extension, mode.value)

    async def stop(self, session: Session) -> None:
        await self._end(session, "stopped")

    async def channel_gone(self, channel_id: str) -> None:
        session = self.by_channel.pop(channel_id, None)
        if session is None or session.state == "ended":
            return
        if channel_id == session.supervisor_channel:
            await self._end(session, "supervisor_hung_up" if session.state == "active" else "not_answered")
        elif channel_id == session.snoop_channel:
            # Asterisk hangs up a snoop when the channel it spies on goes: the agent's call is over.
            await self._end(session, "call_ended")

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.by_channel

    # -- views --------------------------------------------------------------------------------------

    def session_of_supervisor(self, user_id: int) -> Session | None:
        return next((s for s in self.sessions.values() if s.supervisor.id == user_id and s.state != "ended"), None)

    def supervising(self, extension: str) -> bool:
        """Whether the phone ``extension`` is busy with its user's own monitoring call: no call to monitor."""
        return any(s.supervisor.extension == extension and s.state != "ended" for s in self.sessions.values())

    def watchers(self, agent_extension: str) -> list[str]:
        return [s.supervisor.name for s in self.sessions.values()
                if s.agent.extension == agent_extension and s.state == "active"]

    # -- finding the agent's call -------------------------------------------------------------------

    async def find_leg(self, agent_extension: str) -> LiveLeg | None:
        leg = self.acd_leg(agent_extension)
        if leg is not None:
            return leg
        try:
            channels = await self.control.endpoint_channels("PJSIP", agent_extension)
        except AriNotFound:
            return None
        for channel in channels:
            channel_id = str(channel.get("id", ""))
            # Not a monitoring call: a supervisor listening in is no call to listen to.
            if channel.get("state") == "Up" and not channel_id.startswith("mon-") and not self.owns(channel_id):
                connected = channel.get("connected") or {}
                return LiveLeg(str(channel["id"]), str(connected.get("number", "")))
        return None

    # -- inside -------------------------------------------------------------------------------------

    async def _join(self, session: Session, supervisor_channel: str, leg: LiveLeg) -> None:
        session.supervisor_channel = supervisor_channel
        session.agent_channel, session.customer = leg.channel_id, leg.customer
        session.state = "active"
        self._hold(supervisor_channel, session)
        self.writer.add(self._update_row(session.id, customer=leg.customer[:80]))
        try:
            # dtmf_events: keep the supervisor's keys reaching us inside the bridge.
            await self.control.create_bridge(session.bridge_id, "mixing,dtmf_events")
            await self.control.add_to_bridge(session.bridge_id, supervisor_channel)
            await self._snoop(session)
        except AriNotFound:
            await self._end(session, "call_ended" if session.supervisor_channel else "supervisor_hung_up")
            return
        except AriError as exc:
            log.error("monitoring %s could not start: %s", session.agent.extension, exc)
            await self._end(session, "failed")
            return
        self._mode_entered(session, session.origin if session.origin == "panel" else "keypad")
        log.info("monitoring %s by %s started (%s)", session.agent.extension, session.supervisor.extension,
                 session.mode.value)

    async def _snoop(self, session: Session) -> None:
        assert session.agent_channel is not None
        session.snoop_seq += 1
        snoop_id = f"mon-{session.id[:20]}-{session.snoop_seq}"
        session.snoop_channel = snoop_id
        self._hold(snoop_id, session)
        await self.control.snoop(session.agent_channel, snoop_id, "both", session.mode.whisper,
                                 [SNOOP_ARG, session.id])

    async def _end(self, session: Session, outcome: str) -> None:
        if session.state == "ended":
            return
        session.state = "ended"
        for channel_id in (session.snoop_channel, session.supervisor_channel):
            if channel_id is not None:
                self.by_channel.pop(channel_id, None)
                with contextlib.suppress(AriError):
                    await self.control.hangup(channel_id)
        with contextlib.suppress(AriError):
            await self.control.destroy_bridge(session.bridge_id)
        self.sessions.pop(session.id, None)
        self.writer.add(self._update_row(session.id, ended_at=datetime.now(UTC), outcome=outcome))
        log.info("monitoring %s by %s ended: %s", session.agent.extension, session.supervisor.extension, outcome)
        self.notify()

    # -- audit --------------------------------------------------------------------------------------

    def _opened(self, session: Session) -> None:
        self.sessions[session.id] = session
        row = {"id": session.id, "supervisor_id": session.supervisor.id, "supervisor": session.supervisor.extension,
               "agent_id": session.agent.id, "agent": session.agent.extension, "origin": session.origin,
               "started_at": datetime.now(UTC), "outcome": "",
               "supervisor_unit_id": unit_when_written(session.supervisor.id),
               "agent_unit_id": unit_when_written(session.agent.id)}
        self.writer.add(lambda s: s.add(MonitorSessionRow(**row)))
        self.notify()

    def _mode_entered(self, session: Session, by: str) -> None:
        now = datetime.now(UTC)
        session.modes.append((now, session.mode))
        row = {"session_id": session.id, "at": now, "mode": session.mode.value, "by": by}
        self.writer.add(lambda s: s.add(MonitorEvent(**row)))
        self.notify()

    def _audit_refused(self, supervisor_extension: str, supervisor: UserRef | None, agent_extension: str,
                       agent: UserRef | None, origin: str, outcome: str) -> None:
        now = datetime.now(UTC)
        row = {"id": uuid.uuid4().hex, "supervisor_id": supervisor.id if supervisor else None,
               "supervisor": supervisor_extension[:20], "agent_id": agent.id if agent else None,
               "agent": agent_extension[:20], "origin": origin, "started_at": now, "ended_at": now,
               "outcome": outcome, "supervisor_unit_id": unit_when_written(supervisor.id if supervisor else None),
               "agent_unit_id": unit_when_written(agent.id if agent else None)}
        self.writer.add(lambda s: s.add(MonitorSessionRow(**row)))

    @staticmethod
    def _update_row(session_id: str, **values: Any) -> Callable[[Any], Any]:
        return lambda s: s.execute(update(MonitorSessionRow).where(MonitorSessionRow.id == session_id)
                                   .values(**values))

