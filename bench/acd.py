"""The ACD under load: agent phones, callers at a steady rate into several queues, wallboard viewers.

Registered sipp agent phones answer and talk for a random time; supervisors watch the wallboard.

    .venv/bin/python bench/acd.py [--agents 100] [--queues 5] [--rate 2.0] [--seconds 60] [--viewers 100]
                                  [--talk 5-15] [--wrapup 0] [--phones-per-sipp 1] [--keep]

Set-up: agents 3001... (one panel login each, the same password as their phone) are split round-robin
over queues b1..bN (longest-idle, each agent in exactly one queue), reached on DIDs 1301...; callers
dial the DIDs in turn at --rate calls per second in total for --seconds and wait for the agent's
hang-up: each phone hangs up itself after a uniformly random talk time (--talk, seconds).

Reports, over the call phase:
- the offer delay, from an agent becoming free or a call arriving (whichever was later) to the ring
  request: p50/p99 from the controller's histogram callcenter_acd_offer_delay_seconds (interpolated
  within its buckets) and its mean; and the same from the database records, split by what started it;
- the wallboard's push latency to --viewers SSE connections: receive time - the JSON's "generated_at";
- CPU of the controller, Asterisk, the sipp processes, this script, and the whole machine.

Each idle sipp wakes up every millisecond: a hundred of them take about a core by themselves. With
--phones-per-sipp 100 one sipp process plays all the phones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cps import cpu_seconds
from callcenter.asterisk.layout import resolve_layout
from callcenter.config import load_settings
from callcenter.db.engine import Database
from callcenter.db.models import AcdAttempt, AcdCall, AgentWorkLog
from callcenter.users import services as users
from callcenter.users import units
from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.system import System, config_text, free_ports, stop_system

FIRST_EXTENSION = 3001
FIRST_DID = 1301
SUPERVISOR = ("benchsup", "bench-supervisor-pw")
DELAY_METRIC = "callcenter_acd_offer_delay_seconds"
WAIT_METRIC = "callcenter_acd_wait_seconds"
GENERATED_AT = re.compile(rb'"generated_at":"([^"]+)"')


def password(extension: str) -> str:
    return f"bench-{extension}-pw"


# -- the system ---------------------------------------------------------------------------------------------


def queue_section(name: str, extensions: list[str], wrapup: int = 0, extra: str = "") -> str:
    """A bench queue: longest-idle over ``extensions``, no waiting limit, overflow or announcements."""
    members = ", ".join(f'"{e}"' for e in extensions)
    return f"""
[queues.{name}]
strategy = "longest-idle"
members = [{members}]
ring_timeout = 15
wrapup = {wrapup}
max_wait = 0
overflow = ""
announce_every = 0
{extra}"""


def bench_config(var_dir: Path, extensions: list[str], queues: int, wrapup: int) -> str:
    """The test configuration's general part (ports, paths, Asterisk) with our own DIDs and queues."""
    general = config_text(var_dir, f"benchacd{os.getpid() % 100000}", free_ports(),
                          f"sqlite:///{var_dir / 'bench.db'}", log_level="warning", poll_interval=0.2)
    text = general[:general.index("[dids.")]
    for q in range(queues):
        text += f"""
[dids.{FIRST_DID + q}]
name = "Bench queue {q + 1}"
route = "queue:b{q + 1}"
""" + queue_section(f"b{q + 1}", extensions[q::queues], wrapup)
    return text


def prepare(var_dir: Path, agents: int, queues: int, wrapup: int) -> System:
    """The configuration and the users, before the controller starts (it seeds no demo users then)."""
    (var_dir / "ivr_flows").mkdir(parents=True)
    extensions = [str(FIRST_EXTENSION + i) for i in range(agents)]
    config = var_dir / "callcenter.toml"
    config.write_text(bench_config(var_dir, extensions, queues, wrapup))
    settings = load_settings(config, environ={})
    db = Database(settings.database_url)
    db.migrate()
    with db.session() as session:
        users.add_user(session, name="Bench Supervisor", login=SUPERVISOR[0], roles=("supervisor",),
                       panel_password=SUPERVISOR[1])
        # The bench's queues have no unit: the viewers see them by the grant of every unit.
        units.grant_all_units(session, SUPERVISOR[0], True)
        for extension in extensions:
            users.add_user(session, name=f"Agent {extension}", extension=extension, roles=("agent",),
                           sip_password=password(extension), panel_password=password(extension))
    return System(config, settings, resolve_layout(settings), db, var_dir / "controller.log")


