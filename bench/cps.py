"""Calls per second: the Stasis app against a plain dialplan, on the real Asterisk.

sipp places calls at rising rates, each step alternating between (a) DID 1002, answered by the
controller through ARI (answer, a short playback, hang-up) and (b) the dialplan's line-check number
doing the same without the controller. Prints the highest rate each sustains with < 1% failed
calls, the ratio (a)/(b), and the controller's CPU seconds per call (read from /proc).

    .venv/bin/python bench/cps.py [--rates 10,20,40,...] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import sipp
from tests.support.system import System, start_system, stop_system

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its finished children (the controller's threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


async def step(system: System, service: str, rate: int, seconds: int) -> tuple[int, int, float, float]:
    calls = rate * seconds
    assert system.proc is not None
    cpu_before = cpu_seconds(system.proc.pid)
    started = time.monotonic()
    caller = sipp.caller(system.sip_port, service, calls=calls, rate=rate,
                         extra=["-l", str(rate * 20), "-recv_timeout", "20000"], wait_bye_ms=20000)
    result = await caller.run(timeout=seconds * 4 + 60)
    elapsed = time.monotonic() - started
    # The ledger goes on storing the step's events after the last BYE: count its CPU too.
    await asyncio.sleep(1.5)
    cpu = cpu_seconds(system.proc.pid) - cpu_before
    return result.successful, result.failed, cpu, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10,20,40,60,80,100,120,150,200,250,300")
    parser.add_argument("--seconds", type=int, default=10, help="length of each step")
    parser.add_argument("--database", default="", help="database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-cps-"))
    system = start_system(var_dir, args.database or f"sqlite:///{var_dir / 'bench.db'}", instance="bench",
                          log_level="warning", poll_interval=0.2)
    line_check = system.settings.asterisk.line_check_number
    best = {"stasis": 0, "dialplan": 0}
    cpu_per_call = {"stasis": [], "dialplan": []}  # type: dict[str, list[float]]
    alive = {"stasis": True, "dialplan": True}
    print(f"{'rate':>5} {'target':>9} {'ok':>6} {'failed':>6} {'fail %':>7} {'ctl CPU s/call':>15}")
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            for name, service in (("stasis", "1002"), ("dialplan", line_check)):
                if not alive[name]:
                    continue
                system.no_channels_left(timeout=60)
                ok, failed, cpu, _elapsed = await step(system, service, rate, args.seconds)
                total = ok + failed
                fail_pct = 100.0 * failed / total if total else 100.0
                per_call = cpu / total if total else 0.0
                cpu_per_call[name].append(per_call)
                print(f"{rate:>5} {name:>9} {ok:>6} {failed:>6} {fail_pct:>6.2f}% {per_call:>15.5f}", flush=True)
                if fail_pct < 1.0 and total >= rate * args.seconds:
                    best[name] = rate
                else:
                    alive[name] = False
            if not any(alive.values()):
                break
    finally:
        stop_system(system)
    ratio = best["stasis"] / best["dialplan"] if best["dialplan"] else float("nan")
    print()
    print(f"highest CPS with < 1% failed calls: stasis {best['stasis']}, dialplan {best['dialplan']}, "
          f"ratio {ratio:.2f}")
    for name in ("stasis", "dialplan"):
        values = cpu_per_call[name]
        if values:
            print(f"controller CPU per call ({name} calls, incl. CDR ledger): "
                  f"median {sorted(values)[len(values) // 2] * 1000:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
