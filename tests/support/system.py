"""A real controller and Asterisk for tests and benchmarks: `callcenter run` as users start it, on
free ports and its own Asterisk instance, and helpers to read what they wrote."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from callcenter.asterisk.layout import AsteriskLayout, resolve_layout
from callcenter.config import Settings, load_settings
from callcenter.db.engine import Database
from callcenter.db.models import Call, CallEvent, Cdr, IvrStep, IvrVisit
from callcenter.users import first_start
from tests.support import sipp

REPO = Path(__file__).resolve().parents[2]
DIAL_TIMEOUT = 3
RING_TIMEOUT = 5  # seconds an agent phone rings per offer in the test queues
WRAPUP = 3        # seconds of wrap-up in the test queue "callback"
CAMPAIGN = "spring"  # the test campaign: predictive, AMD, queue "outbound" (2001-2004 and 2006)

T = TypeVar("T")


async def wait_for(predicate: Callable[[], T], timeout: float, what: str,
                   detail: Callable[[], str] | None = None, interval: float = 0.1) -> T:
    """Polls ``predicate`` until it returns something truthy and returns that. After ``timeout``
    seconds it fails naming ``what``, the last value seen and ``detail()`` (a log tail, say).
    Async so that the test's sipp processes and panel sessions go on meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"no {what} within {timeout:g} s (last seen: {value!r}){extra}")
        await asyncio.sleep(interval)


def config_text(var_dir: Path, instance: str, ports: dict[str, int], db_url: str, log_level: str = "info",
                poll_interval: float = 0.05) -> str:
    return f"""
[sip]
port = {ports['sip']}
trunk_port = {ports['trunk']}

[asterisk]
instance = "{instance}"
http_port = {ports['http']}
ami_port = {ports['ami']}
dial_timeout = {DIAL_TIMEOUT}
boot_timeout = 60
root = "{REPO / '.asterisk' / 'root'}"

[ari]
reconnect_min = 0.1
reconnect_max = 1.0

[web]
port = {ports['web']}

[database]
url = "{db_url}"

[paths]
var_dir = "{var_dir}"
sounds_dir = "{REPO / 'sounds'}"
ivr_dir = "{var_dir / 'ivr_flows'}"
dialplan_dir = "{REPO / 'dialplan'}"

[log]
level = "{log_level}"

[ftps]
port = {ports['ftps']}
passive_ports = "{ports['passive']}-{ports['passive'] + 9}"

[tickets]
missed_calls_unit = "Demo"

[webhooks]
# Short waits, so a test sees retries in seconds (the defaults: 10 s, 5 s doubling up to an hour).
timeout = 1
first_retry_seconds = 0.5
max_retry_seconds = 3
poll_seconds = 0.1

[cdr]
poll_interval = {poll_interval}
rates_file = "{REPO / 'config' / 'rates.csv'}"

[dids.1000]
name = "Demo greeting"
route = "greeting:welcome"

[dids.1001]
name = "Sales line"
route = "extension:2002"

[dids.1002]
name = "Beep"
route = "greeting:beep"

[dids.1100]
name = "Main line"
route = "ivr:main"

[dids.1101]
name = "Deep test flow"
route = "ivr:deep"

[dids.1102]
name = "Hours test flow"
route = "ivr:hours"

[dids.1200]
name = "Queue idle"
route = "queue:idle"

[dids.1201]
name = "Queue ring-all"
route = "queue:all"

[dids.1202]
name = "Queue skills"
route = "queue:skills"

[dids.1203]
name = "Queue overflow"
route = "queue:overflow"

[dids.1204]
name = "Queue callback"
route = "queue:callback"

[dids.1205]
name = "Queue recorded"
route = "queue:recorded"

[dids.1206]
name = "Queue to voicemail"
route = "queue:tovoicemail"

[acd]
missed_limit = 2

[dids.1103]
name = "VIP line"
route = "ivr:vip"

[queues.sales]
org_unit = "Demo"
members = ["2002"]
overflow = ""
announce_every = 0

[queues.support]
org_unit = "Demo"
members = ["2004"]
overflow = "callback"
announce_every = 0

[queues.idle]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2001", "2002", "2003"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 0
overflow = ""
announce_every = 0

[queues.all]
org_unit = "Demo"
strategy = "ring-all"
members = ["2001", "2002", "2003"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 0
overflow = ""
announce_every = 0

[queues.skills]
org_unit = "Demo"
strategy = "skills"
members = {{ "2001" = 30, "2002" = 80, "2003" = 50 }}
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 0
overflow = ""
announce_every = 0

[queues.overflow]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2004"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 4
overflow = "queue:idle"
announce_every = 0

[queues.recorded]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2003"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 0
overflow = ""
announce_every = 0
record = "always"

[monitor_groups.team]
supervisors = ["2005"]
agents = ["2001", "2002", "2003"]

[queues.tovoicemail]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2004"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 2
overflow = "voicemail:2004"
announce_every = 0

[queues.outbound]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2001", "2002", "2003", "2004", "2006"]
ring_timeout = {RING_TIMEOUT}
wrapup = 1
max_wait = 0
overflow = ""
announce_every = 0

[campaigns.{CAMPAIGN}]
queue = "outbound"
caller_id = "+48221234500"
mode = "predictive"
agent_line = "ring"  # its test follows each agent phone's offer (the slow one's are abandoned)
region = "PL"
ring_seconds = 15
amd = true
machine_action = "message"
machine_message = "goodbye"  # short prompts: the test waits for every call to end
abandon_message = "goodbye"
min_agents = 2
record = "always"
retries = {{ busy = "2s x2", no_answer = "1h x2", machine = "1h x2", abandoned = "1h x3", failed = "1h x2" }}
dispositions = {{ sale = "done", other = "retry 1h" }}

[queues.preview]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2001"]
ring_timeout = {RING_TIMEOUT}
wrapup = 30
max_wait = 0
overflow = ""
announce_every = 0

[queues.progressive]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2002", "2003"]
ring_timeout = {RING_TIMEOUT}
wrapup = 0
max_wait = 0
overflow = ""
announce_every = 0

[campaigns.autumn]
queue = "preview"
caller_id = "+48221234501"
mode = "preview"
region = "PL"
ring_seconds = 15
dispositions = {{ sale = "done", other = "callback" }}

[campaigns.winter]
queue = "progressive"
caller_id = "+48221234502"
mode = "progressive"
region = "PL"
ring_seconds = 15
retries = {{ busy = "1h x2" }}

[campaigns.summer]  # agent sessions: each agent's phone is called once (test_dialer_sessions.py)
queue = "progressive"
caller_id = "+48221234503"
mode = "progressive"
region = "PL"
ring_seconds = 15
dispositions = {{ sale = "done" }}

[campaigns.solstice]  # progressive, phones rung per call: its abandon brake (test_dialer_sessions.py)
queue = "outbound"
caller_id = "+48221234505"
mode = "progressive"
agent_line = "ring"
region = "PL"
ring_seconds = 15
dispositions = {{ sale = "done" }}

[campaigns.equinox]  # the same agents, their phones rung for each call
queue = "progressive"
caller_id = "+48221234504"
mode = "progressive"
agent_line = "ring"
region = "PL"
ring_seconds = 15
dispositions = {{ sale = "done" }}

[queues.callback]
org_unit = "Demo"
strategy = "longest-idle"
members = ["2004"]
ring_timeout = {RING_TIMEOUT}
wrapup = {WRAPUP}
max_wait = 0
overflow = "callback"
announce_every = 3
"""


