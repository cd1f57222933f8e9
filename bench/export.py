"""Daily export throughput and memory: one day of N CDRs and M queue calls (2 ring attempts and
2 destinations each), exported with ``export_day`` (every file, plus the copies of each unit).

    .venv/bin/python bench/export.py [--cdrs 1000000] [--queue-calls 200000] [--units 5]
                                     [--postgres URL | --no-postgres] [--no-tracemalloc]

SQLite always; PostgreSQL on the server of ``--postgres URL`` (a scratch database is created there
and dropped after) or else on a throwaway cluster (tests/support/postgres.py, fsync off) when
PostgreSQL is installed. The export runs in a fresh child process, once for time and RSS (before
the export, and its peak during it: Linux VmHWM, reset first) and once under tracemalloc for the
peak of Python allocations: neither should grow with the number of rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Table, insert, text

from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdAttempt,
    AcdCall,
    AcdDestination,
    Call,
    CallLeg,
    Cdr,
    CdrUser,
    OrgUnit,
    User,
)

DAY = date(2025, 3, 10)
T0 = datetime(2025, 3, 10, tzinfo=UTC)
AGENTS = 100
CHUNK = 20_000


# -- data -----------------------------------------------------------------------------------------

def _chunks(rows: Iterable[tuple[Any, ...]], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def load(db: Database, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """Bulk load: COPY on PostgreSQL, executemany in chunks on SQLite."""
    count = 0
    if db.engine.dialect.name == "postgresql":
        # COPY skips the models' Python-side defaults: add them.
        defaults = {c.name: c.default.arg for c in table.columns  # type: ignore[union-attr]
                    if c.name not in columns and c.default is not None and c.default.is_scalar}
        if defaults:
            columns, extra = (*columns, *defaults), tuple(defaults.values())
            rows = (row + extra for row in rows)
        raw = db.engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            raw.commit()
        finally:
            raw.close()
        return count
    with db.engine.begin() as connection:
        for chunk in _chunks(rows):
            connection.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in chunk])
            count += len(chunk)
    return count


def generate(db: Database, cdrs: int, queue_calls: int, units: int) -> dict[str, int]:
    """One day of records: ``cdrs`` calls with their CDRs and users, ``queue_calls`` queued calls
    (60 % answered by the second agent offered, 30 % sent to voicemail, 10 % abandoned)."""
    counts: dict[str, int] = {}
    counts["org_units"] = load(db, OrgUnit.__table__, ("id", "name", "parent_id"),
                               ((u, f"Unit {u}", None) for u in range(1, units + 1)))
    counts["users"] = load(db, User.__table__, ("id", "login", "extension", "name", "sip_ha1", "roles",
                                                "org_unit_id", "created_at"),
                           ((i, f"a{i}", str(2000 + i), f"Agent {i}", "0" * 32, "agent",
                             (i % (units + 1)) or None if units else None, T0) for i in range(1, AGENTS + 1)))
    step = 86400 / max(cdrs, 1)

    def when(i: int) -> datetime:
        return T0 + timedelta(seconds=(i - 1) * step)

    counts["calls"] = load(db, Call.__table__, ("id", "linkedid", "direction", "started_at", "ended_at", "src",
                                                "dst", "state"),
                           ((i, f"L{i}", "inbound", when(i), when(i) + timedelta(seconds=70), f"06{i:08d}", "1000",
                             "done") for i in range(1, cdrs + 1)))
    counts["cdr"] = load(db, Cdr.__table__, ("id", "call_id", "linkedid", "calldate", "src_id", "src", "clid", "dst",
                                             "dst_name", "duration", "billsec", "disposition", "destination", "rate",
                                             "charge", "t_cause"),
                         ((i, i, f"L{i}", when(i), "", f"06{i:08d}",
                           f'"Dupont, Jean {i}" <06{i:08d}>' if i % 7 == 0 else f"06{i:08d}", "1000", "Main line",
                           70, 60 if i % 4 else 0, "ANSWERED" if i % 4 else "NO ANSWER",
                           "France mobile" if i % 3 == 0 else "", Decimal("0.05") if i % 3 == 0 else None,
                           Decimal("0.05") if i % 3 == 0 else None, "Normal Clearing")
                          for i in range(1, cdrs + 1)))
    counts["cdr_users"] = load(db, CdrUser.__table__, ("cdr_id", "user_id"),
                               itertools.chain.from_iterable(
                                   [(i, i % AGENTS + 1), *([(i, (i + 37) % AGENTS + 1)] if i % 10 == 0 else [])]
                                   for i in range(1, cdrs + 1)))
    # Queue calls: the customer's channel is the first leg of every k-th call.
    k = max(cdrs // max(queue_calls, 1), 1)
    counts["call_legs"] = load(db, CallLeg.__table__, ("call_id", "uniqueid", "channel", "started_at"),
                               ((j * k + 1, f"L{j * k + 1}", "PJSIP/trunk-1", when(j * k + 1))
                                for j in range(queue_calls) if j * k + 1 <= cdrs))
    qstep = 86400 / max(queue_calls, 1)

    def entered(j: int) -> datetime:
        return T0 + timedelta(seconds=j * qstep)

    def agent(j: int, n: int) -> int:
        return (j * 2 + n) % AGENTS + 1

    counts["acd_calls"] = load(
        db, AcdCall.__table__, ("id", "channel_id", "direction", "queue", "did", "number", "entered_at",
                                "answered_at", "outcome", "agent_id", "wait_seconds", "talk_seconds", "callers",
                                "agents"),
        ((f"{j:032x}", f"L{j * k + 1}", "inbound", "sales" if j % 2 else "support", "1000", f"06{j:08d}",
          entered(j), entered(j) + timedelta(seconds=30) if j % 10 < 6 else None,
          "answered" if j % 10 < 6 else "overflow" if j % 10 < 9 else "abandoned",
          agent(j, 2) if j % 10 < 6 else None, Decimal("30.40"), Decimal("95.60") if j % 10 < 6 else None,
          j % 5, 4) for j in range(queue_calls)))
    counts["acd_attempts"] = load(
        db, AcdAttempt.__table__, ("call_id", "seq", "user_id", "extension", "queue", "started_at", "ring_seconds",
                                   "outcome"),
        itertools.chain.from_iterable(
            [(f"{j:032x}", n, agent(j, n), str(2000 + agent(j, n)), "sales", entered(j) + timedelta(seconds=n * 12),
              Decimal("11.50"), "answered" if n == 2 and j % 10 < 6 else "no_answer") for n in (1, 2)]
            for j in range(queue_calls)))
    counts["acd_destinations"] = load(
        db, AcdDestination.__table__, ("call_id", "seq", "at", "kind", "target"),
        itertools.chain.from_iterable(
            [(f"{j:032x}", 1, entered(j), "Q", "sales"),
             (f"{j:032x}", 2, entered(j) + timedelta(seconds=30), *(
                 ("U", str(2000 + agent(j, 2))) if j % 10 < 6 else ("V", "sales-vm") if j % 10 < 9
                 else ("C", "abandoned")))]
            for j in range(queue_calls)))
    with db.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return counts


# -- measuring ------------------------------------------------------------------------------------

def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int:
    """The RSS now (kB), after resetting the peak (Linux: VmHWM); else the peak so far."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss() -> int:
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(url: str, files_dir: str, trace: bool) -> None:
    """Runs one export and prints its figures as JSON (in a fresh process: clean memory figures)."""
    import tracemalloc

    from callcenter.export.daily import export_day

    db = Database(url)
    rss_before = _reset_peak_rss()
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    result = export_day(db, Path(files_dir), DAY)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    rss_after = _peak_rss()
    sizes = {path.relative_to(files_dir).as_posix(): path.stat().st_size for path in result.files}
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "rss_before_kb": rss_before, "rss_after_kb": rss_after,
                      "traced_peak": peak, "cdr_rows": result.cdr_rows, "queue_call_rows": result.queue_call_rows,
                      "queue_user_call_rows": result.queue_user_call_rows, "sizes": sizes}))