TICK_MS = 500  # the talking phone's clock: how often it checks whether its talk time is over


def talking_phone_scenario(talk_min_ms: int, talk_max_ms: int, ring_ms: int = 300) -> str:
    """An agent phone that answers, talks for a random time and hangs up itself.

    The talk time is drawn with <sample> in ticks of TICK_MS.

    The BYE is a new request in the dialog Asterisk opened: its From/To are the INVITE's To/From
    swapped (with the tag we gave in the 200), its Request-URI Asterisk's Contact; the headers are
    kept in variables when the INVITE arrives. The Via branch comes from the Call-ID: sipp's [branch]
    is the same for every incoming call (call number 0), and Asterisk would take a second BYE with it
    for a retransmission of the first. While talking the phone must answer Asterisk's
    re-INVITE (a connected-line update once the call is bridged): a <pause> would abort the call on
    it, so the talk time is counted in short receive timeouts instead.
    """
    answer = sipp.phone_scenario("answer", ring_ms=ring_ms)
    head, rest = answer.split('  <recv request="INVITE" crlf="true"/>\n', 1)
    # Up to the answer scenario's wait for the BYE (which answers re-INVITEs): the talk below replaces it.
    answered = rest.split('  <label id="bye"/>', 1)[0]
    keep = """  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="their_party"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="our_party"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="their_contact"/>
      <ereg regexp="[^ @;]+" search_in="hdr" header="Call-ID:" assign_to="call"/>
    </action>
  </recv>
"""
    talk = f"""  <nop><action>
    <sample assign_to="ticks" distribution="uniform" min="{talk_min_ms / TICK_MS}" max="{talk_max_ms / TICK_MS}"/>
  </action></nop>
  <label id="talk"/>
  <recv request="BYE" optional="true" timeout="{TICK_MS}" ontimeout="tick" next="gone"/>
  <recv request="INVITE" timeout="{TICK_MS}" ontimeout="tick"/>
{sipp.REINVITE_OK}  <nop next="talk"/>
  <label id="tick"/>
  <nop><action>
    <add assign_to="ticks" value="-1"/>
    <test assign_to="talking" variable="ticks" compare="greater_than" value="0"/>
  </action></nop>
  <nop next="talk" test="talking"/>
  <send retrans="500">
    <![CDATA[
      BYE [$their_contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-bye-[$call]
      From: [$our_party];tag=[pid]SIPpTag01[call_number]
      To: [$their_party]
      [last_Call-ID:]
      CSeq: 101 BYE
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="end"/>
  <label id="gone"/>
{sipp.OK_200}  <label id="end"/>
</scenario>
"""
    return head + keep + answered + talk


class QuietSipp(sipp.Sipp):
    """Without sipp's error trace, which would log each of the talking phone's clock ticks."""

    def argv(self) -> list[str]:
        return [arg for arg in super().argv() if arg != "-trace_err"]


# sipp seeds its random numbers with the time in seconds: phones started in the same second would
# draw the same talk times. Each registration first draws a number of samples given in phones.csv
# (random here; sipp runs about one loop a millisecond), so each phone's draws start at another
# place in the sequence.
SKIP_SAMPLES = """  <nop><action>
    <assignstr assign_to="skip_text" value="[field2]"/>
    <todouble assign_to="skip" variable="skip_text"/>
  </action></nop>
  <label id="skip"/>
  <nop next="skip" test="skipping"><action>
    <sample assign_to="skipping" distribution="uniform" min="0" max="1"/>
    <add assign_to="skip" value="-1"/>
    <test assign_to="skipping" variable="skip" compare="greater_than" value="0"/>
  </action></nop>
"""


_handed_out: set[int] = set()


def unique_udp_port(span: int = 1) -> int:
    """A free port (and the ``span - 1`` after it) not handed out before: with a hundred sipp processes
    starting, sipp.free_udp_port alone gives the same port twice now and then."""
    while True:
        port = sipp.free_udp_port()
        wanted = set(range(port, port + span))
        if port + span < 65536 and not wanted & _handed_out:
            _handed_out.update(wanted)
            return port


