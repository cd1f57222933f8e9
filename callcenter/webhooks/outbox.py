"""The durable outbox (docs/webhooks.md): ``enqueue`` writes one delivery per active endpoint subscribed to
an event, inside the caller's session and transaction, so the outbox row exists exactly when the fact it
reports was written (a RecordWriter operation calls it; it never commits nor opens a session).

The body sent, stored as is in ``webhook_deliveries.payload``::

    {"event": "call.finished", "event_id": "<uuid hex>", "notification_time": "<ISO 8601, UTC>",
     "notification_name": "Call finished", **payload}

``event`` and ``event_id`` are the envelope's and may not be in ``payload``; ``notification_time`` (``at``)
and ``notification_name`` (the catalogue's title) are defaults the payload may set itself, so the seed's
CallGear fields stay at the top level as CallGear sends them.

No cache of endpoints: a cache in the controller would not see the CLI (another process) remove an
endpoint, and a delivery for a removed endpoint would fail its foreign key and with it the caller's
transaction. The endpoints table is a handful of rows; reading it is one small query (bench/webhooks.py
measures enqueue: tens of microseconds on SQLite).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from callcenter.webhooks.catalog import BY_NAME
from callcenter.webhooks.models import WebhookDelivery, WebhookEndpoint

RESERVED = ("event", "event_id")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def body(event: str, event_id: str, payload: Mapping[str, Any], at: datetime) -> str:
    """The JSON text sent for ``event`` (see the module's docstring)."""
    if event not in BY_NAME:
        raise ValueError(f"unknown webhook event {event!r}")
    clash = [key for key in RESERVED if key in payload]
    if clash:
        raise ValueError(f"payload may not set {', '.join(clash)}: the envelope does")
    sent = {"event": event, "event_id": event_id, "notification_time": at.astimezone(UTC).isoformat(),
            "notification_name": BY_NAME[event].title, **payload}
    return json.dumps(sent, ensure_ascii=False, separators=(",", ":"), default=_json_value)


def subscribers(session: Session, event: str) -> list[int]:
    """The active endpoints that receive ``event``, in id order."""
    rows = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events)
                           .where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id))
    return [endpoint_id for endpoint_id, events in rows if event in events.split(",")]


def _add(session: Session, endpoint_ids: list[int], event: str, payload: Mapping[str, Any],
         at: datetime) -> int:
    if not endpoint_ids:
        if event not in BY_NAME:
            raise ValueError(f"unknown webhook event {event!r}")
        return 0
    event_id = uuid.uuid4().hex
    text = body(event, event_id, payload, at)
    # One executemany in the caller's transaction (no ORM objects: about half the cost of add_all + flush).
    session.execute(insert(WebhookDelivery), [
        {"endpoint_id": endpoint_id, "event": event, "event_id": event_id, "payload": text, "created_at": at,
         "status": "pending", "attempts": 0, "next_attempt_at": at, "last_error": ""}
        for endpoint_id in endpoint_ids])
    return len(endpoint_ids)


def enqueue(session: Session, event: str, payload: Mapping[str, Any], *, at: datetime) -> int:
    """Queues ``event`` for every active endpoint subscribed to it, in ``session``'s transaction (rolled
    back with it); answers how many deliveries were queued. One event id for all of them."""
    return _add(session, subscribers(session, event), event, payload, at)


def enqueue_built(session: Session, event: str, build: Callable[[], Mapping[str, Any]], *, at: datetime) -> int:
    """As ``enqueue``, calling ``build`` for the payload only when an endpoint takes the event: the call events'
    payloads read the customer and the recording, work the controller saves when nobody listens."""
    endpoint_ids = subscribers(session, event)
    return _add(session, endpoint_ids, event, build() if endpoint_ids else {}, at)


def enqueue_to(session: Session, endpoint_id: int, event: str, payload: Mapping[str, Any], *,
               at: datetime) -> int:
    """Queues ``event`` for one endpoint whatever its subscriptions ("send test event")."""
    return _add(session, [endpoint_id], event, payload, at)
