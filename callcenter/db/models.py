"""SQLAlchemy models: every table, on `Base` (base.py, with the `UtcDateTime` column type). The schema is
created and changed only by the alembic migrations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from callcenter.customers.models import Customer  # noqa: F401  (its tables live with the feature)
from callcenter.db.base import Base, UtcDateTime


class OrgUnit(Base):
    __tablename__ = "org_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), nullable=True)


class OrgUnitAdmin(Base):
    """A unit in a manager's scope (CDR-5, docs/security.md): an admin sees the unit's records and
    recordings; a supervisor its queues, agents and campaigns. Everything is in scope only by the
    explicit ``User.all_units`` grant."""

    __tablename__ = "org_unit_admins"
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    # Users without an extension (an admin who only uses the panel) get no SIP endpoint.
    extension: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    # md5("<extension>:<realm>:<SIP password>") (asterisk/render.py: sip_ha1): Asterisk's digest auth needs
    # no more, so the password itself is shown once when generated and never stored; "" without an extension.
    sip_ha1: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    roles: Mapped[str] = mapped_column(String(200), default="agent")  # comma-separated
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The explicit grant of every unit to an admin or supervisor (a "top" manager); without it a
    # manager sees only the units listed in org_unit_admins, and with none of those, nothing.
    all_units: Mapped[bool] = mapped_column(Boolean, default=False)
    # A disabled user can log in nowhere (panel, FTPS) and their sessions end.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Part of every panel session; raising it ends all the user's sessions (logout, password or
    # role change, disabling), in every process and across restarts.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    org_unit: Mapped[OrgUnit | None] = relationship()

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split(",") if r]


class Call(Base):
    """One call: every channel that shares an Asterisk linkedid."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    src: Mapped[str] = mapped_column(String(80), default="")
    dst: Mapped[str] = mapped_column(String(80), default="")
    state: Mapped[str] = mapped_column(String(16), default="active")
    legs: Mapped[list[CallLeg]] = relationship(back_populates="call", order_by="CallLeg.id")


class CallLeg(Base):
    """One channel of a call, with what happened to it."""

    __tablename__ = "call_legs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(120), default="")
    caller_num: Mapped[str] = mapped_column(String(80), default="")
    caller_name: Mapped[str] = mapped_column(String(120), default="")
    exten: Mapped[str] = mapped_column(String(80), default="")
    context: Mapped[str] = mapped_column(String(80), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    hangup_cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dial_status: Mapped[str] = mapped_column(String(20), default="")
    call: Mapped[Call] = relationship(back_populates="legs")


class CallEvent(Base):
    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    leg_id: Mapped[int | None] = mapped_column(ForeignKey("call_legs.id"), nullable=True)
    event_type: Mapped[str] = mapped_column(String(32))
    event_time: Mapped[datetime] = mapped_column(UtcDateTime())
    app: Mapped[str] = mapped_column(String(40), default="")
    app_data: Mapped[str] = mapped_column(Text, default="")
    peer: Mapped[str] = mapped_column(String(120), default="")
    extra: Mapped[str] = mapped_column(Text, default="")
    call: Mapped[Call] = relationship()
    leg: Mapped[CallLeg | None] = relationship()


class Cdr(Base):
    """One row per call, in the column order of the CDR CSV (CDR-1)."""

    __tablename__ = "cdr"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    calldate: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    src_id: Mapped[str] = mapped_column(String(80), default="")
    src: Mapped[str] = mapped_column(String(80), default="")
    clid: Mapped[str] = mapped_column(String(200), default="")
    dst: Mapped[str] = mapped_column(String(80), default="")
    dst_name: Mapped[str] = mapped_column(String(120), default="")
    duration: Mapped[int] = mapped_column(Integer)
    billsec: Mapped[int] = mapped_column(Integer)
    disposition: Mapped[str] = mapped_column(String(20))
    destination: Mapped[str] = mapped_column(String(120), default="")
    rate: Mapped[float | None] = mapped_column(Numeric(12, 5), nullable=True)
    charge: Mapped[float | None] = mapped_column(Numeric(12, 5), nullable=True)
    t_cause: Mapped[str] = mapped_column(String(80), default="")
    call: Mapped[Call] = relationship()
    user_links: Mapped[list[CdrUser]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class CdrUser(Base):
    """Our users whose phones took part in a call: what puts a CDR in an organisational unit's view."""

    __tablename__ = "cdr_users"
    cdr_id: Mapped[int] = mapped_column(ForeignKey("cdr.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    # The user's unit when the call happened: the CDR stays with that unit when the user moves.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), nullable=True,
                                                index=True)


class IngestCursor(Base):
    """How far the controller has read Asterisk's channel event log (stored with the events)."""

    __tablename__ = "ingest_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(80), default="")
    offset: Mapped[int] = mapped_column(BigInteger, default=0)


Index("ix_calls_state", Call.state)


class Holiday(Base):
    """A day the call centre is closed, with the prompt callers hear (IVR holiday nodes)."""

    __tablename__ = "holidays"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(100))
    prompt: Mapped[str] = mapped_column(String(100), default="")


class IvrVisit(Base):
    """One caller's way through the IVR: which flow version, how it ended and where."""

    __tablename__ = "ivr_visits"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    flow: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(16))
    did: Mapped[str] = mapped_column(String(32), default="")
    caller: Mapped[str] = mapped_column(String(80), default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20), default="")  # queue, extension, ..., caller_hangup
    target: Mapped[str] = mapped_column(String(64), default="")
    last_flow: Mapped[str] = mapped_column(String(64), default="")
    last_node: Mapped[str] = mapped_column(String(64), default="")


