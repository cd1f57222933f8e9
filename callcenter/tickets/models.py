"""The ticket tables (CRM-2, docs/tickets.md): a call-based ticket, its timeline, and the agents' actions
on a call they are on (a ticket made from it, or the call attached to an earlier one).

A ticket keeps the organisational unit it was made in (``org_unit_id``: its assignee's, else the unit of
the agent who made it; none for a missed call no agent was offered, which only unrestricted staff see)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime

OPEN, PENDING, CLOSED = "open", "pending", "closed"
STATUSES = (OPEN, PENDING, CLOSED)

# What started the ticket: a call from the customer, a call to the customer, or a missed inbound call
# (the list shows a handset: red for a missed call, green once a call back was answered).
INBOUND, OUTBOUND, MISSED = "inbound", "outbound", "missed"
# A ticket an integration made through the REST API (not from a call; the call statistics leave it out).
INTEGRATION = "integration"
ORIGINS = (INBOUND, OUTBOUND, MISSED, INTEGRATION)
CALL_ORIGINS = (INBOUND, OUTBOUND, MISSED)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_number_origin_grouping", "number", "origin", "grouping"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=OPEN, index=True)
    origin: Mapped[str] = mapped_column(String(12))
    # The customer's number (E.164 when it could be read as one) and the customer it belongs to.
    number: Mapped[str] = mapped_column(String(32), default="", index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"),
                                                    nullable=True, index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                    index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                    nullable=True, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True, index=True)
    # A missed-call ticket takes the number's next missed calls until a conversation with it happens.
    grouping: Mapped[bool] = mapped_column(Boolean, default=False)
    missed_calls: Mapped[int] = mapped_column(Integer, default=0)
    # A missed-call ticket whose call back the customer answered (its handset turns green).
    answered_back: Mapped[bool] = mapped_column(Boolean, default=False)
    reopened: Mapped[int] = mapped_column(Integer, default=0)


class TicketEntry(Base):
    """One line of a ticket's timeline. ``kind``:

    - ``call``: a conversation on the ticket (``call_id`` is the ACD call record; its recording is found by
      it); ``body`` is the agent's summary; ``in_progress`` until the agent's leg of the call ends;
    - ``missed``: a missed inbound call grouped into the ticket; ``attempt``: a call to the customer that
      was not answered;
    - ``reply``, ``note``: what an agent wrote (a note is internal);
    - ``status``, ``assignee``, ``subject``: a change of the ticket (``old``/``new``)."""

    __tablename__ = "ticket_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True,
                                                  index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    call_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # The agent's leg of the call (``<call record>-<offer>``): a transferred call is one entry per agent.
    leg_id: Mapped[str | None] = mapped_column(String(48), nullable=True)
    in_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    old: Mapped[str] = mapped_column(String(200), default="")
    new: Mapped[str] = mapped_column(String(200), default="")
