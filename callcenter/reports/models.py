"""The 15-minute interval tables (issue 16, docs/kpis.md): the summable figures of `kpis.QueueCounts` per
queue and of `kpis.AgentTimes` per agent, per interval starting at a UTC quarter hour. They are built from
the ACD's records (`intervals.rebuild`), so a report over months reads hundreds of rows, not millions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime


class QueueInterval(Base):
    """A queue's calls that entered it in [start, start + 15 min)."""

    __tablename__ = "report_queue_intervals"
    queue: Mapped[str] = mapped_column(String(40), primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True, index=True)
    # The service-level threshold (seconds) answered_in_sl was counted against.
    sl_threshold: Mapped[int] = mapped_column(Integer, default=0)
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    overflowed: Mapped[int] = mapped_column(Integer, default=0)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    callbacks_requested: Mapped[int] = mapped_column(Integer, default=0)
    callbacks_completed: Mapped[int] = mapped_column(Integer, default=0)
    answered_wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    waited: Mapped[int] = mapped_column(Integer, default=0)
    wait_max: Mapped[float] = mapped_column(Float, default=0.0)
    talk_sum: Mapped[float] = mapped_column(Float, default=0.0)
    talked: Mapped[int] = mapped_column(Integer, default=0)


class AgentInterval(Base):
    """An agent's seconds per state in [start, start + 15 min) (split at the boundaries), and the offers
    and calls that started in it. ``pause_reasons``: JSON object, reason -> seconds."""

    __tablename__ = "report_agent_intervals"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True, index=True)
    # The agent's unit at the time: of their last offer in the interval, else their unit at the rebuild.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    logged_in_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    ready_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    ringing_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    on_call_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    wrap_up_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    pause_reasons: Mapped[str] = mapped_column(Text, default="{}")
    handled: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    unanswered: Mapped[int] = mapped_column(Integer, default=0)
    talked: Mapped[int] = mapped_column(Integer, default=0)
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    first_response_sum: Mapped[float] = mapped_column(Float, default=0.0)
