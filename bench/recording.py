"""Recorded calls ending together: the time from hang-up to the MP3 being downloadable over FTPS.

    .venv/bin/python bench/recording.py [--calls 50] [--talk 20] [--rate 20] [--bitrate K] [--workers W] [--keep]

Set-up: a real controller and Asterisk with --calls agents 3001... (registered auto-answering sipp
phones, one sipp process for all of them, logged in through the panel) in one longest-idle queue
with ``record = "always"`` behind DID 1401, and the FTPS server on free ports. One sipp caller process
places --calls calls into the DID at --rate calls/s. Every caller hangs up at the same wall-clock
moment: the BYE time is written into the scenario, and after the answer each call pauses until then
(gettimeofday in sipp), so every call is connected when the first hangs up and each talks at least
--talk seconds (the first ones placed (calls - 1) / rate + 2 s longer).

Then the script watches, from just before that moment:
- FTPS (the default): ``ftplib.FTP_TLS`` with PROT P as ``admin`` (password from
  <var_dir>/initial-admin-password), NLST of Recordings/<YYYY-MM-DD>/ every 0.1 s, noting when each
  recording's MP3 name (the basename of Recording.path) first appears;
- the files directory: when files/<Recording.path> exists (polled every 0.05 s). Without a controller
  listening on the FTPS port, or when the login fails, this is the only measurement (said so).

Reported per call: latency from the caller's BYE (sipp's clock when it sent it) and from the moment
the controller saw the end (Recording.ended_at) to the MP3 on FTPS and on disk: p50, p95, max and how
many made it within 5 s; the controller's CPU (its own and that of its finished children, i.e.
ffmpeg) and Asterisk's from the BYE moment until the last MP3 appeared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ftplib
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.acd import (
    agent_phones,
    asterisk_pid,
    cancel_on_signals,
    log_in_agents,
    machine_cpu,
    password,
    percentile,
    queue_section,
    unique_udp_port,
    wait_registered,
)
from callcenter.asterisk.layout import resolve_layout
from callcenter.config import load_settings
from callcenter.db.engine import Database
from callcenter.db.models import Recording
from callcenter.users import services as users
from callcenter.users import units
from tests.support import sipp
from tests.support.system import System, config_text, free_ports, stop_system

FIRST_EXTENSION = 3001
DID = "1401"
QUEUE = "rec"
ADMIN = "admin"
CALLER_PREFIX = "4930555"  # caller number = prefix + sipp's call number: ties a BYE to its recording
SETTLE = 2.0  # seconds between the last call placed and the start of the last call's --talk
FTPS_EVERY = 0.1
DISK_EVERY = 0.05
WITHIN = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the system ---------------------------------------------------------------------------------------------


def free_tcp_range(count: int) -> int:
    """The first of ``count`` consecutive TCP ports that are free on 127.0.0.1 now."""
    for _ in range(200):
        base = random.randint(20000, 60000 - count)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free TCP ports found")


def without_section(text: str, name: str) -> str:
    """``text`` without the TOML table ``[name]`` (its header and keys up to the next header)."""
    return re.sub(rf"^\[{re.escape(name)}\][ \t]*\n(?:(?!\[).*\n?)*", "", text, flags=re.MULTILINE)


def bench_config(var_dir: Path, extensions: list[str], ftps_port: int, passive_base: int, passive_count: int,
                 bitrate: int | None, workers: int | None) -> str:
    """The test configuration's general part (ports, paths, Asterisk) with one recorded queue and FTPS."""
    general = config_text(var_dir, f"benchrec{os.getpid() % 100000}", free_ports(),
                          f"sqlite:///{var_dir / 'bench.db'}", log_level="warning", poll_interval=0.2)
    text = general[:general.index("[dids.")]
    for own in ("ftps", "recording"):  # the test configuration's own, if it has them, give way to ours
        text = without_section(text, own)
    recording = "".join(f"{key} = {value}\n" for key, value in (("bitrate", bitrate), ("workers", workers))
                        if value is not None)
    if recording:
        text += f"\n[recording]\n{recording}"
    text += f"""
[ftps]
enabled = true
port = {ftps_port}
passive_ports = "{passive_base}-{passive_base + passive_count - 1}"

[dids.{DID}]
name = "Bench recorded queue"
route = "queue:{QUEUE}"
""" + queue_section(QUEUE, extensions, extra='record = "always"\n')
    return text


