"""Ledger throughput: how fast the controller turns Asterisk's channel event log into calls, legs,
events and CDRs, without Asterisk (a recorded log of real calls, replayed with fresh ids).

    .venv/bin/python bench/ledger.py [--calls 5000] [--database URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.calls.ledger import CelIngestor
from callcenter.db.engine import Database

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "unit" / "data" / "cel_sample.jsonl"


def synthetic_log(path: Path, calls: int) -> int:
    """The sample's calls repeated with new unique/linked ids and times; returns the line count."""
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    base = float(records[0]["eventtime"])
    lines = 0
    with open(path, "w") as out:
        for n in range(calls // 2):
            shift = n * 10.0
            for record in records:
                copy = dict(record)
                for key in ("uniqueid", "linkedid"):
                    copy[key] = f"{n}-{record[key]}"
                copy["eventtime"] = f"{float(record['eventtime']) - base + 1.7e9 + shift:.6f}"
                out.write(json.dumps(copy) + "\n")
                lines += 1
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    db = Database(args.database or f"sqlite:///{tmp / 'ledger.db'}")
    db.migrate()
    log = tmp / "cel.jsonl"
    lines = synthetic_log(log, args.calls)
    ingestor = CelIngestor(log, db, {"1000": "Demo greeting"})
    started = time.perf_counter()
    cpu_started = time.process_time()
    stored = 0
    while (count := ingestor.poll()):
        stored += count
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    calls = args.calls // 2 * 2
    print(f"{stored} events of {calls} calls in {elapsed:.2f} s: {stored / elapsed:,.0f} events/s, "
          f"{calls / elapsed:,.0f} calls/s, {cpu / calls * 1000:.2f} ms CPU per call ({db.engine.dialect.name})")
    assert stored == lines


if __name__ == "__main__":
    main()
