"""The background sender (docs/webhooks.md): delivers the outbox with aiohttp, in order per endpoint (an
endpoint's next delivery waits until the one before is delivered or given up), endpoints in parallel
(``[webhooks] parallel``), with exponential backoff and jitter for at least ``give_up_hours`` after the
first attempt. Every attempt is recorded in ``webhook_attempts``.

It polls the outbox every ``poll_seconds`` (one indexed query: the oldest pending delivery of each endpoint)
so the writer needs no hook, and it reads and writes the database in worker threads: a slow or dead receiver
holds one of its slots for at most ``timeout`` seconds and never the event loop. Pending rows survive a
restart (at least once: an attempt cut short by a stop is sent again, with the same event id). A database
outage is logged once, and once when it is over; the sender keeps polling.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from callcenter.webhooks.settings import WebhooksSettings
from callcenter.webhooks.signing import sign

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = "callcenter-webhooks/1"
BATCH = 50  # deliveries of one endpoint read at once (sent one after the other)
EXCERPT = 500


@dataclass(frozen=True)
class Due:
    """A pending delivery with what is needed to send it."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    event: str
    event_id: str
    payload: str
    next_attempt_at: datetime


@dataclass(frozen=True)
class Outcome:
    started: datetime
    status_code: int | None
    error: str
    duration_ms: int
    excerpt: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(settings: WebhooksSettings, attempts: int, rand: Callable[[float, float], float]) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: first_retry_seconds doubling, capped at
    max_retry_seconds, +-20 % jitter (so receivers back from an outage are not hit by every sender at once)."""
    base = min(settings.max_retry_seconds, settings.first_retry_seconds * 2 ** min(attempts - 1, 40))
    return float(min(settings.max_retry_seconds, base * rand(0.8, 1.2)))


def due_endpoints(session: Session, now: datetime, busy: set[int]) -> list[int]:
    """Active endpoints whose oldest pending delivery is due, the longest waiting first."""
    heads = select(func.min(WebhookDelivery.id)).where(WebhookDelivery.status == "pending") \
        .group_by(WebhookDelivery.endpoint_id).scalar_subquery()
    rows = session.execute(
        select(WebhookDelivery.endpoint_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(heads), WebhookDelivery.next_attempt_at <= now,
               WebhookEndpoint.active.is_(True))
        .order_by(WebhookDelivery.next_attempt_at))
    return [endpoint_id for (endpoint_id,) in rows if endpoint_id not in busy]


def pending_of(session: Session, endpoint_id: int, limit: int = BATCH) -> list[Due]:
    """The endpoint's pending deliveries in order (none when it is gone or inactive)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not endpoint.active:
        return []
    rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                                         WebhookDelivery.status == "pending")
                           .order_by(WebhookDelivery.id).limit(limit))
    return [Due(d.id, endpoint_id, endpoint.url, endpoint.secret, d.event, d.event_id, d.payload,
                d.next_attempt_at) for d in rows]


def record(session: Session, due: Due, outcome: Outcome, settings: WebhooksSettings, now: datetime,
           rand: Callable[[float, float], float]) -> bool:
    """Writes the attempt and the delivery's new state; True when the endpoint may go on to its next delivery
    (this one is delivered, given up, or gone)."""
    delivery = session.get(WebhookDelivery, due.id)
    if delivery is None or delivery.status != "pending":
        return True
    session.add(WebhookAttempt(delivery_id=due.id, at=outcome.started, status_code=outcome.status_code,
                               error=outcome.error, duration_ms=outcome.duration_ms,
                               response_excerpt=outcome.excerpt))
    delivery.attempts += 1
    delivery.last_status = outcome.status_code
    delivery.last_error = outcome.error
    first = delivery.first_attempt_at or outcome.started
    delivery.first_attempt_at = first
    if outcome.delivered:
        delivery.status, delivery.delivered_at = "delivered", now
        return True
    if now - first >= timedelta(hours=settings.give_up_hours):
        delivery.status = "failed"
        log.warning("webhooks: gave up delivery %d (%s) to endpoint %d after %d attempts: %s", due.id,
                    due.event, due.endpoint_id, delivery.attempts, outcome.error)
        return True
    delivery.next_attempt_at = now + timedelta(seconds=backoff(settings, delivery.attempts, rand))
    return False