class IvrStep(Base):
    """A step of a visit: a node entered, a key pressed, a prompt played, a lookup's result."""

    __tablename__ = "ivr_steps"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    visit_id: Mapped[str] = mapped_column(ForeignKey("ivr_visits.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    flow: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))  # enter, key, play, invalid, timeout, lookup, language
    detail: Mapped[str] = mapped_column(String(300), default="")


# -- ACD: queues, agents, queue calls -------------------------------------------------------------


class Queue(Base):
    """An ACD queue. Queues named in the configuration are synchronised from it at every start."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    strategy: Mapped[str] = mapped_column(String(20))
    ring_timeout: Mapped[int] = mapped_column(Integer)
    wrapup: Mapped[int] = mapped_column(Integer)
    max_wait: Mapped[int] = mapped_column(Integer)
    service_level: Mapped[int] = mapped_column(Integer)
    overflow: Mapped[str] = mapped_column(String(80), default="")
    announce_every: Mapped[int] = mapped_column(Integer)
    moh_class: Mapped[str] = mapped_column(String(40), default="default")
    members: Mapped[list[QueueMember]] = relationship(back_populates="queue", cascade="all, delete-orphan")


class QueueMember(Base):
    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    skill: Mapped[int] = mapped_column(Integer, default=1)
    queue: Mapped[Queue] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class AgentStatus(Base):
    """An agent's current state, so a restarted controller keeps who is logged in and paused."""

    __tablename__ = "agent_status"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40), default="")
    since: Mapped[datetime] = mapped_column(UtcDateTime())
    capacity: Mapped[int] = mapped_column(Integer, default=1)


class AgentWorkLog(Base):
    """Every agent state change with its reason (ACD-4)."""

    __tablename__ = "agent_work_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(40), default="")
    detail: Mapped[str] = mapped_column(String(200), default="")


