"""Outgoing webhooks (callcenter/webhooks/, docs/webhooks.md) on a migrated, seeded SQLite database and a
real aiohttp receiver on 127.0.0.1: signed deliveries, retries with backoff, order per endpoint, a hanging
receiver that does not delay another endpoint, giving up after the horizon (an injected clock), "send
again", the outbox rolled back with its transaction, the signed recording links and the admin pages."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.customers.models import Customer
from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.recording import http as recording_http
from callcenter.recording.links import EXPIRED, INVALID, SignedRecordings, link_key, link_problem, signed_link
from callcenter.recording.queries import RecordingQueries
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import PanelUser
from callcenter.web import admin_pages
from callcenter.webhooks import admin, outbox
from callcenter.webhooks import http as webhooks_http
from callcenter.webhooks.admin import FieldError, WebhookAdmin
from callcenter.webhooks.cli import register
from callcenter.webhooks.models import WebhookAttempt, WebhookDelivery
from callcenter.webhooks.sender import Sender, backoff
from callcenter.webhooks.settings import WebhooksSettings
from callcenter.webhooks.signing import sign, verify
from tests.support.admin import admin_features, install_admin
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, login
from tests.unit.test_web_admin import AUDIO, USERS, password, seed

Client = TestClient[web.Request, web.Application]
FAST = WebhooksSettings(timeout=2.0, first_retry_seconds=0.05, max_retry_seconds=0.2, poll_seconds=0.05)
AT = datetime.now(UTC).replace(microsecond=0)  # deliveries are due from their creation


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("webhooks-template")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    (root / "files").mkdir()
    seed(db, root / "files")
    db.dispose()
    return root


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Database:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    shutil.copytree(template / "files", tmp_path / "files")
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    yield database  # type: ignore[misc]
    database.dispose()


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A real HTTP receiver; ``answer(path, count)`` decides each reply (status, or awaits forever)."""

    hits: list[Hit] = field(default_factory=list)
    answer: Callable[[str, int], Awaitable[int]] | None = None
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hits.append(Hit(request.path, dict(request.headers), body, time.monotonic()))
        seen = sum(1 for h in self.hits if h.path == request.path)
        status = await self.answer(request.path, seen) if self.answer else 200
        return web.Response(status=status, text=f"reply {seen} to {request.path}")

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def of(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    found.server = TestServer(app, host="127.0.0.1")
    await found.server.start_server()
    yield found
    await found.server.close()


def add_endpoint(db: Database, url: str, events: tuple[str, ...] = ("call.finished",),
                 **kwargs: Any) -> tuple[int, str]:
    with db.session() as session:
        info, secret = admin.create_endpoint(session, name="crm", url=url, events=events, created_by="test",
                                             **kwargs)
    return info.id, secret


def enqueue(db: Database, event: str = "call.finished", **payload: Any) -> int:
    with db.session() as session:
        return outbox.enqueue(session, event, payload, at=AT)


def rows(db: Database) -> list[WebhookDelivery]:
    with db.session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def attempts(db: Database, delivery_id: int) -> list[WebhookAttempt]:
    with db.session() as session:
        return list(session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                                    .order_by(WebhookAttempt.id)))


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Sender], None]]:
    tasks: list[asyncio.Task[None]] = []

    def start(sender: Sender) -> None:
        tasks.append(asyncio.create_task(sender.run()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- signing -------------------------------------------------------------------------------------------

def test_signature_verifies_and_refuses_tampering_other_secrets_and_old_timestamps() -> None:
    body, now = b'{"event":"call.finished"}', 1_900_000_000
    header = sign("whsec_a", now, body)
    assert header.startswith("v1=") and len(header) == 3 + 64
    assert verify("whsec_a", header, str(now), body, now=now + 10)
    assert verify("whsec_a", f"v1=00, {header}", str(now), body, now=now)  # several signatures: one must match
    assert not verify("whsec_a", header, str(now), body + b" ", now=now)
    assert not verify("whsec_b", header, str(now), body, now=now)
    assert not verify("whsec_a", header, str(now + 1), body, now=now)
    assert not verify("whsec_a", header, str(now), body, now=now + 301)
    assert not verify("whsec_a", header, "12a", body, now=now)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    settings = WebhooksSettings()
    assert [backoff(settings, n, lambda lo, hi: 1.0) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(settings, 30, lambda lo, hi: 1.2) == 3600
    assert backoff(settings, 2, lambda lo, hi: lo) == 8 and backoff(settings, 2, lambda lo, hi: hi) == 12


# --- the outbox ----------------------------------------------------------------------------------------

def test_enqueue_writes_one_delivery_per_subscribed_active_endpoint_with_the_envelope(db: Database) -> None:
    first, _ = add_endpoint(db, "http://127.0.0.1:9/a", ("call.finished", "call.accepted"))
    add_endpoint(db, "http://127.0.0.1:9/b", ("call.accepted",))
    add_endpoint(db, "http://127.0.0.1:9/c", ("call.finished",), active=False)
    assert enqueue(db, "call.finished", external_id="x1", call_info={"is_lost": False}) == 1
    [row] = rows(db)
    assert (row.endpoint_id, row.status, row.attempts, row.next_attempt_at) == (first, "pending", 0, AT)
    body = json.loads(row.payload)
    assert body == {"event": "call.finished", "event_id": row.event_id, "notification_time": AT.isoformat(),
                    "notification_name": "Call finished", "external_id": "x1", "call_info": {"is_lost": False}}
    assert len(row.event_id) == 32
    assert enqueue(db, "call.accepted") == 2
    assert len({r.event_id for r in rows(db)[1:]}) == 1  # one event, one id, whatever the endpoints
    assert enqueue(db, "ticket.created") == 0
    with pytest.raises(ValueError, match="unknown webhook event"):
        enqueue(db, "call.nope")
    with pytest.raises(ValueError, match="event_id"):
        enqueue(db, "call.finished", event_id="mine")


def test_the_outbox_row_rolls_back_with_the_callers_transaction(db: Database) -> None:
    add_endpoint(db, "http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Customer(name="Fact", created_at=AT, updated_at=AT))
        assert outbox.enqueue(session, "call.finished", {"external_id": "x"}, at=AT) == 1
        raise RuntimeError("the fact could not be written")
    assert rows(db) == []
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "Fact")) == 0


# --- the sender ----------------------------------------------------------------------------------------

async def test_a_delivery_arrives_signed_with_the_idempotency_key(
        db: Database, receiver: Receiver, running: Callable[[Sender], None], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, secret = add_endpoint(db, receiver.url("/hook"))
    enqueue(db, external_id="call-1")  # before the sender starts: pending rows are resumed
    running(Sender(db, FAST))
    await until(lambda: rows(db)[0].status == "delivered")
    [hit] = receiver.hits
    [row] = rows(db)
    assert hit.body == row.payload.encode()
    assert verify(secret, hit.headers["X-Callcenter-Signature"], hit.headers["X-Callcenter-Timestamp"], hit.body)
    assert hit.headers["X-Callcenter-Delivery"] == row.event_id == hit.json["event_id"]
    assert hit.headers["X-Callcenter-Event"] == "call.finished"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["User-Agent"] == "callcenter-webhooks/1"
    [attempt] = attempts(db, row.id)
    assert attempt.status_code == 200 and attempt.response_excerpt == "reply 1 to /hook" and attempt.error == ""
    assert row.attempts == 1 and row.delivered_at is not None
    assert secret not in caplog.text and secret[6:] not in caplog.text


async def test_a_500_is_retried_until_a_200_and_every_attempt_is_recorded(
        db: Database, receiver: Receiver, running: Callable[[Sender], None]) -> None:
    async def answer(path: str, seen: int) -> int:
        return 500 if seen < 3 else 200

    receiver.answer = answer
    add_endpoint(db, receiver.url("/hook"))
    enqueue(db)
    running(Sender(db, FAST))
    await until(lambda: rows(db)[0].status == "delivered")
    [row] = rows(db)
    assert [a.status_code for a in attempts(db, row.id)] == [500, 500, 200]
    assert [a.error for a in attempts(db, row.id)] == ["HTTP 500", "HTTP 500", ""]
    assert row.attempts == 3 and len({h.headers["X-Callcenter-Delivery"] for h in receiver.hits}) == 1
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    assert all(gap >= 0.03 for gap in gaps), gaps  # backoff (0.05 s +-20 %), not a tight loop


async def test_order_per_endpoint_the_second_waits_while_the_first_fails(
        db: Database, receiver: Receiver, running: Callable[[Sender], None]) -> None:
    async def answer(path: str, seen: int) -> int:
        return 503 if seen <= 3 else 200

    receiver.answer = answer
    add_endpoint(db, receiver.url("/hook"))
    for n in (1, 2, 3):
        enqueue(db, external_id=f"call-{n}")
    running(Sender(db, FAST))
    await until(lambda: all(r.status == "delivered" for r in rows(db)))
    assert [h.json["external_id"] for h in receiver.hits] == ["call-1"] * 4 + ["call-2", "call-3"]


async def test_a_hanging_receiver_does_not_delay_another_endpoint(
        db: Database, receiver: Receiver, running: Callable[[Sender], None]) -> None:
    async def answer(path: str, seen: int) -> int:
        if path == "/slow":
            await asyncio.sleep(30)
        return 200

    receiver.answer = answer
    add_endpoint(db, receiver.url("/slow"))
    add_endpoint(db, receiver.url("/fast"))
    settings = WebhooksSettings(timeout=1.5, first_retry_seconds=5, poll_seconds=0.05)
    enqueue(db)
    running(Sender(db, settings))
    await until(lambda: len(receiver.of("/slow")) == 1, 2)
    started = time.monotonic()
    enqueue(db, external_id="later")  # while /slow still hangs
    await until(lambda: len(receiver.of("/fast")) == 2, 1.0)
    assert time.monotonic() - started < 1.0
    slow = [r for r in rows(db) if r.endpoint_id == 1]
    assert all(r.status == "pending" for r in slow)
    await until(lambda: rows(db)[0].attempts == 1, 3)
    [attempt] = attempts(db, rows(db)[0].id)
    assert attempt.status_code is None and attempt.error == "no answer within 1.5 s"
    assert 1400 <= attempt.duration_ms < 3000


async def test_gives_up_after_the_horizon_then_the_next_delivery_goes(
        db: Database, receiver: Receiver, running: Callable[[Sender], None]) -> None:
    async def answer(path: str, seen: int) -> int:
        return 200 if receiver.hits[-1].json.get("external_id") == "second" else 500

    receiver.answer = answer
    clock = [datetime.now(UTC)]
    add_endpoint(db, receiver.url("/hook"))
    enqueue(db, external_id="first")
    enqueue(db, external_id="second")
    settings = WebhooksSettings(first_retry_seconds=0.05, max_retry_seconds=0.05, poll_seconds=0.05)
    running(Sender(db, settings, now=lambda: clock[0], rand=lambda lo, hi: 1.0))
    await until(lambda: rows(db)[0].attempts == 1)
    clock[0] += timedelta(hours=23, minutes=59)  # not yet: still retried
    await until(lambda: rows(db)[0].attempts >= 2)
    assert rows(db)[0].status == "pending" and rows(db)[1].attempts == 0
    clock[0] += timedelta(minutes=2)
    await until(lambda: rows(db)[1].status == "delivered")
    first = rows(db)[0]
    assert first.status == "failed" and first.last_status == 500 and first.last_error == "HTTP 500"
    assert first.first_attempt_at is not None and first.next_attempt_at - first.first_attempt_at < timedelta(days=2)


async def test_send_again_keeps_the_event_id_and_body(db: Database, receiver: Receiver,
                                                     running: Callable[[Sender], None]) -> None:
    add_endpoint(db, receiver.url("/hook"))
    enqueue(db, external_id="again")
    running(Sender(db, FAST))
    await until(lambda: rows(db)[0].status == "delivered")
    with db.session() as session:
        info = admin.resend(session, rows(db)[0].id)
    assert info.status == "pending"
    await until(lambda: len(receiver.hits) == 2 and rows(db)[0].status == "delivered")
    first, second = receiver.hits
    assert first.body == second.body
    assert first.headers["X-Callcenter-Delivery"] == second.headers["X-Callcenter-Delivery"]
    assert len(attempts(db, rows(db)[0].id)) == 2


async def test_an_unreachable_receiver_is_a_failed_attempt(db: Database, running: Callable[[Sender], None]) -> None:
    add_endpoint(db, "http://127.0.0.1:9/closed")
    enqueue(db)
    running(Sender(db, FAST))
    await until(lambda: rows(db)[0].attempts >= 1)
    row = rows(db)[0]
    assert row.status == "pending" and row.last_status is None and "Connect" in row.last_error


# --- recording links -----------------------------------------------------------------------------------

def test_recording_links_expire_and_refuse_tampering() -> None:
    key = link_key("session-key")
    assert key != link_key("other") and len(key) == 32
    link = signed_link("https://cc.example/", "rec-n1", key, timedelta(hours=1), now=1_000)
    assert link.startswith("https://cc.example/recordings/rec-n1/signed?expires=4600&sig=")
    sig = link.rsplit("sig=", 1)[1]
    assert link_problem(key, "rec-n1", "4600", sig, now=4599) == ""
    assert link_problem(key, "rec-n1", "4600", sig, now=4600) == EXPIRED
    assert link_problem(key, "rec-s1", "4600", sig, now=1_000) == INVALID
    assert link_problem(key, "rec-n1", "9600", sig, now=1_000) == INVALID
    assert link_problem(link_key("other"), "rec-n1", "4600", sig, now=1_000) == INVALID
    assert link_problem(key, "rec-n1", "", "", now=1_000) == INVALID


async def test_the_signed_route_serves_the_audio_without_a_login(db: Database, tmp_path: Path) -> None:
    key = link_key("k")
    app = build_app(FakeBackend())  # the panel's middlewares: the link needs no login
    admin_pages.install(app, AdminScopes(db))
    recording_http.install(app, RecordingQueries(db, tmp_path / "files"), SignedRecordings(db, tmp_path / "files", key))
    async with TestClient(TestServer(app)) as client:
        link = signed_link("", "rec-n1", key, timedelta(minutes=5))
        response = await client.get(link)
        assert response.status == 200 and await response.read() == AUDIO
        assert response.headers["Content-Type"] == "audio/mpeg"
        tampered = await client.get(link.replace("rec-n1", "rec-s1"))
        assert tampered.status == 403 and INVALID in await tampered.text()
        old = signed_link("", "rec-n1", key, timedelta(minutes=5), now=time.time() - 3600)
        expired = await client.get(old)
        assert expired.status == 403 and EXPIRED in await expired.text()
        missing = await client.get(signed_link("", "rec-x", key, timedelta(minutes=5)))  # its file is gone
        assert missing.status == 404


# --- the pages and the CLI -----------------------------------------------------------------------------

@pytest.fixture
async def pages(db: Database, tmp_path: Path) -> AsyncIterator[Client]:
    backend = FakeBackend()
    with db.session() as session:
        backend.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                         for u in session.scalars(select(User))}
    backend.passwords = {name: password(name) for name in USERS}
    app = install_admin(build_app(backend), admin_features(db, tmp_path / "files"))
    webhooks_http.install(app, WebhookAdmin(db))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_pages_create_with_errors_next_to_fields_escape_and_are_for_top_admins(
        db: Database, pages: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    csrf = (await login(pages, "root", password("root"))).csrf
    bad = await pages.post("/admin/webhooks", data={"csrf": csrf, "name": "crm", "url": "ftp://x.example/",
                                                    "events": "call.finished", "active": "1"})
    html = await bad.text()
    assert bad.status == 400 and '<p class="error field-error" id="error-url">must start with http://' in html
    assert 'value="ftp://x.example/"' in html  # the form keeps what was typed
    none = await pages.post("/admin/webhooks", data={"csrf": csrf, "name": "crm", "url": "https://x.example/"})
    assert none.status == 400 and 'id="error-events">choose at least one event' in await none.text()

    hostile = '<script>alert(1)</script>'
    created = await pages.post("/admin/webhooks", data=[
        ("csrf", csrf), ("name", hostile), ("url", "https://crm.example/hook?a=1&b=<x>"),
        ("events", "call.finished"), ("events", "ticket.created"), ("active", "1")])
    html = await created.text()
    assert created.status == 200, html
    secret = html.split('<code id="webhook-secret-value">', 1)[1].split("<", 1)[0]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert hostile not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    listed = await (await pages.get("/admin/webhooks")).text()
    assert secret not in listed and "&lt;script&gt;" in listed and hostile not in listed
    with db.session() as session:
        [endpoint] = admin.list_endpoints(session)
    assert endpoint.events == ("call.finished", "ticket.created")

    page = await (await pages.get(f"/admin/webhooks/{endpoint.id}")).text()
    assert hostile not in page and "Nothing sent to this endpoint yet." in page and secret not in page
    test = await pages.post(f"/admin/webhooks/{endpoint.id}/test", data={"csrf": csrf})
    assert test.status == 200 and "A test event is queued" in await test.text()
    [row] = rows(db)
    assert row.event == "webhook.test"
    resent = await pages.post(f"/admin/webhooks/deliveries/{row.id}/resend", data={"csrf": csrf})
    assert resent.status == 200 and "queued again (same event id)" in await resent.text()
    rotated = await pages.post(f"/admin/webhooks/{endpoint.id}/rotate", data={"csrf": csrf})
    new_secret = (await rotated.text()).split('<code id="webhook-secret-value">', 1)[1].split("<", 1)[0]
    assert new_secret.startswith("whsec_") and new_secret != secret
    assert secret not in caplog.text and new_secret not in caplog.text
    edit = await pages.post(f"/admin/webhooks/{endpoint.id}", data={"csrf": csrf, "name": "crm", "url": "nope",
                                                                     "events": "call.finished"})
    assert edit.status == 400 and 'id="error-url"' in await edit.text()
    saved = await pages.post(f"/admin/webhooks/{endpoint.id}", data={
        "csrf": csrf, "name": "crm", "url": "http://crm.example/", "events": "call.accepted"})
    assert saved.status == 200 and "The endpoint is saved." in await saved.text()
    with db.session() as session:
        assert admin.get_endpoint(session, endpoint.id).active is False  # unchecked box: inactive
    no_csrf = await pages.post(f"/admin/webhooks/{endpoint.id}/delete", data={})
    assert no_csrf.status == 403
    deleted = await pages.post(f"/admin/webhooks/{endpoint.id}/delete", data={"csrf": csrf})
    assert deleted.status == 200 and rows(db) == []
    assert (await pages.get(f"/admin/webhooks/{endpoint.id}")).status == 404

    for who in ("nadmin", "2001"):  # a unit admin and an agent
        pages.session.cookie_jar.clear()
        await login(pages, who, password(who))
        assert (await pages.get("/admin/webhooks")).status == 403
        assert (await pages.get("/admin/webhooks/1")).status == 403


def test_the_domain_refuses_bad_urls_and_events() -> None:
    for url in ("", "javascript:alert(1)", "http://", "https://a b/", "http://u:p@host/", "http://h:x/"):
        with pytest.raises(FieldError) as refused:
            admin.check_url(url)
        assert refused.value.field == "url"
    assert admin.check_url(" https://crm.example:8443/hook ") == "https://crm.example:8443/hook"
    with pytest.raises(FieldError, match="unknown event"):
        admin.check_events(["call.finished", "call.bogus"])


def test_cli_parses_its_actions() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["webhooks", "add", "crm", "https://crm.example/", "--events", "all"])
    assert (args.action, args.name, args.url, args.events, args.inactive) == (
        "add", "crm", "https://crm.example/", "all", False)
    assert parser.parse_args(["webhooks", "resend", "7"]).id == 7
    assert parser.parse_args(["webhooks", "deliveries", "--status", "failed"]).status == "failed"


async def test_a_database_outage_is_logged_once_and_the_sender_carries_on(
        db: Database, receiver: Receiver, running: Callable[[Sender], None], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from callcenter.webhooks import sender as sender_module

    caplog.set_level(logging.INFO)
    real, failures = sender_module.due_endpoints, [0]

    def down(*args: Any) -> list[int]:  # the database is unreachable for the first ten polls
        if failures[0] < 10:
            failures[0] += 1
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return real(*args)

    monkeypatch.setattr(sender_module, "due_endpoints", down)
    add_endpoint(db, receiver.url("/hook"))
    enqueue(db)
    running(Sender(db, FAST))
    await until(lambda: rows(db)[0].status == "delivered")
    assert failures[0] == 10
    outage = [r for r in caplog.records if "database cannot be reached" in r.getMessage()]
    back = [r for r in caplog.records if "database is back" in r.getMessage()]
    assert len(outage) == 1 and len(back) == 1


def test_the_service_makes_recording_links_the_recording_route_accepts(db: Database) -> None:
    from callcenter.webhooks.plugin import Webhooks

    key = link_key("the-session-key")
    webhooks = Webhooks(db, WebhooksSettings(recording_link_hours=2), "https://cc.example/", key)
    link = webhooks.recording_link("rec-n1")
    assert link.startswith("https://cc.example/recordings/rec-n1/signed?expires=")
    expires, sig = (part.split("=", 1)[1] for part in link.split("?", 1)[1].split("&"))
    assert abs(int(expires) - (time.time() + 7200)) < 5
    assert link_problem(key, "rec-n1", expires, sig) == ""
    add_endpoint(db, "http://127.0.0.1:9/a")
    with db.session() as session:
        assert webhooks.enqueue(session, "call.finished", {"external_id": "x"}, at=AT) == 1