class Sender:
    """``run()`` is the background task; ``now`` and ``rand`` are injectable for tests (a clock that jumps a
    day, no jitter)."""

    def __init__(self, db: Database, settings: WebhooksSettings, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 rand: Callable[[float, float], float] = random.uniform) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.rand = rand
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._database_ok = True

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        # No connection cap of aiohttp's own: ``parallel`` bounds the endpoints in flight, one request each.
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
                                         headers={"User-Agent": USER_AGENT}) as http:
            self._http = http
            try:
                while True:
                    await self.poll()
                    await asyncio.sleep(self.settings.poll_seconds)
            finally:
                workers = list(self._workers.values())
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self._http = None

    async def poll(self) -> None:
        """Starts a worker for each endpoint with a due delivery, as many as free slots allow."""
        free = self.settings.parallel - len(self._workers)
        if free <= 0:
            return
        busy, now = set(self._workers), self.now()
        try:
            endpoints: list[int] = await asyncio.to_thread(
                self._in_session, lambda s: due_endpoints(s, now, busy))
        except (SQLAlchemyError, OSError) as error:
            self._database_down(error)
            return
        self._database_up()
        for endpoint_id in endpoints[:free]:
            worker = asyncio.create_task(self._work(endpoint_id), name=f"webhook-endpoint-{endpoint_id}")
            self._workers[endpoint_id] = worker
            worker.add_done_callback(functools.partial(self._forget, endpoint_id))

    def _forget(self, endpoint_id: int, _: asyncio.Task[None]) -> None:
        self._workers.pop(endpoint_id, None)

    def _in_session(self, work: Callable[[Session], T]) -> T:
        with self.db.session() as session:
            return work(session)

    async def _work(self, endpoint_id: int) -> None:
        """One endpoint's deliveries, one after the other, until none is due or one failed (it waits)."""
        try:
            while True:
                batch = await asyncio.to_thread(self._in_session, lambda s: pending_of(s, endpoint_id))
                if not batch:
                    return
                for due in batch:
                    if due.next_attempt_at > self.now():
                        return
                    outcome = await self.send(due)
                    now = self.now()
                    go_on = await asyncio.to_thread(
                        self._in_session, lambda s, d=due, o=outcome, n=now: record(
                            s, d, o, self.settings, n, self.rand))
                    if not go_on:
                        log.info("webhooks: delivery %d (%s) to endpoint %d failed: %s; retrying later",
                                 due.id, due.event, endpoint_id, outcome.error)
                        return
        except (SQLAlchemyError, OSError) as error:
            self._database_down(error)
        except Exception:  # a bug must not stop the other endpoints: logged, retried at the next poll
            log.exception("webhooks: the sender failed on endpoint %d", endpoint_id)

    async def send(self, due: Due) -> Outcome:
        """One signed POST of the stored body; never raises for what the receiver or the network does."""
        assert self._http is not None, "send() runs inside run()"
        body = due.payload.encode()
        timestamp = int(time.time())  # the receiver's tolerance is about real time, whatever self.now says
        headers = {"Content-Type": "application/json", "X-Callcenter-Event": due.event,
                   "X-Callcenter-Delivery": due.event_id, "X-Callcenter-Timestamp": str(timestamp),
                   "X-Callcenter-Signature": sign(due.secret, timestamp, body)}
        started, clock = self.now(), time.monotonic()
        status: int | None = None
        excerpt = error = ""
        try:
            async with self._http.post(due.url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                excerpt = (await response.content.read(EXCERPT * 4)).decode("utf-8", "replace")[:EXCERPT]
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self.settings.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as failure:
            error = (f"{type(failure).__name__}: {failure}".strip())[:EXCERPT]
        return Outcome(started, status, error, round((time.monotonic() - clock) * 1000), excerpt)

    def _database_down(self, error: BaseException) -> None:
        if self._database_ok:
            self._database_ok = False
            log.warning("webhooks: the database cannot be reached (%s); deliveries wait and are retried",
                        type(error).__name__)

    def _database_up(self) -> None:
        if not self._database_ok:
            self._database_ok = True
            log.info("webhooks: the database is back; delivering again")
