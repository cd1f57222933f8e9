"""What the webhooks page and CLI read and change (webhooks/http.py, webhooks/cli.py): endpoints (create,
change, delete, rotate the secret, send a test event), the deliveries of an endpoint with their attempts, and
"send again". Plain functions over a session for the CLI; ``WebhookAdmin`` runs them in a thread for the
pages. Bad input raises ``FieldError`` (an ``ActionRefused`` naming the form field)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.queries import ResultPage, in_thread, paging
from callcenter.errors import ActionRefused
from callcenter.webhooks import outbox
from callcenter.webhooks.catalog import BY_NAME
from callcenter.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from callcenter.webhooks.signing import new_secret

NAME_MAX = 100
URL_MAX = 2000


class FieldError(ActionRefused):
    """A form value refused, with the field it belongs to (the page shows the message next to it)."""

    error_id = "invalid-webhook"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, 400)
        self.field = field


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint as admins see it: never its secret (only its last four characters)."""

    id: int
    name: str
    url: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime
    created_by: str
    secret_hint: str
    pending: int = 0
    failed: int = 0


@dataclass(frozen=True)
class AttemptInfo:
    at: datetime
    status_code: int | None
    error: str
    duration_ms: int
    response_excerpt: str


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    endpoint_id: int
    event: str
    event_id: str
    payload: str
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str
    delivered_at: datetime | None
    tries: tuple[AttemptInfo, ...] = ()


def _info(endpoint: WebhookEndpoint, pending: int = 0, failed: int = 0) -> EndpointInfo:
    return EndpointInfo(endpoint.id, endpoint.name, endpoint.url, endpoint.event_names, endpoint.active,
                        endpoint.created_at, endpoint.created_by, "…" + endpoint.secret[-4:], pending, failed)


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise FieldError("name", f"1-{NAME_MAX} characters, no control characters")
    return name


def check_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > URL_MAX or any(c.isspace() or ord(c) < 32 for c in url):
        raise FieldError("url", f"an http:// or https:// address of at most {URL_MAX} characters, no spaces")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when it is not a number
    except ValueError:
        raise FieldError("url", "not a valid address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError("url", "must start with http:// or https:// and name a host")
    if port == 0 or parts.username or parts.password:
        raise FieldError("url", "no port 0 and no user or password in the address")
    return url


def check_events(events: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in chosen if e not in BY_NAME]
    if unknown:
        raise FieldError("events", f"unknown event {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    if not chosen:
        raise FieldError("events", "choose at least one event")
    return tuple(e for e in BY_NAME if e in chosen)  # in the catalogue's order


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise ActionRefused(f"No webhook endpoint {endpoint_id}", 404)
    return endpoint


def create_endpoint(session: Session, *, name: str, url: str, events: Iterable[str], active: bool = True,
                    created_by: str, now: datetime | None = None) -> tuple[EndpointInfo, str]:
    """A new endpoint and its secret (shown this once; rotate_secret makes a new one)."""
    name, url, chosen = check_name(name), check_url(url), check_events(events)
    secret = new_secret()
    endpoint = WebhookEndpoint(name=name, url=url, events=",".join(chosen), secret=secret, active=active,
                               created_at=now or datetime.now(UTC), created_by=created_by[:64])
    session.add(endpoint)
    session.flush()
    return _info(endpoint), secret


def update_endpoint(session: Session, endpoint_id: int, *, name: str, url: str, events: Iterable[str],
                    active: bool) -> EndpointInfo:
    endpoint = _endpoint(session, endpoint_id)
    endpoint.name, endpoint.url = check_name(name), check_url(url)
    endpoint.events, endpoint.active = ",".join(check_events(events)), active
    return _info(endpoint)


def delete_endpoint(session: Session, endpoint_id: int) -> EndpointInfo:
    """Removes the endpoint with its deliveries and attempts."""
    endpoint = _endpoint(session, endpoint_id)
    info = _info(endpoint)
    session.delete(endpoint)
    session.flush()
    return info


def rotate_secret(session: Session, endpoint_id: int) -> tuple[EndpointInfo, str]:
    """A new secret for the endpoint: pending deliveries are signed with it from now on."""
    endpoint = _endpoint(session, endpoint_id)
    endpoint.secret = new_secret()
    return _info(endpoint), endpoint.secret


def send_test(session: Session, endpoint_id: int, by: str, now: datetime | None = None) -> int:
    """Queues a ``webhook.test`` for this endpoint only (sent even if it is not subscribed to it)."""
    endpoint = _endpoint(session, endpoint_id)
    return outbox.enqueue_to(session, endpoint.id, "webhook.test",
                             {"endpoint": {"id": endpoint.id, "name": endpoint.name}, "sent_by": by},
                             at=now or datetime.now(UTC))


def list_endpoints(session: Session) -> list[EndpointInfo]:
    counts: dict[tuple[int, str], int] = {
        (endpoint_id, status): count for endpoint_id, status, count in session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count())
            .where(WebhookDelivery.status.in_(("pending", "failed")))
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status))}
    return [_info(e, counts.get((e.id, "pending"), 0), counts.get((e.id, "failed"), 0))
            for e in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))]