def measure(url: str, files_dir: Path, trace: bool) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", url, str(files_dir), *(["--trace"] if trace else [])],
                         check=True, capture_output=True, text=True).stdout
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def bench(name: str, url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    db = Database(url)
    db.migrate()
    started = time.perf_counter()
    counts = generate(db, args.cdrs, args.queue_calls, args.units)
    generated = time.perf_counter() - started
    db.dispose()
    print(f"{name}: generated {sum(counts.values()):,} rows in {generated:.1f} s", file=sys.stderr, flush=True)
    files = work / f"files-{name}"
    plain = measure(url, files, trace=False)
    traced = measure(url, files, trace=True) if args.tracemalloc else None
    return {"name": name, "plain": plain, "traced": traced}


def _postgres_url(args: argparse.Namespace, stack: ExitStack) -> str | None:
    import psycopg

    if args.no_postgres:
        return None
    server = args.postgres
    if not server:
        from tests.support.postgres import Cluster, find_bin

        if not (find_bin("initdb") and find_bin("pg_ctl")):
            print("PostgreSQL: not installed, skipped (or give --postgres URL)", file=sys.stderr)
            return None
        cluster = Cluster()
        stack.callback(cluster.stop)
        server = cluster.start()
    name = f"callcenter_bench_{int(time.time())}"
    base = server if "://" in server else f"postgresql://{server}"
    base = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    stack.callback(drop)
    return base.rsplit("/", 1)[0] + "/" + name


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nexport_day of {args.cdrs:,} CDRs and {args.queue_calls:,} queue calls, {args.units} units "
          f"(python {sys.version.split()[0]})")
    print(f"{'database':<11} {'seconds':>8} {'CPU s':>7} {'rows/s':>11} {'RSS before':>11} {'RSS peak':>9} "
          f"{'RSS growth':>11} {'traced peak':>12}  rows (cdr / queue_call / queue_user_call)")
    for row in rows:
        plain, traced = row["plain"], row["traced"]
        mib = 1024
        peak = f"{traced['traced_peak'] / 2**20:.1f} MiB" if traced else "-"
        rows_written = plain["cdr_rows"] + plain["queue_call_rows"] + plain["queue_user_call_rows"]
        print(f"{row['name']:<11} {plain['seconds']:>8.1f} {plain['cpu']:>7.1f} "
              f"{rows_written / plain['seconds']:>11,.0f} {plain['rss_before_kb'] / mib:>8.0f} MiB "
              f"{plain['rss_after_kb'] / mib:>5.0f} MiB "
              f"{(plain['rss_after_kb'] - plain['rss_before_kb']) / mib:>7.0f} MiB "
              f"{peak:>12}  "
              f"{plain['cdr_rows']:,} / {plain['queue_call_rows']:,} / {plain['queue_user_call_rows']:,}")
    sizes = rows[0]["plain"]["sizes"] if rows else {}
    for path, size in list(sizes.items())[:2]:
        print(f"  {path}: {size / 2**20:.1f} MiB")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], "--trace" in sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--queue-calls", type=int, default=200_000)
    parser.add_argument("--units", type=int, default=5, help="organisational units (each gets its copies)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use (a scratch database is made)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false",
                        help="skip the second, slower export under tracemalloc")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        rows = [bench("sqlite", f"sqlite:///{work / 'export.db'}", args, work)]
        url = _postgres_url(args, stack)
        if url:
            rows.append(bench("postgresql", url, args, work))
        report(rows, args)


if __name__ == "__main__":
    main()