@dataclass
class System:
    """A running controller with its Asterisk, and what tests need to talk to them."""

    config: Path
    settings: Settings
    layout: AsteriskLayout
    db: Database
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    # SIP passwords of users a test added itself, by extension (the database has only their digests).
    sip_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def sip_port(self) -> int:
        return self.settings.sip.port

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CALLCENTER_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "callcenter", *args], env=self.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "run"], env=self.env(), cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.health().get("ok"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"controller not healthy in time:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_size(self) -> int:
        """Where the controller's log ends now: pass it to ``log_since`` to read only what follows."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as source:
            source.seek(offset)
            return source.read().decode(errors="replace")

    async def wait_log(self, text: str, since: int, timeout: float = 10) -> None:
        """Until the controller logs ``text`` after byte ``since`` of its log."""
        await wait_for(lambda: text in self.log_since(since), timeout, f"log line {text!r}",
                       lambda: self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.web_url + "/health", timeout=3) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except OSError:
            return {}

    def get(self, path: str) -> str:
        """GET as a scraper would: with the install's metrics token (``var/secrets.json``)."""
        token = json.loads((self.settings.var_dir / "secrets.json").read_text())["metrics_token"]
        request = urllib.request.Request(self.web_url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())

    def asterisk(self, command: str) -> str:
        return subprocess.run(self.layout.cli(command), capture_output=True, text=True, timeout=15).stdout

    def password(self, extension: str) -> str:
        """The SIP password of a demo user, from the first-start file (only its digest is in the database)."""
        secret = self.sip_passwords.get(extension) or self._first_start(extension).sip_password
        assert secret, f"{extension} has no SIP password"
        return secret

    def panel_password(self, login: str) -> str:
        """The panel password of a demo user or the admin (by extension or login), from the first-start file."""
        return self._first_start(login).panel_password

    def _first_start(self, key: str) -> first_start.Account:
        accounts = first_start.read(self.settings.var_dir)
        account = next((a for a in accounts if key in (a.extension, a.login)), None)
        assert account is not None, f"no user {key} among the first-start passwords"
        return account

    def cdr_count(self) -> int:
        with self.db.session() as session:
            return len(session.scalars(select(Cdr.id)).all())

    def wait_cdrs(self, after: int, count: int = 1, timeout: float = 15) -> list[Cdr]:
        """The CDRs written after the first ``after`` ones, once ``count`` of them exist."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.session() as session:
                rows = list(session.scalars(select(Cdr).order_by(Cdr.id).offset(after)))
            if len(rows) >= count:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"expected {count} new CDR(s) after {after}; log:\n{self.log_tail()}")

    def visits_since(self, since: datetime, count: int = 1,
                     timeout: float = 15) -> list[tuple[IvrVisit, list[IvrStep]]]:
        """The IVR visits started after ``since``, once ``count`` of them have ended, with their steps."""
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as session:
                visits = list(session.scalars(select(IvrVisit).where(IvrVisit.started_at >= since)
                                              .order_by(IvrVisit.started_at)))
                ended = [v for v in visits if v.ended_at is not None]
                if len(ended) >= count or time.monotonic() > deadline:
                    assert len(ended) >= count, f"{len(ended)} of {count} IVR visits ended:\n{self.log_tail()}"
                    return [(v, list(session.scalars(select(IvrStep).where(IvrStep.visit_id == v.id)
                                                     .order_by(IvrStep.seq)))) for v in ended]
            time.sleep(0.1)

    def call_events(self, linkedid: str) -> list[str]:
        with self.db.session() as session:
            call = session.scalar(select(Call).where(Call.linkedid == linkedid))
            assert call is not None
            return list(session.scalars(select(CallEvent.event_type).where(CallEvent.call_id == call.id)
                                        .order_by(CallEvent.id)))

    def no_channels_left(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            out = self.asterisk("core show channels count")
            if "0 active channels" in out:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"channels left in Asterisk: {out}")
        # And the ledger has written the CDRs of those calls, so a test that counts new CDRs from now on
        # does not get the previous test's last one.
        open_calls: list[str] = []
        while time.monotonic() < deadline:
            with self.db.session() as session:
                open_calls = list(session.scalars(select(Call.linkedid).where(Call.state == "active")))
            if not open_calls:
                return
            time.sleep(0.1)
        raise AssertionError(f"calls the ledger has not closed: {open_calls}; log:\n{self.log_tail()}")


def free_ports() -> dict[str, int]:
    return {"sip": sipp.free_udp_port(), "trunk": sipp.free_udp_port(), "http": sipp.free_tcp_port(),
            "ami": sipp.free_tcp_port(), "web": sipp.free_tcp_port(), "ftps": sipp.free_tcp_port(),
            "passive": free_port_range(10)}


def free_port_range(count: int) -> int:
    """The first of ``count`` consecutive TCP ports that are free now (FTPS passive ports)."""
    import random
    import socket
    for _ in range(200):
        base = random.randrange(sipp.LISTEN_PORTS[0], sipp.LISTEN_PORTS[1] - count)
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free port range")


def install_test_flows(directory: Path) -> None:
    """The demo flow, open around the clock so tests do not depend on the hour, and the test flows."""
    directory.mkdir(parents=True, exist_ok=True)
    demo = (REPO / "ivr_flows" / "main.yaml").read_text()
    weekly = '      mon-fri: "08:00-20:00"\n      sat: "09:00-14:00"\n'
    assert weekly in demo, "the demo's opening hours changed: update install_test_flows"
    (directory / "main.yaml").write_text(demo.replace(weekly, '      mon-sun: "00:00-24:00"\n'))
    for flow in (REPO / "tests" / "integration" / "flows").glob("*.yaml"):
        (directory / flow.name).write_text(flow.read_text())


def start_system(var_dir: Path, database_url: str, instance: str | None = None, log_level: str = "info",
                 poll_interval: float = 0.05) -> System:
    """Tests read CDRs soon after a call (poll_interval 0.05 s); the benchmark uses the default."""
    instance = instance or f"test-{os.getpid()}"
    install_test_flows(var_dir / "ivr_flows")
    config = var_dir / "callcenter.toml"
    config.write_text(config_text(var_dir, instance, free_ports(), database_url, log_level, poll_interval))
    settings = load_settings(config, environ={})
    system = System(config, settings, resolve_layout(settings), Database(settings.database_url),
                    var_dir / "controller.log")
    system.start()
    return system


def stop_system(system: System) -> None:
    if system.proc and system.proc.poll() is None:
        system.stop()
    system.db.dispose()
    subprocess.run(["rm", "-rf", str(system.layout.host_dir)], check=False)
