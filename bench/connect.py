"""Dialer connect time: a person answered -> an agent bridged, in session mode and in ring-per-call mode.

    .venv/bin/python bench/connect.py [--agents 20] [--seconds 45] [--answer-ms 300] [--talk 3-6] [--keep]

Set-up: a real Asterisk and controller; --agents registered sipp phones (3101...) that answer after
--answer-ms (an auto-answering headset) and stay on the line until Asterisk hangs up; a sipp "PSTN"
behind the trunk answering every number after 300 ms as a person who talks a random --talk seconds and
hangs up. Two progressive campaigns on the same agents (queue wrap-up 0, no AMD): "bsession" keeps one
line per agent (agent_line = "session"), "bring" rings the agent's phone for every person
(agent_line = "ring"). Each runs for --seconds, then the calls in progress finish.

Reports per mode, from dialer_attempts (human_at -> connected_at): p50, p95 and the maximum connect
time, people connected and abandoned. Goal: p95 under 2 s in both modes (the abandon rule), and in
session mode under 0.5 s (nothing rings).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.acd import (
    QuietSipp,
    log_in_agents,
    password,
    percentile,
    queue_section,
    talking_phone_scenario,
    unique_udp_port,
    wait_registered,
)
from callcenter.asterisk.layout import resolve_layout
from callcenter.config import load_settings
from callcenter.db.engine import Database
from callcenter.db.models import DialerAttempt
from callcenter.users import services as users
from tests.support import sipp
from tests.support.system import System, config_text, free_ports, stop_system

FIRST_EXTENSION = 3101
GOAL_P95 = 2.0
GOAL_SESSION_P95 = 0.5
MODES = {"bsession": "session", "bring": "ring"}


def campaigns_config(extensions: list[str]) -> str:
    text = queue_section("bq", extensions)
    for name, line in MODES.items():
        text += f"""