def prepare(var_dir: Path, args: argparse.Namespace) -> tuple[System, str]:
    """Configuration and users before the controller starts (it seeds no demo users then, so the admin
    is created here and its password written where the controller would have put it)."""
    (var_dir / "ivr_flows").mkdir(parents=True)
    extensions = [str(FIRST_EXTENSION + i) for i in range(args.calls)]
    config = var_dir / "callcenter.toml"
    config.write_text(bench_config(var_dir, extensions, sipp.free_tcp_port(), free_tcp_range(args.calls),
                                   args.calls, args.bitrate, args.workers))
    settings = load_settings(config, environ={})
    db = Database(settings.database_url)
    db.migrate()
    admin_password = secrets.token_urlsafe(12)
    with db.session() as session:
        users.add_user(session, name="Administrator", login=ADMIN, roles=("admin", "supervisor"),
                       panel_password=admin_password)
        units.grant_all_units(session, ADMIN, True)  # FTPS shows every folder only with that grant
        for extension in extensions:
            users.add_user(session, name=f"Agent {extension}", extension=extension, roles=("agent",),
                           sip_password=password(extension), panel_password=password(extension))
    secret = settings.var_dir / "initial-admin-password"
    secret.write_text(admin_password + "\n")
    secret.chmod(0o600)
    return System(config, settings, resolve_layout(settings), db, var_dir / "controller.log"), admin_password


# -- the callers --------------------------------------------------------------------------------------------


def now_ms(name: str) -> str:
    """sipp actions that put the wall clock (ms since the epoch, a double) into variable ``name``."""
    return f"""    <gettimeofday assign_to="{name}_s,{name}_us"/>
    <assign assign_to="{name}" variable="{name}_s"/>
    <multiply assign_to="{name}" value="1000"/>
    <divide assign_to="{name}_us" value="1000"/>
    <add assign_to="{name}" variable="{name}_us"/>
"""


