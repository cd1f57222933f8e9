"""Outgoing webhooks and the screen pop's customer lookup: (a) and (b) without Asterisk, (c) with it.

    .venv/bin/python bench/webhooks.py [--deliveries 5000] [--endpoints 4] [--customers 1000000]
                                       [--lookups 2000] [--pg URL|cluster] [--skip-deliveries] [--skip-lookup]

(a) Deliveries per second: a migrated SQLite database (and PostgreSQL with --pg), --endpoints endpoints
    subscribed to call.finished, all pointing at a local aiohttp receiver that answers 200 (in its own thread
    and event loop, as a real receiver would be another process); --deliveries deliveries are enqueued
    (deliveries / endpoints events, each through ``outbox.enqueue`` in its own transaction, which also gives
    the enqueue cost per event), then the real ``Sender`` runs until every one is delivered.
    Goals: >= 200 deliveries/s on SQLite; enqueue well under 1 ms an event (it runs in the writer's
    transaction of the fact it reports).
(b) Customer lookup by number with --customers customers (one number each, bulk-inserted: executemany on
    SQLite, COPY on PostgreSQL), --lookups random lookups of existing and unknown numbers through
    ``acd.records.customer_card`` (what the screen pop calls), one session each as the pop does. Goal: p99
    under 10 ms.

--pg URL runs both on that PostgreSQL database too (its tables are dropped and created: give it a
throwaway database); --pg cluster starts a throwaway cluster (tests/support/postgres.py; fsync off).

(c) Call set-up p50/p95 with and without an endpoint whose receiver never answers, on a real Asterisk with
    sipp callers and agent phones (bench/webhooks_calls.py; --calls 0 skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import delete, func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.acd.records import customer_card
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.base import Base
from callcenter.db.engine import Database
from callcenter.webhooks import admin, outbox
from callcenter.webhooks.models import WebhookDelivery, WebhookEndpoint
from callcenter.webhooks.sender import Sender
from callcenter.webhooks.settings import WebhooksSettings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@contextmanager
def receiver(hang: bool = False) -> Iterator[tuple[str, list[int]]]:
    """An aiohttp receiver on 127.0.0.1 in its own thread and loop: (its base URL, a one-item request count).
    ``hang``: it never answers."""
    count = [0]
    ready = threading.Event()
    found: dict[str, object] = {}

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        count[0] += 1
        if hang:
            await asyncio.sleep(3600)
        return web.Response(text="ok")

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        found["port"] = runner.addresses[0][1]
        found["loop"], found["runner"] = loop, runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{found['port']}", count
    finally:
        loop = found["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def fresh(url: str) -> Database:
    db = Database(url)
    if not url.startswith("sqlite"):
        with db.engine.begin() as connection:  # a throwaway database: start from nothing
            Base.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    db.migrate()
    return db


# -- (a) deliveries per second ------------------------------------------------------------------------------

def deliveries(url: str, total: int, endpoints: int) -> None:
    db = fresh(url)
    with receiver() as (base, count):
        with db.session() as session:
            for n in range(endpoints):
                admin.create_endpoint(session, name=f"bench-{n}", url=f"{base}/ep{n}", events=["call.finished"],
                                      created_by="bench")
        events = total // endpoints
        payload = {"external_id": "x", "contact_info": {"contact_phone_number": "+3222900100"},
                   "call_info": {"talk_time_duration": 65, "total_time_duration": 80, "is_lost": False}}
        costs = []
        for n in range(events):
            with db.session() as session:
                session.execute(select(1))  # the writer's transaction is already open when it enqueues
                started = time.perf_counter()
                outbox.enqueue(session, "call.finished", {**payload, "leg_id": n}, at=datetime.now(UTC))
                costs.append(time.perf_counter() - started)
        settings = WebhooksSettings(parallel=max(endpoints, 1), poll_seconds=0.05)

        async def run() -> float:
            sender = Sender(db, settings)
            task = asyncio.create_task(sender.run())
            started = time.perf_counter()
            while True:
                await asyncio.sleep(0.05)
                with db.session() as session:
                    left = session.scalar(select(func.count()).select_from(WebhookDelivery)
                                          .where(WebhookDelivery.status != "delivered"))
                if not left:
                    break
            elapsed = time.perf_counter() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return elapsed

        elapsed = asyncio.run(run())
        sent = events * endpoints
        print(f"  enqueue ({endpoints} endpoints each): p50 {percentile(costs, 0.5) * 1e6:.0f} us, "
              f"p99 {percentile(costs, 0.99) * 1e6:.0f} us an event (goal: well under 1 ms)")
        print(f"  {sent} deliveries ({count[0]} requests received) in {elapsed:.2f} s: {sent / elapsed:,.0f} "
              f"deliveries/s (goal >= 200)")
    with db.session() as session:
        session.execute(delete(WebhookEndpoint))
    db.dispose()


# -- (b) customer lookup ------------------------------------------------------------------------------------

def number_of(n: int) -> str:
    return f"+3222{n:07d}"


def fill_customers(db: Database, total: int) -> float:
    started = time.perf_counter()
    now = datetime.now(UTC)
    chunk = 50_000
    if db.engine.dialect.name == "postgresql":
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy("COPY customers (id, name, note, email, company, created_at, updated_at) "  # type: ignore[attr-defined]
                             "FROM STDIN") as copy:
                for n in range(1, total + 1):
                    copy.write_row((n, f"Customer {n}", "", "", "", now, now))
            with cursor.copy("COPY customer_phones (id, customer_id, number) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for n in range(1, total + 1):
                    copy.write_row((n, n, number_of(n)))
            raw.commit()
        finally:
            raw.close()
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE customers")
            connection.exec_driver_sql("ANALYZE customer_phones")
    else:
        with db.engine.begin() as connection:
            for first in range(1, total + 1, chunk):
                ids = range(first, min(total, first + chunk - 1) + 1)
                connection.execute(insert(Customer), [
                    {"id": n, "name": f"Customer {n}", "note": "", "email": "", "company": "", "created_at": now,
                     "updated_at": now} for n in ids])
                connection.execute(insert(CustomerPhone), [
                    {"id": n, "customer_id": n, "number": number_of(n)} for n in ids])
    return time.perf_counter() - started


def lookups(url: str, customers: int, count: int) -> None:
    db = fresh(url)
    filled = fill_customers(db, customers)
    print(f"  {customers:,} customers inserted in {filled:.1f} s")
    rng = random.Random(15)
    wanted = [number_of(rng.randint(1, customers)) if i % 4 else number_of(customers + 1 + i)
              for i in range(count)]  # a quarter unknown numbers
    times, found = [], 0
    for number in wanted:
        started = time.perf_counter()
        with db.session() as session:
            card = customer_card(session, number)
        times.append(time.perf_counter() - started)
        found += card is not None and bool(card.name)
    print(f"  {count} screen-pop cards ({found} known): p50 {percentile(times, 0.5) * 1000:.2f} ms, "
          f"p99 {percentile(times, 0.99) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms (goal: p99 < 10 ms)")
    bare = []  # the number -> customer query alone (the index), without the card's other reads
    with db.session() as session:
        for number in wanted:
            started = time.perf_counter()
            session.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.number == number))
            bare.append(time.perf_counter() - started)
    print(f"  the number lookup alone: p50 {percentile(bare, 0.5) * 1000:.3f} ms, "
          f"p99 {percentile(bare, 0.99) * 1000:.3f} ms")
    db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--pg", metavar="URL|cluster", help="also on PostgreSQL (a throwaway database)")
    parser.add_argument("--skip-deliveries", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    parser.add_argument("--calls", type=int, default=60, help="calls per phase of (c); 0 skips it")
    parser.add_argument("--rate", type=float, default=1.5, help="calls per second in (c)")
    args = parser.parse_args()
    cluster = None
    targets = []
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        targets.append(("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}"))
        if args.pg == "cluster":
            from tests.support.postgres import Cluster
            cluster = Cluster()
            targets.append(("PostgreSQL (throwaway cluster, fsync off)", cluster.start()))
        elif args.pg:
            targets.append(("PostgreSQL", args.pg))
        try:
            for name, url in targets:
                print(f"{name}:")
                if not args.skip_deliveries:
                    deliveries(url, args.deliveries, args.endpoints)
                if not args.skip_lookup:
                    lookups(url.replace("bench.db", "customers.db"), args.customers, args.lookups)
        finally:
            if cluster is not None:
                cluster.stop()
    if args.calls > 0:
        from bench.webhooks_calls import call_setup
        with receiver(hang=True) as (base, _):
            print(call_setup(args.calls, args.rate, f"{base}/hang"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