def agent_phones(system: System, extensions: list[str], talk: tuple[float, float], stay_ms: int) -> sipp.Sipp:
    """One sipp process that is the registered phone of each of ``extensions`` (sipp.phone's phone for
    one): sipp.register_scenario once per line of phones.csv, then talking_phone_scenario for the
    calls Asterisk sends to any of them."""
    head = '<scenario name="register USER">\n'
    register = sipp.register_scenario("USER", stay_ms=stay_ms).replace(head, head + SKIP_SAMPLES)
    register = register.replace("USER", "[field0]").replace("[authentication]", "[field1]")
    scenario = talking_phone_scenario(int(talk[0] * 1000), int(talk[1] * 1000))
    phones = QuietSipp(register, f"127.0.0.1:{system.sip_port}", ooc_scenario=scenario)
    (phones.workdir / "phones.csv").write_text("SEQUENTIAL\n" + "".join(
        f"{e};[authentication username={e} password={password(e)}];{random.randint(1, 1000)};\n"
        for e in extensions))
    phones.args = ["-inf", str(phones.workdir / "phones.csv"), "-m", str(len(extensions)),
                   "-l", str(len(extensions)), "-r", "20", "-p", str(unique_udp_port()),
                   # sipp looks for free media ports from 6000 up, 100 at most: some 50 processes.
                   "-mp", str(unique_udp_port(span=4))]
    return phones


