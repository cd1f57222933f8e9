"""Outgoing webhooks end to end: real calls through the queues and the IVR, a real HTTP receiver in the test;
every event arrives signed with the seed's fields; a receiver down for 60 s then back gets every event
once, in order; an endpoint that never answers holds up nobody (docs/webhooks.md)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from callcenter.db.models import User
from callcenter.webhooks.admin import create_endpoint
from callcenter.webhooks.catalog import NAMES
from callcenter.webhooks.models import WebhookAttempt, WebhookDelivery
from callcenter.webhooks.signing import verify
from tests.integration.conftest import AgentFactory
from tests.support import sipp
from tests.support.system import System, wait_for

pytestmark = pytest.mark.integration

DOWN_SECONDS = 60


class Receiver:
    """An HTTP server that records what it is sent (``hang``: never answers)."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.received: list[dict[str, Any]] = []
        self.port = sipp.free_tcp_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hang:
            await asyncio.sleep(3600)
        self.received.append({"headers": dict(request.headers), "raw": body, "json": json.loads(body)})
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r["json"] for r in self.received if r["json"]["event"] == name]


def endpoint(system: System, name: str, url: str) -> tuple[int, str]:
    with system.db.session() as session:
        info, secret = create_endpoint(session, name=name, url=url, events=NAMES, created_by="test")
        return info.id, secret


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    return await wait_for(check, timeout, what)


def caller(system: System, did: str, number: str, **kwargs: Any) -> sipp.Sipp:
    return sipp.caller(system.sip_port, did, caller=number, caller_name="", **kwargs)


async def run(call: sipp.Sipp) -> None:
    result = await call.run(30)
    assert result.ok, result.output


async def test_webhooks_for_real_calls_signed_complete_and_in_order_after_an_outage(
        fresh_system: System, agent: AgentFactory) -> None:
    good, hanging = Receiver(), Receiver(hang=True)
    await good.start()
    await hanging.start()
    try:
        await _deliveries(fresh_system, agent, good, hanging)
    finally:
        await good.stop()
        await hanging.stop()


async def _deliveries(system: System, agent: AgentFactory, good: Receiver, hanging: Receiver) -> None:
    good_id, secret = endpoint(system, "crm", good.url)
    hanging_id, _ = endpoint(system, "stuck", hanging.url)
    number = "601100061"
    await agent("2003")
    with system.db.session() as session:
        carol_id = session.scalar(select(User.id).where(User.extension == "2003"))

    # An answered, recorded call: accepted, leg finished, finished, recording completed, ticket created.
    await run(caller(system, "1205", number, hangup_after_ms=3000))
    finished = await until(lambda: good.events("call.finished"), 30, "call.finished")
    recorded = await until(lambda: good.events("call.recording_completed"), 60, "call.recording_completed")
    for request in good.received:
        headers = request["headers"]
        assert verify(secret, headers["X-Callcenter-Signature"], headers["X-Callcenter-Timestamp"], request["raw"])
        assert headers["X-Callcenter-Delivery"] == request["json"]["event_id"]
    [accepted] = good.events("call.accepted")
    [leg] = good.events("call.leg_finished")
    [created] = good.events("ticket.created")
    [done] = finished
    assert done["notification_name"] == "Call finished" and done["virtual_phone_number"] == "1205"
    assert done["contact_info"]["contact_phone_number"] == number
    assert done["employee_info"]["employee_id"] == carol_id
    info = done["call_info"]
    assert info["direction"] == "in" and info["is_lost"] is False and info["call_source"] == "did"
    assert 1.5 < info["talk_time_duration"] <= info["total_time_duration"]
    assert info["call_session_id"] == accepted["call_info"]["call_session_id"] == leg["call_info"]["call_session_id"]
    assert done["leg_ids"] == [leg["leg_id"]] == [accepted["leg_id"]]
    assert done["group_ids"] == ["recorded"]
    assert created["ticket"]["status"] == "open" and created["contact_info"]["contact_phone_number"] == "+48" + number
    link = recorded[0]["call_record_file_info"]["file_link"]
    async with aiohttp.ClientSession() as client, client.get(link) as response:  # no login: the link is signed
        assert response.status == 200 and len(await response.read()) > 1000
    async with aiohttp.ClientSession() as client, client.get(link.replace("sig=", "sig=0")) as response:
        assert response.status == 403

    # The receiver is down for a minute: what happens meanwhile waits in the outbox and is retried.
    await good.stop()
    before = len(good.received)
    down_since = time.monotonic()
    for missed in ("601100062", "601100063"):
        await run(caller(system, "1100", missed, hangup_after_ms=1500))

    def failed_attempts() -> int:
        with system.db.session() as session:
            return len(session.scalars(select(WebhookAttempt).join(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == good_id, WebhookAttempt.status_code.is_(None))).all())
    await until(lambda: failed_attempts() >= 2, 20, "failed attempts while the receiver is down")
    await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))
    await good.start()

    def outbox_order() -> list[str]:
        with system.db.session() as session:
            return list(session.scalars(select(WebhookDelivery.event_id).where(
                WebhookDelivery.endpoint_id == good_id).order_by(WebhookDelivery.id)))
    await until(lambda: len(good.received) >= len(outbox_order()), 60, "every event after the outage")
    received = [r["json"]["event_id"] for r in good.received]
    assert len(received) == len(set(received)), "an event arrived twice"
    assert received == outbox_order(), "not in the outbox's order"
    after = [r["json"] for r in good.received[before:]]
    assert [e["event"] for e in after if e["event"] == "call.finished"] == ["call.finished", "call.finished"]
    assert {e["contact_info"]["contact_phone_number"] for e in after if e["event"] == "call.finished"} == {
        "601100062", "601100063"}
    assert all(e["call_info"]["is_lost"] for e in after if e["event"] == "call.finished")

    # The endpoint that never answers: its first delivery times out again and again, alone.
    with system.db.session() as session:
        stuck = session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == hanging_id)
                                .order_by(WebhookDelivery.id)).all()
        assert stuck and stuck[0].status == "pending" and stuck[0].attempts >= 2
        assert all(d.attempts == 0 for d in stuck[1:])