class AcdCall(Base):
    """One interaction an agent handles or a queue holds: a queued caller, a click-to-call, a callback."""

    __tablename__ = "acd_calls"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The record of the queue this call was in before (overflow, transfer to a queue).
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)
    direction: Mapped[str] = mapped_column(String(12))  # inbound, outbound, callback
    queue: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    did: Mapped[str] = mapped_column(String(32), default="")
    number: Mapped[str] = mapped_column(String(80), default="", index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # answered, abandoned, overflow, callback_requested, transferred, failed, no_answer
    outcome: Mapped[str] = mapped_column(String(24), default="")
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # The agent's unit when the call was answered (the record stays with it when the agent moves).
    agent_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                      nullable=True)
    wait_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    wrapup_code: Mapped[str] = mapped_column(String(40), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    # When the call entered its queue: callers already waiting, and agents logged in to the queue.
    callers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agents: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AcdAttempt(Base):
    """One offer of a call to an agent's phone: who, in which order, how long it rang, what happened."""

    __tablename__ = "acd_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("acd_calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    # The agent's unit when the call was offered.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), nullable=True)
    extension: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str | None] = mapped_column(String(40), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ring_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    # answered, no_answer, busy, rejected, failed, caller_gone, taken_by_other; for a dialer's person also
    # withdrawn (its 2-second deadline passed) and overtaken (a later offer to another agent answered first)
    outcome: Mapped[str] = mapped_column(String(20), default="")


class AcdDestination(Base):
    """Every place a call reached, in order: U user, Q queue, V voicemail, R IVR, C callback list."""

    __tablename__ = "acd_destinations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("acd_calls.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(1))
    target: Mapped[str] = mapped_column(String(64))


class Callback(Base):
    """The callback list (ACD-6): one row per number; repeated misses raise the count."""

    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    queue: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(20))  # abandoned, missed, requested, overflow
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open, done, removed
    last_call_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


# -- Recordings, exports, retention ---------------------------------------------------------------


class Recording(Base):
    """One recorded conversation (REC-1): where it was recorded, whose it is, where its MP3 is."""

    __tablename__ = "recordings"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str] = mapped_column(String(64), index=True)  # the channel MixMonitor runs on
    acd_call_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    # The unit of that user when the call happened: the recording stays visible to that unit's admins.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    sip_username: Mapped[str] = mapped_column(String(80), default="")
    caller: Mapped[str] = mapped_column(String(80), default="", index=True)
    called: Mapped[str] = mapped_column(String(80), default="", index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    seconds: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Path of the MP3 under the files directory (Recordings/YYYY-MM-DD/<name>.mp3).
    path: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(12), default="recording", index=True)  # recording, ready, failed
    error: Mapped[str] = mapped_column(String(300), default="")


class RecordingPause(Base):
    """A pause of a recording (REC-3): silence in the file from paused_at to resumed_at, and who did it."""

    __tablename__ = "recording_pauses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    paused_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    paused_by: Mapped[str] = mapped_column(String(80))  # a login, or "controller"
    resumed_by: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(String(120), default="")


class ExportRun(Base):
    """A day whose CDR and queue-call files were written: the daily job catches up on missing days."""

    __tablename__ = "export_runs"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cdr_rows: Mapped[int] = mapped_column(Integer)
    queue_call_rows: Mapped[int] = mapped_column(Integer)
    queue_user_call_rows: Mapped[int] = mapped_column(Integer)


class RetentionPolicy(Base):
    """How long a category of records is kept (RET-1): days, or None for ever."""

    __tablename__ = "retention_policies"
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(80), default="")


class PurgeLog(Base):
    """What a purge or a "delete all" removed, when and why."""

    __tablename__ = "purge_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    category: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))  # expired, delete_all
    cutoff: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    files: Mapped[int] = mapped_column(Integer, default=0)
    by: Mapped[str] = mapped_column(String(80), default="")


# -- Monitoring (MON-1..3) -----------------------------------------------------------------------


class MonitorGroup(Base):
    """Who may monitor whom: the group's supervisors may listen to its agents (MON-2)."""

    __tablename__ = "monitor_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    # Every extension may be monitored by this group's supervisors.
    all_agents: Mapped[bool] = mapped_column(default=False)
    # Groups named in the configuration are synchronised from it at every start.
    from_config: Mapped[bool] = mapped_column(default=False)
    members: Mapped[list[MonitorGroupMember]] = relationship(cascade="all, delete-orphan")


class MonitorGroupMember(Base):
    __tablename__ = "monitor_group_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("monitor_groups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(12))  # supervisor, agent


