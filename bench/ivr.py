"""IVR under load: N concurrent sipp callers in a menu loop pressing keys; reports the latency from a
key to the start of the next prompt (p50, p99, from the controller's histogram) and the controller's
CPU per call, at 50, 100 and 200 concurrent callers.

    .venv/bin/python bench/ivr.py [--callers 50,100,200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cps import cpu_seconds
from tests.support import sipp
from tests.support.system import System, start_system, stop_system

# Each key leads to the next node and its prompt; the flow loops for as long as the caller stays.
LOOP_FLOW = """flow: loop
start: a
nodes:
  a:
    type: menu
    prompts: beep
    choices:
      "1": b
      "0": bye
    timeout: 10
    default: bye
  b:
    type: menu
    prompts: beep
    choices:
      "2": a
      "0": bye
    timeout: 10
    default: bye
  bye:
    type: hangup
"""


def histogram(system: System) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for line in system.get("/metrics").splitlines():
        match = re.match(r'callcenter_ivr_key_to_prompt_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if match:
            buckets[float(match.group(1))] = float(match.group(2))
    return buckets


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, int]:
    """The q-quantile's bucket bound (upper edge) of the observations between two readings."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = counts.get(float("inf"), 0.0)
    for bound in sorted(counts):
        if total and counts[bound] >= q * total:
            return bound, int(total)
    return float("nan"), int(total)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", default="50,100,200")
    parser.add_argument("--seconds", type=int, default=20, help="how long each caller stays pressing keys")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    system = start_system(var_dir, f"sqlite:///{var_dir / 'bench.db'}", instance="bench", log_level="warning",
                          poll_interval=0.2)
    # DID 1101 runs flow "deep" in the test configuration: the loop takes its place (hot reload).
    (Path(system.settings.paths.ivr_dir) / "deep.yaml").write_text(LOOP_FLOW.replace("flow: loop", "flow: deep"))
    await asyncio.sleep(2.5)
    print(f"{'callers':>8} {'keys':>6} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'ctl CPU ms/call':>16}")
    try:
        for callers in (int(c) for c in args.callers.split(",")):
            presses = max(2, args.seconds // 2)
            keys = [(1500, "1")] + [(1000, "2" if i % 2 == 0 else "1") for i in range(presses)] + [(800, "0")]
            before = histogram(system)
            assert system.proc is not None
            cpu_before = cpu_seconds(system.proc.pid)
            started = time.monotonic()
            caller = sipp.caller(system.sip_port, "1101", calls=callers, rate=max(10, callers // 5),
                                 keys=keys, extra=["-l", str(callers)], wait_bye_ms=60000)
            result = await caller.run(timeout=args.seconds * 4 + 120)
            await asyncio.sleep(1)
            cpu = cpu_seconds(system.proc.pid) - cpu_before
            after = histogram(system)
            p50, count = quantile(before, after, 0.5)
            p99, _ = quantile(before, after, 0.99)
            print(f"{callers:>8} {count:>6} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f} {result.failed:>7} "
                  f"{cpu / max(1, callers) * 1000:>16.1f}   ({time.monotonic() - started:.0f} s)", flush=True)
            system.no_channels_left(timeout=60)
    finally:
        stop_system(system)
    print("p50/p99 are upper bounds of histogram buckets (5, 10, 15, 20, 30, 40, 50, 75, 100 ms ...)")


if __name__ == "__main__":
    asyncio.run(main())
