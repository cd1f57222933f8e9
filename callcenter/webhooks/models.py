"""The webhooks' tables (docs/webhooks.md): the endpoints admins manage, the durable outbox of deliveries
(one row per event and endpoint, written in the same transaction as the fact it reports) and every attempt
to send one. The endpoint's secret is stored in clear because the sender needs it to sign; it is shown in
full only when created or rotated and never logged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(Text, default="")  # the event names it receives, comma-separated
    secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + 32 random url-safe bytes
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))  # the admin's login, or "cli:<user>"

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.events.split(",") if name)


class WebhookDelivery(Base):
    """One event for one endpoint. ``event_id`` is the idempotency key: the same on every retry and on
    "send again" (and for every endpoint the event went to); ``payload`` is exactly the body sent."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sender's poll: the oldest pending delivery of each endpoint (an index range, no table scan).
        Index("ix_webhook_deliveries_status_endpoint", "status", "endpoint_id", "id"),
        # An endpoint's page (newest first) and the cascade when an endpoint goes.
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(32))  # uuid4 hex
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When the current round of attempts began (the first attempt, or the first after "send again"): the
    # sender gives up give_up_hours after it.
    first_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # HTTP status of the last attempt
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
                                             index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: no answer (timeout, refused)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")  # the first 500 characters
