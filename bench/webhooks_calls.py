"""Call set-up with and without a webhook receiver that never answers (bench/webhooks.py runs it).

A real controller and Asterisk (tests/support/system.py, SQLite), three agents whose sipp phones answer at
once (2001-2003 in queue "idle", longest idle), and a sipp caller placing --calls calls at --rate calls per
second to DID 1200, each talking 1.5 s. Run twice: (a) no webhook endpoint; (b) an endpoint subscribed to
every event whose receiver accepts the connection and never answers (each delivery times out, is retried,
and holds up only its endpoint). Call set-up is the ACD's own record of it: from the caller entering the
queue to the agent's phone answering (``acd_calls.wait_seconds``), p50 and p95 per phase. Goal: (b) within
noise of (a): a dead receiver never delays a call.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from callcenter.db.models import AcdCall
from callcenter.webhooks.admin import create_endpoint
from callcenter.webhooks.catalog import NAMES
from callcenter.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System, start_system, stop_system

AGENTS = ("2001", "2002", "2003")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _phase(system: System, calls: int, rate: float) -> list[float]:
    since = datetime.now(UTC)
    result = await sipp.caller(system.sip_port, "1200", calls=calls, rate=rate, caller="601000001",
                               caller_name="", hangup_after_ms=1500).run(calls / rate + 60)
    if not result.ok:
        print(f"  (sipp reported failed calls: {result.output[-300:]})")
    deadline = time.monotonic() + 30
    while True:
        with system.db.session() as session:
            rows = list(session.execute(select(AcdCall.wait_seconds, AcdCall.outcome).where(
                AcdCall.entered_at >= since, AcdCall.ended_at.is_not(None))))
        if len(rows) >= calls or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    answered = [float(wait) for wait, outcome in rows if outcome == "answered" and wait is not None]
    if len(answered) < len(rows):
        print(f"  {len(rows) - len(answered)} of {len(rows)} calls not answered")
    return answered


async def _run(calls: int, rate: float, hanging_url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-webhook-calls-") as tmp:
        system = start_system(Path(tmp), f"sqlite:///{Path(tmp) / 'cc.db'}")
        phones: list[sipp.Sipp] = []
        clients: list[PanelClient] = []
        try:
            for extension in AGENTS:
                phone = sipp.phone(system.sip_port, extension, system.password(extension), "answer")
                await phone.start()
                phones.append(phone)
            deadline = time.monotonic() + 15
            while not all(f"{e}/sip:{e}@127.0.0.1" in system.asterisk(f"pjsip show contacts like {e}")
                          for e in AGENTS):
                if time.monotonic() > deadline:
                    raise RuntimeError("the agents' phones did not register")
                await asyncio.sleep(0.2)
            for extension in AGENTS:
                client = PanelClient(system.web_url)
                await client.login(extension, system.panel_password(extension))
                await client.act("login")
                clients.append(client)
            await _phase(system, 3, 1.0)  # warm-up: first calls load caches and prompts
            without = await _phase(system, calls, rate)
            with system.db.session() as session:
                create_endpoint(session, name="never answers", url=hanging_url, events=NAMES, created_by="bench")
            hanging = await _phase(system, calls, rate)
            with system.db.session() as session:
                waiting = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
                    WebhookDelivery.status == "pending"))
                timeouts = session.scalar(select(func.count()).select_from(WebhookAttempt))
        finally:
            for client in clients:
                await client.close()
            for phone in phones:
                await phone.stop()
            stop_system(system)
    lines = [f"call set-up (queue entry to the agent's answer), {calls} calls at {rate:g}/s per phase:"]
    for name, waits in (("no endpoint", without), ("an endpoint that never answers", hanging)):
        lines.append(f"  {name:<32} answered {len(waits):>4}  p50 {_percentile(waits, 0.5) * 1000:7.1f} ms  "
                     f"p95 {_percentile(waits, 0.95) * 1000:7.1f} ms")
    lines.append(f"  meanwhile that endpoint: {waiting} deliveries pending behind its first, {timeouts} attempts "
                 "timed out")
    return "\n".join(lines)


def call_setup(calls: int, rate: float, hanging_url: str) -> str:
    return asyncio.run(_run(calls, rate, hanging_url))