async def wait_registered(system: System, phones: list[sipp.Sipp], extensions: list[str],
                          timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    wanted = set(extensions)
    while True:
        for phone in phones:
            if phone.proc is not None and phone.proc.returncode is not None:
                assert phone.proc.stdout is not None
                output = (await phone.proc.stdout.read()).decode(errors="replace")
                raise RuntimeError(f"a phone's sipp exited ({phone.proc.returncode}): {output[-1500:]}")
        out = await asyncio.to_thread(system.asterisk, "pjsip show contacts")
        registered = set(re.findall(r"(\d+)/sip:\1@127\.0\.0\.1", out)) & wanted
        if registered == wanted:
            return
        if time.monotonic() > deadline:
            missing = sorted(wanted - registered)
            raise RuntimeError(f"{len(missing)} phones did not register: {missing[:10]}")
        await asyncio.sleep(0.5)


async def log_in_agents(system: System, extensions: list[str]) -> None:
    """Each agent logs in to the panel and to their queues; the ACD keeps the state, not the session."""
    async def one(extension: str) -> None:
        async with PanelClient(system.web_url) as client:
            await client.login(extension, password(extension))
            await client.act("login")

    for i in range(0, len(extensions), 10):
        await asyncio.gather(*(one(e) for e in extensions[i:i + 10]))


# -- measurements -------------------------------------------------------------------------------------------


def histogram(system: System, name: str) -> tuple[dict[float, float], float, float]:
    """Cumulative bucket counts by upper bound, the sum and the count of a Prometheus histogram."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for line in system.get("/metrics").splitlines():
        if match := re.match(rf'{name}_bucket\{{le="([^"]+)"\}} (\S+)', line):
            buckets[float(match.group(1))] = float(match.group(2))
        elif line.startswith(f"{name}_sum "):
            total = float(line.split()[1])
        elif line.startswith(f"{name}_count "):
            count = float(line.split()[1])
    return buckets, total, count


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of the observations between two readings, interpolated linearly within its
    bucket as Prometheus' histogram_quantile does; inf when it lies above the highest finite bound."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if not total:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return bound
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return float("inf")


def share_within(before: dict[float, float], after: dict[float, float], bound: float) -> float:
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    return 100.0 * (after.get(bound, 0.0) - before.get(bound, 0.0)) / total if total else float("nan")


def offer_delays(system: System, since: datetime) -> tuple[list[float], list[float]]:
    """Offer delays from the records, split by what started them: (agent became free while the call
    waited, call arrived while the agent was free). The same rule as the controller's: an agent's
    idle time starts when they become ready other than after an offer that rang out."""
    with system.db.session() as session:
        attempts = session.execute(select(AcdAttempt.user_id, AcdAttempt.started_at, AcdCall.entered_at)
                                   .join(AcdCall, AcdCall.id == AcdAttempt.call_id)
                                   .where(AcdAttempt.started_at >= since)).all()
        readies: dict[int, list[datetime]] = {}
        for agent_id, at in session.execute(select(AgentWorkLog.user_id, AgentWorkLog.at)
                                            .where(AgentWorkLog.state == "ready", AgentWorkLog.previous != "ringing")
                                            .order_by(AgentWorkLog.at)):
            readies.setdefault(agent_id, []).append(at)
    from_free: list[float] = []
    from_arrival: list[float] = []
    for user_id, started, entered in attempts:
        ready = [at for at in readies.get(user_id or 0, []) if at <= started]
        if ready and ready[-1] > entered:
            from_free.append((started - ready[-1]).total_seconds())
        else:
            from_arrival.append((started - entered).total_seconds())
    return from_free, from_arrival


def machine_cpu() -> tuple[float, float, float]:
    """Busy, stolen (by the hypervisor) and total CPU seconds of the machine, all cores (/proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    ticks = os.sysconf("SC_CLK_TCK")
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return (user + nice + system + irq + softirq) / ticks, steal / ticks, total / ticks


def self_cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def sipp_cpu(phones: list[sipp.Sipp]) -> float:
    """The phones' CPU so far, and that of the finished children (the callers, once they are done)."""
    running = sum(cpu_seconds(p.proc.pid) for p in phones if p.proc is not None and p.proc.returncode is None)
    return running + self_cpu(resource.RUSAGE_CHILDREN)


def asterisk_pid(system: System) -> int | None:
    """Our Asterisk: the process running the asterisk binary on this instance's configuration."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if argv[0].endswith("asterisk") and system.layout.config_file in argv and "-rx" not in argv:
                return int(entry.name)
    return None


@dataclass
class Viewers:
    """N wallboard viewers on one supervisor login (sessions are signed cookies: one cookie, N streams)."""

    url: str
    count: int
    latencies: list[float] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    connected: int = 0
    errors: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None

    async def start(self, cookies: aiohttp.abc.AbstractCookieJar) -> None:
        self.messages = [0] * self.count
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=cookies,
                                             read_bufsize=2 ** 20, timeout=aiohttp.ClientTimeout(total=None))
        self.tasks = [asyncio.create_task(self._watch(i)) for i in range(self.count)]
        deadline = time.monotonic() + 30
        while self.connected < self.count and not self.errors:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.connected} of {self.count} wallboard viewers connected")
            await asyncio.sleep(0.1)
        if self.errors:
            raise RuntimeError(f"wallboard viewer failed: {self.errors[0]}")

    def reset(self) -> None:
        self.latencies.clear()
        self.messages = [0] * self.count

    async def _watch(self, index: int) -> None:
        assert self.session is not None
        try:
            async with self.session.get(self.url + "/api/wallboard/events",
                                        headers={"Accept": "text/event-stream"}) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                buffer = b""
                first = True
                async for chunk in response.content.iter_any():
                    received = time.time()
                    buffer += chunk
                    while (end := buffer.find(b"\n\n")) >= 0:
                        event, buffer = buffer[:end], buffer[end + 2:]
                        if not event.startswith(b"event: wallboard\n"):
                            continue  # ": ping"
                        if first:
                            # The snapshot a new viewer gets may be old: it is no push.
                            first = False
                            self.connected += 1
                            continue
                        match = GENERATED_AT.search(event, 0, 300)
                        if match:
                            generated = datetime.fromisoformat(match.group(1).decode()).timestamp()
                            self.latencies.append(received - generated)
                            self.messages[index] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported at the end; the run goes on
            self.errors.append(f"viewer {index}: {exc!r}")

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the run ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, var_dir: Path, phones: list[sipp.Sipp], callers: list[sipp.Sipp],
              holder: dict[str, Any]) -> None:
    talk_min, talk_max = (float(v) for v in args.talk.split("-"))
    started = time.monotonic()
    system = await asyncio.to_thread(prepare, var_dir, args.agents, args.queues, args.wrapup)
    holder["system"] = system
    await asyncio.to_thread(system.start)
    print(f"controller up ({time.monotonic() - started:.0f} s, {args.agents} agent users); registering phones",
          flush=True)
    extensions = [str(FIRST_EXTENSION + i) for i in range(args.agents)]
    stay_ms = int((args.seconds + talk_max + 600) * 1000)
    for i in range(0, len(extensions), args.phones_per_sipp):
        phone = agent_phones(system, extensions[i:i + args.phones_per_sipp], (talk_min, talk_max), stay_ms)
        phones.append(phone)
        await phone.start()
    await wait_registered(system, phones, extensions)
    await log_in_agents(system, extensions)
    print(f"{args.agents} phones registered, agents logged in; {args.viewers} wallboard viewers", flush=True)

    supervisor = PanelClient(system.web_url)
    holder["supervisor"] = supervisor
    await supervisor.login(*SUPERVISOR, page="/wallboard")
    viewers = Viewers(system.web_url, args.viewers)
    holder["viewers"] = viewers
    if args.viewers:
        await viewers.start(supervisor.session.cookie_jar)
    await asyncio.sleep(2)  # let the logins' wallboard pushes pass
    viewers.reset()

    assert system.proc is not None
    ast_pid = asterisk_pid(system)
    delay_before, delay_sum0, delay_count0 = histogram(system, DELAY_METRIC)
    wait_before, _, _ = histogram(system, WAIT_METRIC)
    ctl0, ast0 = cpu_seconds(system.proc.pid), cpu_seconds(ast_pid) if ast_pid else 0.0
    self0, sipp0, (busy0, steal0, all0) = self_cpu(), sipp_cpu(phones), machine_cpu()
    t0, since = time.monotonic(), datetime.now(UTC)

    # One sipp per queue at rate/queues, started 1/rate apart: together a steady stream of calls.
    per_queue = args.rate / args.queues
    calls = max(1, round(per_queue * args.seconds))
    wait_bye_ms = int((talk_max + 300) * 1000)
    print(f"calling: {args.rate:g} calls/s for {args.seconds} s ({calls} per queue), talk {args.talk} s", flush=True)
    for q in range(args.queues):
        caller = sipp.caller(system.sip_port, str(FIRST_DID + q), calls=calls, rate=1,
                             wait_bye_ms=wait_bye_ms,
                             extra=["-rp", f"{round(1000 / per_queue)}", "-l", str(args.agents * 4 + 100),
                                    "-timeout", f"{int(args.seconds + talk_max + 600)}s",
                                    "-recv_timeout", str(wait_bye_ms + 10000)])
        callers.append(caller)
        await caller.start()
        await asyncio.sleep(1 / args.rate)
    results = await asyncio.gather(*(c.wait(timeout=args.seconds + talk_max + 700) for c in callers))
    elapsed = time.monotonic() - t0
    await asyncio.sleep(1)

    ctl = cpu_seconds(system.proc.pid) - ctl0
    ast = (cpu_seconds(ast_pid) - ast0) if ast_pid else float("nan")
    own = self_cpu() - self0
    sipps = sipp_cpu(phones) - sipp0
    busy1, steal1, all1 = machine_cpu()
    delay_after, delay_sum1, delay_count1 = histogram(system, DELAY_METRIC)
    wait_after, _, _ = histogram(system, WAIT_METRIC)
    await viewers.stop()
    from_free, from_arrival = await asyncio.to_thread(offer_delays, system, since)
    status, board = await supervisor.get("/api/wallboard")
    assert status == 200, status

    ok = sum(r.successful for r in results)
    failed = sum(r.failed for r in results)
    offers = delay_count1 - delay_count0
    mean_delay = (delay_sum1 - delay_sum0) / offers if offers else float("nan")
    offered = sum(q["offered"] for q in board["queues"])
    answered = sum(q["answered"] for q in board["queues"])
    abandoned = sum(q["abandoned"] for q in board["queues"])
    logged_in = sum(1 for a in board["agents"] if a["state"] != "logged_out")
    cores = os.cpu_count() or 1
    lat = viewers.latencies
    per_viewer = viewers.messages or [0]

    def ms(value: float) -> str:
        return ">1000" if value == float("inf") else f"{value * 1000:.2f}"

    def spread(values: list[float]) -> str:
        return (f"{ms(percentile(values, 0.5))} / {ms(percentile(values, 0.99))} / {ms(mean(values))} "
                f"({len(values)} offers)")

    rows = [
        ("command", " ".join(sys.argv)),
        ("agents (logged in) / queues", f"{args.agents} ({logged_in}) / {args.queues}"),
        ("call phase", f"{elapsed:.0f} s (arrivals {args.seconds} s + last talks)"),
        ("sipp calls ok / failed", f"{ok} / {failed}"),
        ("wallboard offered / answered / abandoned", f"{offered} / {answered} / {abandoned}"),
        ("offers (ring requests)", f"{offers:.0f}"),
        ("offer delay p50 / p99 / mean (ms)",
         f"{ms(quantile(delay_before, delay_after, 0.5))} / {ms(quantile(delay_before, delay_after, 0.99))} / "
         f"{ms(mean_delay)}"),
        ("  records: agent free -> offer (ms)", spread(from_free)),
        ("  records: call arrival -> offer (ms)", spread(from_arrival)),
        ("answered within 1 s / 2 s of entering", f"{share_within(wait_before, wait_after, 1):.0f}% / "
                                                  f"{share_within(wait_before, wait_after, 2):.0f}%"),
        ("wallboard push p50 / p99 / max (ms)",
         f"{ms(percentile(lat, 0.5))} / {ms(percentile(lat, 0.99))} / {ms(max(lat, default=float('nan')))}"),
        ("wallboard pushes per viewer min / mean / max",
         f"{min(per_viewer)} / {statistics.mean(per_viewer):.0f} / {max(per_viewer)} "
         f"({len(per_viewer) if args.viewers else 0} viewers, {len(viewers.errors)} failed)"),
        ("controller CPU", f"{ctl:.1f} s = {100 * ctl / elapsed:.0f}% of a core, "
                           f"{1000 * ctl / max(1, ok + failed):.0f} ms per call"),
        ("Asterisk CPU", f"{ast:.1f} s = {100 * ast / elapsed:.0f}% of a core"),
        ("sipp CPU (phones and callers)", f"{sipps:.1f} s = {100 * sipps / elapsed:.0f}% of a core"),
        ("this script's CPU (viewers)", f"{own:.1f} s = {100 * own / elapsed:.0f}% of a core"),
        ("machine CPU busy (+ stolen)", f"{100 * (busy1 - busy0) / (all1 - all0):.0f}% "
                                        f"(+ {100 * (steal1 - steal0) / (all1 - all0):.0f}%) of {cores} cores"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("offer delay: from the controller's histogram, linearly interpolated within its buckets "
          "(0.5, 1, 2, 5, 10, 20, 50 ms ...); it starts when the agent became free or the call arrived, "
          "whichever was later. Push latency: receive time - generated_at, first snapshot per viewer excluded.")
    if viewers.errors:
        print("viewer errors:", *viewers.errors[:5], sep="\n  ")
    for q, result in enumerate(results):
        if result.failed:
            print(f"caller b{q + 1}: {result.failed} failed calls; tail:\n{result.output[-1500:]}")


def cancel_on_signals() -> None:
    """Ctrl-C or SIGTERM cancels the running task, so that its clean-up runs. Set here, not left to
    asyncio.run, so that it also works when started in the background (SIGINT ignored there)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def interrupted(sig: signal.Signals) -> None:
        print(f"\n{sig.name}: stopping and cleaning up", file=sys.stderr)
        task.cancel()
        for each in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(each, lambda: None)  # once is enough: let the clean-up finish

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted, sig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--queues", type=int, default=5)
    parser.add_argument("--rate", type=float, default=2.0, help="calls per second, all queues together")
    parser.add_argument("--seconds", type=int, default=60, help="how long calls keep arriving")
    parser.add_argument("--viewers", type=int, default=100, help="wallboard SSE connections")
    parser.add_argument("--talk", default="5-15", help="talk time range in seconds (uniform), e.g. 5-15")
    parser.add_argument("--wrapup", type=int, default=0, help="queue wrap-up seconds")
    parser.add_argument("--phones-per-sipp", type=int, default=1,
                        help="agent phones per sipp process (1: one process per phone, as the tests run them; "
                             "each idle sipp wakes up every millisecond)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args()
    if args.agents < args.queues or args.agents > 999 or args.rate <= 0 or args.phones_per_sipp < 1:
        parser.error("need queues <= agents <= 999, a positive rate and at least one phone per sipp")

    cancel_on_signals()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-acd-"))
    phones: list[sipp.Sipp] = []
    callers: list[sipp.Sipp] = []
    holder: dict[str, Any] = {}
    succeeded = False
    try:
        await run(args, var_dir, phones, callers, holder)
        succeeded = True
    finally:
        # Also on Ctrl-C (the task is cancelled) and errors: every sipp, the panel sessions, the system.
        if "viewers" in holder:
            await holder["viewers"].stop()
        if "supervisor" in holder:
            await holder["supervisor"].close()
        await asyncio.gather(*(p.stop() for p in callers + phones), return_exceptions=True)
        if "system" in holder:
            await asyncio.to_thread(stop_system, holder["system"])
        if succeeded and not args.keep:
            for directory in [var_dir] + [s.workdir for s in callers + phones]:
                shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"logs and database kept in {var_dir}, sipp's in /tmp/sipp-*", file=sys.stderr)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