class MonitorSession(Base):
    """One monitoring attempt (MON audit): who, whom, from where, how it ended."""

    __tablename__ = "monitor_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    supervisor: Mapped[str] = mapped_column(String(20))  # the extension that dialled or was rung
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    agent: Mapped[str] = mapped_column(String(20))
    # Both users' units when the session started: the audit stays with those units.
    supervisor_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                           nullable=True)
    agent_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                      nullable=True)
    origin: Mapped[str] = mapped_column(String(12))  # feature, panel
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # denied, no_call, supervisor_hung_up, call_ended, stopped, failed
    outcome: Mapped[str] = mapped_column(String(20), default="")
    customer: Mapped[str] = mapped_column(String(80), default="")


class MonitorEvent(Base):
    """A mode a monitoring session entered (silent, whisper, barge), and when."""

    __tablename__ = "monitor_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("monitor_sessions.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    mode: Mapped[str] = mapped_column(String(12))
    by: Mapped[str] = mapped_column(String(20), default="")  # keypad, panel


# -- Outbound dialer (DIA-1..5) ------------------------------------------------------------------------

class DialerCampaign(Base):
    """A campaign's run state; its settings live in the configuration (``[campaigns.<name>]``)."""

    __tablename__ = "dialer_campaigns"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    running: Mapped[bool] = mapped_column(default=False)
    changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    changed_by: Mapped[str] = mapped_column(String(60), default="")


class DialerList(Base):
    """One imported CSV file: its column mapping and what became of its rows."""

    __tablename__ = "dialer_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    imported_by: Mapped[str] = mapped_column(String(60), default="")
    mapping: Mapped[str] = mapped_column(Text, default="")  # JSON
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    do_not_call: Mapped[int] = mapped_column(Integer, default=0)


class DialerListProblem(Base):
    """A row of an import that was not taken: rejected, duplicate or on the do-not-call list."""

    __tablename__ = "dialer_list_problems"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("dialer_lists.id", ondelete="CASCADE"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # rejected, duplicate, dnc
    reason: Mapped[str] = mapped_column(String(300))


class DialerContact(Base):
    """A number a campaign calls, with the fields its list carried and where it stands."""

    __tablename__ = "dialer_contacts"
    __table_args__ = (UniqueConstraint("campaign", "number"),
                      Index("ix_dialer_contacts_due", "campaign", "status", "not_before"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(40))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("dialer_lists.id", ondelete="SET NULL"), nullable=True)
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(120), default="")
    timezones: Mapped[str] = mapped_column(String(200))  # IANA zones, comma-separated
    fields: Mapped[str] = mapped_column(Text, default="{}")  # JSON object of the list's extra columns
    # pending, dialing, done, failed (attempts used up), dnc, callback (scheduled by an agent)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    callback_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                          nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome_counts: Mapped[str] = mapped_column(String(300), default="{}")  # JSON outcome -> attempts
    last_outcome: Mapped[str] = mapped_column(String(20), default="")
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


class DoNotCall(Base):
    """A number never to be dialled: everywhere (campaign '') or by one campaign."""

    __tablename__ = "dialer_dnc"
    __table_args__ = (UniqueConstraint("campaign", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(40), default="")
    number: Mapped[str] = mapped_column(String(20), index=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(60), default="")  # import, agent <ext>, admin


class DialerAttempt(Base):
    """One call the dialer placed, with the timestamps that prove how it was handled (DIA-3)."""

    __tablename__ = "dialer_attempts"
    __table_args__ = (Index("ix_dialer_attempts_campaign_placed", "campaign", "placed_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(40))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("dialer_contacts.id", ondelete="SET NULL"),
                                                   nullable=True, index=True)
    number: Mapped[str] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(12))
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    amd_status: Mapped[str] = mapped_column(String(12), default="")  # HUMAN, MACHINE, NOTSURE, HANGUP, off
    amd_cause: Mapped[str] = mapped_column(String(40), default="")
    # When a person was there to talk to: the answer, or the end of the greeting when AMD ran.
    human_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    abandoned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    message_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # human (connected), abandoned, machine, busy, no_answer, failed, hung_up (gone before an agent)
    outcome: Mapped[str] = mapped_column(String(20), default="")
    hangup_cause: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    acd_call_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Numeric(10, 2), nullable=True)
    wrapup_code: Mapped[str] = mapped_column(String(40), default="")