def get_endpoint(session: Session, endpoint_id: int) -> EndpointInfo:
    return _info(_endpoint(session, endpoint_id))


def _delivery(row: WebhookDelivery, tries: tuple[AttemptInfo, ...] = ()) -> DeliveryInfo:
    return DeliveryInfo(row.id, row.endpoint_id, row.event, row.event_id, row.payload, row.created_at,
                        row.status, row.attempts, row.next_attempt_at, row.last_status, row.last_error,
                        row.delivered_at, tries)


def deliveries(session: Session, endpoint_id: int | None, page: int = 1, per_page: int = 50, *,
               status: str = "") -> ResultPage[DeliveryInfo]:
    """Deliveries newest first (of one endpoint, or all), each with its attempts oldest first."""
    conditions = []
    if endpoint_id is not None:
        _endpoint(session, endpoint_id)
        conditions.append(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        conditions.append(WebhookDelivery.status == status)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions)) or 0
    pages, offset = paging(page, per_page, total)
    rows = list(session.scalars(select(WebhookDelivery).where(*conditions)
                                .order_by(WebhookDelivery.id.desc()).offset(offset).limit(per_page)))
    tries: dict[int, list[AttemptInfo]] = {row.id: [] for row in rows}
    for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(tries))
                                   .order_by(WebhookAttempt.id)):
        tries[attempt.delivery_id].append(AttemptInfo(attempt.at, attempt.status_code, attempt.error,
                                                      attempt.duration_ms, attempt.response_excerpt))
    return ResultPage(tuple(_delivery(row, tuple(tries[row.id])) for row in rows), page, pages, total)


def resend(session: Session, delivery_id: int, now: datetime | None = None) -> DeliveryInfo:
    """"Send again": the same delivery (same body, same event id) pending again, next attempt now, with a
    fresh retry horizon. Its attempts so far stay listed."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None:
        raise ActionRefused(f"No webhook delivery {delivery_id}", 404)
    row.status, row.next_attempt_at = "pending", now or datetime.now(UTC)
    row.first_attempt_at, row.delivered_at = None, None
    return _delivery(row)


class WebhookAdmin:
    """The page's reads and writes, each in a worker thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def endpoints(self) -> list[EndpointInfo]:
        return await in_thread(self.db, list_endpoints)

    async def get(self, endpoint_id: int) -> EndpointInfo:
        return await in_thread(self.db, lambda s: get_endpoint(s, endpoint_id))

    async def create(self, *, name: str, url: str, events: list[str], active: bool,
                     created_by: str) -> tuple[EndpointInfo, str]:
        return await in_thread(self.db, lambda s: create_endpoint(
            s, name=name, url=url, events=events, active=active, created_by=created_by))

    async def update(self, endpoint_id: int, *, name: str, url: str, events: list[str],
                     active: bool) -> EndpointInfo:
        return await in_thread(self.db, lambda s: update_endpoint(
            s, endpoint_id, name=name, url=url, events=events, active=active))

    async def delete(self, endpoint_id: int) -> EndpointInfo:
        return await in_thread(self.db, lambda s: delete_endpoint(s, endpoint_id))

    async def rotate(self, endpoint_id: int) -> tuple[EndpointInfo, str]:
        return await in_thread(self.db, lambda s: rotate_secret(s, endpoint_id))

    async def send_test(self, endpoint_id: int, by: str) -> int:
        return await in_thread(self.db, lambda s: send_test(s, endpoint_id, by))

    async def deliveries(self, endpoint_id: int, page: int, per_page: int) -> ResultPage[DeliveryInfo]:
        return await in_thread(self.db, lambda s: deliveries(s, endpoint_id, page, per_page))

    async def resend(self, delivery_id: int) -> DeliveryInfo:
        return await in_thread(self.db, lambda s: resend(s, delivery_id))