[campaigns.{name}]
queue = "bq"
caller_id = "+48221234599"
mode = "progressive"
agent_line = "{line}"
region = "PL"
ring_seconds = 15
"""
    return text


def zone_at_local_hour(hour: int) -> str:
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "+0")


def prepare(var_dir: Path, agents: int) -> System:
    """The configuration and the agents, before the controller starts (it seeds no demo users then)."""
    (var_dir / "ivr_flows").mkdir(parents=True)
    extensions = [str(FIRST_EXTENSION + i) for i in range(agents)]
    general = config_text(var_dir, f"benchcon{os.getpid() % 100000}", free_ports(),
                          f"sqlite:///{var_dir / 'bench.db'}", log_level="warning", poll_interval=0.2)
    config = var_dir / "callcenter.toml"
    config.write_text(general[:general.index("[dids.")] + campaigns_config(extensions))
    settings = load_settings(config, environ={})
    db = Database(settings.database_url)
    db.migrate()
    with db.session() as session:
        for extension in extensions:
            users.add_user(session, name=f"Agent {extension}", extension=extension, roles=("agent",),
                           sip_password=password(extension), panel_password=password(extension))
    return System(config, settings, resolve_layout(settings), db, var_dir / "controller.log")


def agent_phones(system: System, extensions: list[str], answer_ms: int) -> sipp.Sipp:
    """One sipp process: the phone of each extension, answering after ``answer_ms`` and staying on."""
    register = sipp.register_scenario("USER").replace("USER", "[field0]").replace("[authentication]", "[field1]")
    phones = QuietSipp(register, f"127.0.0.1:{system.sip_port}",
                       ooc_scenario=sipp.phone_scenario("answer", ring_ms=answer_ms))
    (phones.workdir / "phones.csv").write_text("SEQUENTIAL\n" + "".join(
        f"{e};[authentication username={e} password={password(e)}];\n" for e in extensions))
    phones.args = ["-inf", str(phones.workdir / "phones.csv"), "-m", str(len(extensions)),
                   "-l", str(len(extensions)), "-r", "20", "-p", str(unique_udp_port()),
                   "-mp", str(unique_udp_port(span=4))]
    return phones


def import_contacts(system: System, campaign: str, count: int, tmp: Path) -> None:
    zone = zone_at_local_hour(14)
    base = random.randint(100000, 800000)
    listing = tmp / f"{campaign}.csv"
    listing.write_text("phone,tz\n" + "".join(f"+4822{base + n:06d}1,{zone}\n" for n in range(count)))
    done = system.cli("dialer", "import", campaign, str(listing), "--number", "phone", "--timezone", "tz")
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)


def attempts(system: System, campaign: str) -> list[DialerAttempt]:
    with system.db.session() as session:
        return list(session.scalars(select(DialerAttempt).where(DialerAttempt.campaign == campaign)))


async def run_mode(system: System, campaign: str, seconds: float, tmp: Path, agents: int) -> list[DialerAttempt]:
    import_contacts(system, campaign, agents * 20, tmp)
    started = system.cli("dialer", "start", campaign, "--confirm")
    if started.returncode != 0:
        started = system.cli("dialer", "start", campaign)
    if started.returncode != 0:
        raise RuntimeError(started.stdout + started.stderr)
    await asyncio.sleep(seconds)  # the measured run: as long as asked, whatever happens
    system.cli("dialer", "stop", campaign)
    deadline = time.monotonic() + 60
    while not all(a.ended_at for a in attempts(system, campaign)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{campaign}: calls still open a minute after the stop")
        await asyncio.sleep(0.5)
    return attempts(system, campaign)


def report(mode: str, made: list[DialerAttempt]) -> bool:
    waits = [(a.connected_at - a.human_at).total_seconds() for a in made
             if a.connected_at is not None and a.human_at is not None]
    abandoned = sum(1 for a in made if a.abandoned_at is not None)
    p50, p95 = percentile(waits, 0.50), percentile(waits, 0.95)
    goal = GOAL_SESSION_P95 if mode == "session" else GOAL_P95
    ok = bool(waits) and p95 < goal
    print(f"{mode:8} placed {len(made):4}  connected {len(waits):4}  abandoned {abandoned:3}  "
          f"connect p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms  max {max(waits, default=0) * 1000:6.0f} ms"
          f"  (goal p95 < {goal * 1000:.0f} ms: {'met' if ok else 'NOT met'})", flush=True)
    return ok


async def main_async(args: argparse.Namespace, var_dir: Path) -> bool:
    answer_ms = args.answer_ms
    talk_min, talk_max = (float(v) for v in args.talk.split("-"))
    system = await asyncio.to_thread(prepare, var_dir, args.agents)
    extensions = [str(FIRST_EXTENSION + i) for i in range(args.agents)]
    phones = agent_phones(system, extensions, answer_ms)
    pstn = QuietSipp(talking_phone_scenario(int(talk_min * 1000), int(talk_max * 1000), ring_ms=300),
                     f"127.0.0.1:{system.sip_port}", ["-p", str(system.settings.sip.trunk_port), "-m", "100000"])
    ok = True
    try:
        await asyncio.to_thread(system.start)
        await phones.start()
        await wait_registered(system, [phones], extensions)
        await pstn.start()
        await log_in_agents(system, extensions)
        print(f"{args.agents} agents, phones answer after {answer_ms} ms, people talk {args.talk} s, "
              f"{args.seconds:.0f} s per mode", flush=True)
        for campaign, mode in MODES.items():
            made = await run_mode(system, campaign, args.seconds, var_dir, args.agents)
            ok = report(mode, made) and ok
    finally:
        for process in (pstn, phones):
            await process.stop()
        await asyncio.to_thread(stop_system, system)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--answer-ms", type=int, default=300)
    parser.add_argument("--talk", default="3-6")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, database)")
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    try:
        ok = asyncio.run(main_async(args, var_dir / "var"))
    finally:
        if args.keep:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