def caller_scenario(bye_at_ms: int) -> str:
    """A caller (sipp.caller_scenario's messages) that, once answered, waits until the wall-clock moment
    ``bye_at_ms`` and hangs up then; answered too late, it hangs up at once. Logs (-trace_logs) one line
    at the answer and one when it sends the BYE, with its number and the time in ms."""
    parts = ['<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="recorded caller">\n',
             sipp._init_vars(f"{CALLER_PREFIX}[call_number]", "Bench Caller"),
             sipp._invite(False),
             '  <recv response="100" optional="true"/>\n',
             '  <recv response="180" optional="true"/>\n  <recv response="183" optional="true"/>\n',
             '  <recv response="200" rtd="true"/>\n',
             sipp._ack(True),
             f'  <nop><action><exec play_pcap_audio="{sipp.AUDIO_PCAP}"/></action></nop>\n',
             f"""  <nop><action>
{now_ms("answered")}    <assign assign_to="wait" value="{bye_at_ms}"/>
    <subtract assign_to="wait" variable="answered"/>
    <test assign_to="late" variable="wait" compare="less_than" value="0"/>
    <log message="ANSWER [$caller] [$answered] [$wait]"/>
  </action></nop>
  <nop next="bye" test="late"/>
  <pause variable="wait"/>
  <label id="bye"/>
  <nop><action>
{now_ms("bye")}    <log message="BYE [$caller] [$bye]"/>
  </action></nop>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""]
    return "".join(parts)


@dataclass
class CallerLog:
    answered: dict[str, float] = field(default_factory=dict)  # caller number -> wall clock (s)
    late: set[str] = field(default_factory=set)  # answered after the BYE moment
    bye: dict[str, float] = field(default_factory=dict)


def read_caller_log(path: Path) -> CallerLog:
    result = CallerLog()
    if not path.exists():
        return result
    for line in path.read_text(errors="replace").splitlines():
        if match := re.search(r"\bANSWER (\d+) ([\d.]+) (-?[\d.]+)", line):
            result.answered[match.group(1)] = float(match.group(2)) / 1000
            if float(match.group(3)) < 0:
                result.late.add(match.group(1))
        elif match := re.search(r"\bBYE (\d+) ([\d.]+)", line):
            result.bye[match.group(1)] = float(match.group(2)) / 1000
    return result


# -- watching for the MP3s ----------------------------------------------------------------------------------


def ftps_reachable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class FtpsWatcher:
    """Lists folders over FTPS (explicit TLS, PROT P) every ``every`` seconds from a thread of its own and
    notes the wall-clock time each wanted name first shows up."""

    def __init__(self, port: int, login: str, secret: str, every: float = FTPS_EVERY) -> None:
        self.port, self.login, self.secret, self.every = port, login, secret, every
        self.ftp: ftplib.FTP_TLS | None = None
        self.folders: list[str] = []  # FTPS paths, e.g. /Recordings/2026-11-30
        self.wanted: frozenset[str] = frozenset()
        self.seen: dict[str, float] = {}
        self.listings = 0
        self.list_seconds = 0.0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def connect(self) -> None:
        """Log in (AUTH TLS, USER/PASS, PBSZ 0/PROT P); raises on failure. Blocking."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the controller's self-signed certificate, on loopback
        ftp = ftplib.FTP_TLS(context=context, timeout=10)
        ftp.connect("127.0.0.1", self.port)
        try:
            ftp.login(self.login, self.secret)
            ftp.prot_p()
            ftp.nlst("/")
        except Exception:
            with contextlib.suppress(Exception):
                ftp.close()
            raise
        self.ftp = ftp

    def listing(self, folder: str) -> list[str]:
        assert self.ftp is not None
        try:
            return [PurePosixPath(name).name for name in self.ftp.nlst(folder)]
        except ftplib.error_perm:  # 550: the day's folder does not exist yet
            return []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ftps-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                for folder in list(self.folders):
                    names = self.listing(folder)
                    seen_at = time.time()
                    for name in names:
                        if name in self.wanted and name not in self.seen:
                            self.seen[name] = seen_at
                self.listings += 1
                self.list_seconds += time.monotonic() - started
            except Exception as exc:  # a dropped session: note it, log in again, go on
                self.errors.append(repr(exc))
                if len(self.errors) > 20:
                    return
                with contextlib.suppress(Exception):
                    self.connect()
            self._stop.wait(max(0.0, self.every - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self.ftp is not None:
            with contextlib.suppress(Exception):
                self.ftp.quit()
            with contextlib.suppress(Exception):
                self.ftp.close()
            self.ftp = None


class DiskWatcher:
    """When files_dir / Recording.path first exists (the controller renames the finished MP3 there)."""

    def __init__(self, files_dir: Path, every: float = DISK_EVERY) -> None:
        self.files_dir, self.every = files_dir, every
        self.paths: dict[str, str] = {}  # basename -> path relative to files_dir
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for name, path in list(self.paths.items()):
                if name not in self.seen and (self.files_dir / path).exists():
                    self.seen[name] = time.time()
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def recordings_since(system: System, since: datetime) -> list[Recording]:
    with system.db.session() as session:
        rows = list(session.scalars(select(Recording).where(Recording.started_at >= since)
                                    .order_by(Recording.started_at)))
        session.expunge_all()
    return rows


def proc_cpu(pid: int | None) -> tuple[float, float]:
    """CPU seconds of a process itself (all threads) and of its children it has waited for (ffmpeg)."""
    if pid is None:
        return float("nan"), float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan"), float("nan")
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def wall(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


async def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


# -- the run ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, var_dir: Path, phones: list[sipp.Sipp], callers: list[sipp.Sipp],
              holder: dict[str, Any]) -> None:
    n = args.calls
    started = time.monotonic()
    system, _ = await asyncio.to_thread(prepare, var_dir, args)
    holder["system"] = system
    await asyncio.to_thread(system.start)
    ftps = system.settings.ftps
    print(f"controller up ({time.monotonic() - started:.0f} s, {n} agents); FTPS port {ftps.port}, "
          f"passive {ftps.passive_ports}; registering phones", flush=True)

    # FTPS, or the file system when the controller serves no FTPS (yet).
    watcher: FtpsWatcher | None = None
    mode_note = ""
    if not ftps_reachable(ftps.port):
        mode_note = f"nothing listens on the FTPS port {ftps.port}: measured on the file system only"
    else:
        candidate = FtpsWatcher(ftps.port, ADMIN, (var_dir / "initial-admin-password").read_text().strip())
        try:
            await asyncio.to_thread(candidate.connect)
            watcher = candidate
            holder["ftps"] = watcher
        except Exception as exc:
            mode_note = f"FTPS login as {ADMIN} failed ({exc!r}): measured on the file system only"
    watching = f"FTPS (NLST every {FTPS_EVERY:g} s) and the file system" if watcher else mode_note
    print(f"watching: {watching}", flush=True)

    extensions = [str(FIRST_EXTENSION + i) for i in range(n)]
    ramp = (n - 1) / args.rate
    never = 3600.0  # the agents' phones never hang up themselves: the callers do
    stay_ms = int((ramp + SETTLE + args.talk + 900) * 1000)
    for i in range(0, n, args.phones_per_sipp):
        phone = agent_phones(system, extensions[i:i + args.phones_per_sipp], (never, never), stay_ms)
        phones.append(phone)
        await phone.start()
    await wait_registered(system, phones, extensions)
    await log_in_agents(system, extensions)
    await asyncio.sleep(1)
    print(f"{n} phones registered, agents logged in", flush=True)

    # The callers: one sipp, all BYEs at one wall-clock moment.
    since = datetime.now(UTC)
    placed = time.time() + 0.5  # sipp's start-up
    bye_at = placed + ramp + SETTLE + args.talk
    caller = sipp.Sipp(caller_scenario(int(bye_at * 1000)), f"127.0.0.1:{system.sip_port}",
                       ["-s", DID, "-m", str(n), "-r", str(args.rate), "-l", str(n),
                        "-p", str(unique_udp_port()), "-mp", str(unique_udp_port(span=4)),
                        "-timeout", f"{int(ramp + SETTLE + args.talk + 300)}s", "-timeout_error",
                        "-max_recv_loops", "1000", "-trace_logs", "-log_file", "calls.log"])
    caller.workdir.mkdir(parents=True, exist_ok=True)
    callers.append(caller)
    await caller.start()
    print(f"placing {n} calls at {args.rate:g}/s; all hang up at once in {bye_at - time.time():.1f} s "
          f"(talk >= {args.talk:g} s)", flush=True)
    caller_task = asyncio.create_task(caller.wait(timeout=ramp + SETTLE + args.talk + 400))

    disk = DiskWatcher(system.settings.files_dir)
    holder["disk"] = disk

    def want(rows: list[Recording]) -> None:
        for row in rows:
            disk.paths.setdefault(PurePosixPath(row.path).name, row.path)
        if watcher is not None:
            watcher.wanted = frozenset(disk.paths)
            watcher.folders = sorted({"/" + str(PurePosixPath(r.path).parent) for r in rows})

    # Until just before the BYEs: learn the recordings' paths as the calls connect.
    recording_at_bye = 0
    while time.time() < bye_at - 1.0:
        rows = await asyncio.to_thread(recordings_since, system, since)
        want(rows)
        recording_at_bye = sum(1 for r in rows if r.status == "recording")
        if caller_task.done():
            break
        await asyncio.sleep(min(0.5, max(0.0, bye_at - 1.0 - time.time())))
    if watcher is not None:
        watcher.start()
    disk.start()
    await sleep_until(bye_at - 0.3)
    rows = await asyncio.to_thread(recordings_since, system, since)
    want(rows)
    recording_at_bye = sum(1 for r in rows if r.status == "recording")
    assert system.proc is not None
    ast_pid = asterisk_pid(system)
    ctl0, kids0 = proc_cpu(system.proc.pid)
    ast0, _ = proc_cpu(ast_pid)
    busy0, _, all0 = machine_cpu()
    print(f"{recording_at_bye} of {n} calls being recorded 0.3 s before the hang-up moment", flush=True)

    # Until every recording's MP3 is there (or the deadline).
    deadline = bye_at + args.wait
    progress, progress_at = 0, bye_at
    while time.time() < deadline:
        await asyncio.sleep(0.2)
        if len(disk.paths) < n:
            want(await asyncio.to_thread(recordings_since, system, since))
        seen = watcher.seen if watcher is not None else disk.seen
        if len(seen) >= max(n, len(disk.paths)) and len(disk.seen) >= len(disk.paths):
            break
        if len(seen) > progress:
            progress, progress_at = len(seen), time.time()
        elif progress and time.time() - progress_at > 30:
            break  # nothing new for 30 s: the rest will not come
    done_at = time.time()
    ctl1, kids1 = proc_cpu(system.proc.pid)
    ast1, _ = proc_cpu(ast_pid)
    busy1, _, all1 = machine_cpu()
    if watcher is not None:
        await asyncio.to_thread(watcher.stop)
    await disk.stop()

    result = await caller_task
    # The ended_at and status are written together after the conversion: wait for the writer.
    for _ in range(50):
        rows = await asyncio.to_thread(recordings_since, system, since)
        if all(r.status != "recording" for r in rows):
            break
        await asyncio.sleep(0.2)
    calls = read_caller_log(caller.workdir / "calls.log")

    # -- the figures
    target = watcher.seen if watcher is not None else disk.seen
    where = "FTPS" if watcher is not None else "disk"
    byes = sorted(calls.bye.values())
    ended = sorted(wall(r.ended_at) for r in rows if r.ended_at is not None)
    series: list[tuple[str, list[float]]] = []

    def latencies(start_of: dict[str, float], seen: dict[str, float]) -> list[float]:
        out = []
        for row in rows:
            name = PurePosixPath(row.path).name
            if row.id in start_of and name in seen:
                out.append(seen[name] - start_of[row.id])
        return out

    by_bye = {r.id: calls.bye[r.caller] for r in rows if r.caller in calls.bye}
    by_end = {r.id: wall(r.ended_at) for r in rows if r.ended_at is not None}
    series.append((f"caller's BYE -> MP3 on {where}", latencies(by_bye, target)))
    series.append((f"controller saw end (ended_at) -> MP3 on {where}", latencies(by_end, target)))
    if watcher is not None:
        series.append(("caller's BYE -> MP3 on disk", latencies(by_bye, disk.seen)))
        series.append(("controller saw end (ended_at) -> MP3 on disk", latencies(by_end, disk.seen)))
    signalling = [by_end[k] - by_bye[k] for k in by_bye if k in by_end]

    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    seconds = [float(r.seconds) for r in rows if r.seconds is not None]
    window = done_at - bye_at
    cores = os.cpu_count() or 1

    def s(value: float) -> str:
        return f"{value:.2f}" if value == value else "-"

    def spread(values: list[float]) -> str:
        if not values:
            return "-"
        within = sum(1 for v in values if v <= WITHIN)
        return (f"{s(percentile(values, 0.5))} / {s(percentile(values, 0.95))} / {s(max(values))}   "
                f"{within}/{n} within {WITHIN:g} s")

    rows_out: list[tuple[str, str]] = [
        ("command", " ".join(sys.argv)),
        ("measured on", f"FTPS (NLST every {FTPS_EVERY:g} s; {watcher.listings} listings, "
                        f"{1000 * watcher.list_seconds / max(1, watcher.listings):.0f} ms each) and disk"
                        if watcher is not None else f"disk only - {mode_note}"),
        ("calls placed / sipp ok / failed", f"{n} / {result.successful} / {result.failed}"),
        ("recordings: rows / by status",
         f"{len(rows)} / " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
        ("being recorded just before the hang-up", f"{recording_at_bye} of {n}"),
        ("answered after the hang-up moment", f"{len(calls.late)}"),
        ("recorded length min / max (s)", f"{s(min(seconds, default=float('nan')))} / "
                                          f"{s(max(seconds, default=float('nan')))}"),
        ("BYEs sent: spread first -> last (s)", s(byes[-1] - byes[0]) if byes else "-"),
        ("controller saw the ends: spread (s)", s(ended[-1] - ended[0]) if ended else "-"),
        ("BYE -> controller saw end p50 / p95 / max (s)",
         f"{s(percentile(signalling, 0.5))} / {s(percentile(signalling, 0.95))} / "
         f"{s(max(signalling, default=float('nan')))}"),
    ]
    rows_out += [(f"{name} p50 / p95 / max (s)", spread(values)) for name, values in series]
    rows_out += [
        ("MP3s seen on FTPS / on disk" if watcher is not None else "MP3s seen on disk",
         f"{len(target)} / {len(disk.seen)} of {n}" if watcher is not None else f"{len(disk.seen)} of {n}"),
        ("burst window (hang-up moment -> last MP3 seen)", f"{window:.1f} s"),
        ("controller CPU in the window", f"{ctl1 - ctl0:.2f} s own + {kids1 - kids0:.2f} s ffmpeg (children)"),
        ("Asterisk CPU in the window", f"{ast1 - ast0:.2f} s"),
        ("machine CPU busy in the window", f"{100 * (busy1 - busy0) / max(1e-9, all1 - all0):.0f}% of {cores} cores"),
    ]
    width = max(len(name) for name, _ in rows_out)
    print()
    for name, value in rows_out:
        print(f"{name:<{width}}  {value}")
    print(f"latencies in seconds: p50 / p95 / max over the calls with both times; the BYE time is sipp's "
          f"clock when it sent it, ended_at the controller's when it saw the call end; 'seen' is the first "
          f"listing (FTPS every {FTPS_EVERY:g} s, disk every {DISK_EVERY:g} s) that showed the MP3.")
    if mode_note:
        print(f"NOTE: {mode_note}")
    if watcher is not None and watcher.errors:
        print("FTPS errors:", *watcher.errors[:5], sep="\n  ")
    if result.failed or len(rows) < n:
        print(f"caller output tail:\n{result.output[-2000:]}")
    failed = [r for r in rows if r.status == "failed"]
    for row in failed[:5]:
        print(f"recording {row.id} failed: {row.error}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="calls (and agents)")
    parser.add_argument("--talk", type=float, default=20.0, help="seconds each call talks at least")
    parser.add_argument("--rate", type=float, default=20.0, help="calls placed per second")
    parser.add_argument("--bitrate", type=int, default=None, help="[recording] bitrate (kbit/s) override")
    parser.add_argument("--workers", type=int, default=None, help="[recording] workers override")
    parser.add_argument("--wait", type=float, default=180.0, help="seconds after the hang-up to wait for MP3s")
    parser.add_argument("--phones-per-sipp", type=int, default=100,
                        help="agent phones per sipp process (each idle sipp wakes up every millisecond)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database, MP3s)")
    args = parser.parse_args()
    if not 1 <= args.calls <= 999 or args.talk <= 0 or args.rate <= 0 or args.phones_per_sipp < 1:
        parser.error("need 1 <= calls <= 999, a positive talk time and rate, at least one phone per sipp")

    cancel_on_signals()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    phones: list[sipp.Sipp] = []
    callers: list[sipp.Sipp] = []
    holder: dict[str, Any] = {}
    succeeded = False
    try:
        await run(args, var_dir, phones, callers, holder)
        succeeded = True
    finally:
        if "ftps" in holder:
            await asyncio.to_thread(holder["ftps"].stop)
        if "disk" in holder:
            await holder["disk"].stop()
        await asyncio.gather(*(p.stop() for p in callers + phones), return_exceptions=True)
        if "system" in holder:
            await asyncio.to_thread(stop_system, holder["system"])
        if succeeded and not args.keep:
            for directory in [var_dir] + [s.workdir for s in callers + phones]:
                shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"logs, database and MP3s kept in {var_dir}, sipp's in "
                  f"{', '.join(str(s.workdir) for s in callers + phones) or '/tmp/sipp-*'}", file=sys.stderr)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
