"""One typed place for settings: defaults, then the TOML file, then the environment.

Environment variables override single keys as ``CALLCENTER_<SECTION>__<KEY>`` (for example
``CALLCENTER_WEB__PORT=8081``); ``CALLCENTER_CONFIG`` names the file. A wrong key or value stops
start-up with the file, the line, the key and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.dialer.rules import (
    CallingWindow,
    Disposition,
    RetryRule,
    parse_dispositions,
    parse_retries,
    parse_window,
)
from callcenter.errors import ConfigError

DEFAULT_CONFIG = Path("config/callcenter.toml")
ENV_PREFIX = "CALLCENTER_"


def _opt(default: Any, *, choices: tuple[str, ...] = (), lo: float | None = None,
         hi: float | None = None, pattern: str | None = None) -> Any:
    return field(default=default, metadata={"choices": choices, "lo": lo, "hi": hi, "pattern": pattern})


@dataclass(frozen=True)
class SipSettings:
    bind: str = _opt("127.0.0.1")
    port: int = _opt(5060, lo=1, hi=65535)
    # Calls from this address that match no user name come in on the `pstn` trunk endpoint.
    trunk_address: str = _opt("127.0.0.1")
    # Where calls out through the trunk go (the demo "PSTN" listens there).
    trunk_port: int = _opt(5090, lo=1, hi=65535)


@dataclass(frozen=True)
class AsteriskSettings:
    mode: str = _opt("auto", choices=("auto", "chroot", "system"))
    root: str = _opt(".asterisk/root")
    binary: str = _opt("asterisk")
    instance: str = _opt("main", pattern=r"^[A-Za-z0-9_-]+$")
    manage: bool = _opt(True)
    http_port: int = _opt(8088, lo=1, hi=65535)
    ami_port: int = _opt(5038, lo=1, hi=65535)
    app: str = _opt("callcenter", pattern=r"^[A-Za-z0-9_-]+$")
    dial_timeout: int = _opt(30, lo=1, hi=600)
    line_check_number: str = _opt("9999", pattern=r"^[0-9]{1,32}$")
    boot_timeout: float = _opt(60.0, lo=1, hi=600)


@dataclass(frozen=True)
class AriSettings:
    request_timeout: float = _opt(5.0, lo=0.1, hi=120)
    reconnect_min: float = _opt(0.2, lo=0.01, hi=60)
    reconnect_max: float = _opt(5.0, lo=0.1, hi=300)


@dataclass(frozen=True)
class WebSettings:
    bind: str = _opt("127.0.0.1")
    port: int = _opt(8080, lo=1, hi=65535)
    # Mark session cookies Secure even on plain HTTP: set it when a TLS proxy serves the panel.
    secure_cookies: bool = _opt(False)
    # Serve the demo's helpers (the IVR's account lookup at /demo/balance): the built-in settings are the
    # demo's; a production configuration sets it false.
    demo: bool = _opt(True)


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty means a SQLite file var/callcenter.db under paths.var_dir.
    url: str = _opt("")


@dataclass(frozen=True)
class PathsSettings:
    var_dir: str = _opt("var")
    sounds_dir: str = _opt("sounds")
    ivr_dir: str = _opt("ivr_flows")
    dialplan_dir: str = _opt("dialplan")


@dataclass(frozen=True)
class LogSettings:
    level: str = _opt("info", choices=("debug", "info", "warning", "error"))
    format: str = _opt("text", choices=("text", "json"))


@dataclass(frozen=True)
class CdrSettings:
    poll_interval: float = _opt(0.2, lo=0.01, hi=10)
    # The rate table for calls out through the trunk: CSV prefix,destination,rate (per minute).
    rates_file: str = _opt("config/rates.csv")
    # Charged time is billsec rounded up to this many seconds (1: per second, 60: per started minute)...
    billing_increment: int = _opt(1, lo=1, hi=3600)
    # ...and never less than this many seconds for an answered call.
    billing_minimum: int = _opt(0, lo=0, hi=3600)
    # Dialled numbers with a national 0 get this country code for the rate lookup ("49"); "": none.
    country_code: str = _opt("", pattern=r"^[0-9]{0,4}$")


RECORDING_POLICY_PATTERN = r"^(always|never|(100|[1-9]?[0-9])%)$"


@dataclass(frozen=True)
class RecordingSettings:
    # Calls that no queue, campaign or agent policy covers: always, never or a percentage ("25%").
    policy: str = _opt("never", pattern=RECORDING_POLICY_PATTERN)
    # MP3 bitrate in kbit/s (ffmpeg is always given it: its default for 8 kHz voice is far lower).
    bitrate: int = _opt(32, lo=8, hi=320)
    # Conversions to MP3 running at once.
    workers: int = _opt(2, lo=1, hi=32)


@dataclass(frozen=True)
class FtpsSettings:
    enabled: bool = _opt(True)
    bind: str = _opt("127.0.0.1")
    port: int = _opt(2121, lo=1, hi=65535)
    # Data connections use ports from this range ("first-last").
    passive_ports: str = _opt("30000-30049", pattern=r"^[0-9]{1,5}-[0-9]{1,5}$")
    # PEM certificate and key. Empty: one is generated on first run under <var_dir>/ftps/.
    certificate: str = _opt("")
    private_key: str = _opt("")
    # The address given to clients for passive connections when it differs from bind (behind NAT).
    masquerade_address: str = _opt("")


@dataclass(frozen=True)
class ExportSettings:
    # When the daily CDR and queue-call files of the previous day are written (UTC, HH:MM:SS).
    at: str = _opt("01:00:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
    # When the retention purge runs (UTC).
    purge_at: str = _opt("02:00:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")


@dataclass(frozen=True)
class AcdSettings:
    # An agent who lets this many offered calls in a row go unanswered is paused ("missed").
    missed_limit: int = _opt(3, lo=1, hi=100)
    # The key a waiting caller presses to be called back without losing their place.
    callback_key: str = _opt("1", pattern=r"^[0-9*#]$")
    # Estimated wait uses the handle times of this many recent calls of the queue...
    estimate_calls: int = _opt(20, lo=1, hi=1000)
    # ...and this handle time (seconds) until a queue has any.
    default_handle_time: int = _opt(180, lo=1, hi=7200)
    # Where click-to-call and callbacks dial numbers that are not extensions: a PJSIP endpoint.
    trunk: str = _opt("pstn", pattern=r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class DidRoute:
    name: str
    route: str


STRATEGIES = ("longest-idle", "ring-all", "round-robin", "fewest-calls", "skills")
OVERFLOW_KINDS = ("queue", "voicemail", "ivr", "callback")


@dataclass(frozen=True)
class QueueSpec:
    """A queue as the configuration defines it (synchronised into the database at start)."""

    name: str
    strategy: str = "longest-idle"
    # Extension -> skill level (1-100, higher is better; only the skills strategy looks at it).
    members: Mapping[str, int] = field(default_factory=dict)
    ring_timeout: int = 15
    wrapup: int = 15
    max_wait: int = 300
    service_level: int = 20
    # "" keeps callers waiting; else queue:<name>, voicemail:<mailbox>, ivr:<flow> or callback.
    overflow: str = "callback"
    announce_every: int = 30
    moh_class: str = "default"
    # Recording policy of the queue's calls: "" (none of its own), always, never or "NN%".
    record: str = ""
    # The organisational unit whose supervisors see and act on the queue (and its campaigns); "": only
    # supervisors given every unit.
    org_unit: str = ""


CAMPAIGN_MODES = ("preview", "progressive", "predictive")
ABANDON_WINDOWS = {"30d": 30 * 86400, "24h": 86400}  # US rule (30 days per campaign), UK rule (24 hours)
MACHINE_ACTIONS = ("hangup", "message")
# How a campaign's agents take its calls: a kept line called once at campaign login (acd/sessions.py),
# or their phone rung for each call.
AGENT_LINES = ("session", "ring")


@dataclass(frozen=True)
class CampaignSpec:
    """An outbound campaign (DIA-1..5); which contacts it has and whether it runs live in the database."""

    name: str
    queue: str
    caller_id: str
    mode: str = "predictive"
    trunk: str = ""  # "" = [acd] trunk
    hours: CallingWindow = field(default_factory=CallingWindow)
    # Numbers written without a country code are read in this region (ISO 3166 code)...
    region: str = "US"
    # ...and a number whose zone neither its list nor the number tells is called in this one ("" = rejected).
    timezone: str = ""
    ring_seconds: int = 25
    record: str = ""
    abandon_target: float = 3.0  # percent
    abandon_windows: tuple[str, ...] = ("30d", "24h")
    min_agents: int = 5
    amd: bool = False
    machine_action: str = "hangup"
    machine_message: str = "dialer-machine"
    abandon_message: str = "dialer-abandon"
    # Share (percent) of AMD "machine" verdicts that were people: counted as abandons in the 24h window.
    amd_false_positive_rate: float = 2.0
    retries: Mapping[str, RetryRule] = field(default_factory=dict)
    dispositions: Mapping[str, Disposition] = field(default_factory=dict)
    # The ACD's callback list (missed and abandoned inbound calls) feeds this campaign.
    callback_list: bool = False
    agent_line: str = "session"
    # What an agent in a session hears between calls: "" silence, else a music-on-hold class.
    session_music: str = ""


@dataclass(frozen=True)
class MonitorGroupSpec:
    """Supervisors who may monitor agents (MON-2); ``agents`` empty with ``all_agents``: everyone."""

    name: str
    supervisors: tuple[str, ...]
    agents: tuple[str, ...]
    all_agents: bool = False


@dataclass(frozen=True)
class PauseReason:
    code: str
    label: str
    needs_approval: bool = False


@dataclass(frozen=True)
class Settings:
    sip: SipSettings = field(default_factory=SipSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    ari: AriSettings = field(default_factory=AriSettings)
    web: WebSettings = field(default_factory=WebSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    paths: PathsSettings = field(default_factory=PathsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    cdr: CdrSettings = field(default_factory=CdrSettings)
    acd: AcdSettings = field(default_factory=AcdSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    ftps: FtpsSettings = field(default_factory=FtpsSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    dids: Mapping[str, DidRoute] = field(default_factory=dict)
    queues: Mapping[str, QueueSpec] = field(default_factory=dict)
    pause_reasons: Mapping[str, PauseReason] = field(default_factory=dict)
    wrapup_codes: Mapping[str, str] = field(default_factory=dict)
    # Extension -> recording policy of that agent's calls.
    recording_agents: Mapping[str, str] = field(default_factory=dict)
    monitor_groups: Mapping[str, MonitorGroupSpec] = field(default_factory=dict)
    campaigns: Mapping[str, CampaignSpec] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def var_dir(self) -> Path:
        return Path(self.paths.var_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.var_dir / 'callcenter.db'}"

    @property
    def files_dir(self) -> Path:
        """What admins download: CDRs/, QueueCalls/, Recordings/ and units/<unit id>/ (docs/ftps.md)."""
        return self.var_dir / "files"


TABLES = ("dids", "queues", "pause_reasons", "wrapup_codes", "recording_agents", "monitor_groups", "campaigns")
SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in (*TABLES, "source")
}

ROUTE_KINDS = ("ivr", "greeting", "extension", "queue")
_DID_RE = re.compile(r"^[0-9+*#]{1,32}$")


class _Located:
    """Finds the line of a key in the TOML text, so errors can name it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, section: str, key: str | None = None) -> int | None:
        current = ""
        header = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
        for number, line in enumerate(self.lines, start=1):
            match = header.match(line)
            if match:
                current = match.group(1).replace('"', "").strip()
                if key is None and current == section:
                    return number
                continue
            if key is not None and current == section:
                name = line.split("=", 1)[0].strip().strip('"').strip("'")
                if "=" in line and name == key:
                    return number
        return None


def _coerce(value: Any, kind: Any, source: str) -> Any:
    """Turns a TOML or environment value into the declared type; raises ValueError with a reason."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if source == "env" and isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        raise ValueError(f"must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if source == "env" and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise ValueError(f"must be a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if source == "env" and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"must be a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"must be a string, got {value!r}")
    raise ValueError(f"unsupported type {kind!r}")  # pragma: no cover - a programming error


def _check(f: dataclasses.Field[Any], value: Any) -> None:
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ValueError(f"must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta.get("lo") is not None and value < meta["lo"]:
        raise ValueError(f"must be at least {meta['lo']}, got {value!r}")
    if meta.get("hi") is not None and value > meta["hi"]:
        raise ValueError(f"must be at most {meta['hi']}, got {value!r}")
    if meta.get("pattern") and not re.fullmatch(meta["pattern"], value):
        raise ValueError(f"must match {meta['pattern']}, got {value!r}")


def _build_section(cls: type, name: str, values: Mapping[str, tuple[Any, str]],
                   file: str, where: _Located) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, (raw, source) in values.items():
        label = f"{'env ' + ENV_PREFIX + name.upper() + '__' + key.upper() if source == 'env' else f'[{name}] {key}'}"
        line = where.line_of(name, key) if source == "file" else None
        if key not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(file if source == "file" else "<environment>", label,
                              f"unknown key (known keys: {choices})", line)
        try:
            value = _coerce(raw, hints[key], source)
            _check(known[key], value)
        except ValueError as exc:
            raise ConfigError(file if source == "file" else "<environment>", label, str(exc), line) from None
        kwargs[key] = value
    return cls(**kwargs)


def _parse_dids(raw: Any, file: str, where: _Located) -> dict[str, DidRoute]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[dids]", "must be a table of DID = { name, route }", where.line_of("dids"))
    dids: dict[str, DidRoute] = {}
    for did, spec in raw.items():
        line = where.line_of(f"dids.{did}") or where.line_of("dids", did)
        key = f"[dids.{did}]"
        if not _DID_RE.match(did):
            raise ConfigError(file, key, "a DID is 1-32 digits, +, * or #", line)
        if not isinstance(spec, dict) or set(spec) - {"name", "route"} or "route" not in spec:
            raise ConfigError(file, key, 'must be { name = "...", route = "kind:target" }', line)
        route = spec["route"]
        kind, _, target = str(route).partition(":")
        if kind not in ROUTE_KINDS or not target:
            raise ConfigError(file, key, f"route {route!r}: must be one of "
                              f"{', '.join(k + ':<target>' for k in ROUTE_KINDS)}", line)
        dids[did] = DidRoute(name=str(spec.get("name", did)), route=str(route))
    return dids


_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_QUEUE_INTS = {"ring_timeout": (5, 600), "wrapup": (0, 3600), "max_wait": (0, 86400),
               "service_level": (1, 3600), "announce_every": (0, 3600)}
DEFAULT_QUEUES = {
    "sales": {"strategy": "longest-idle", "members": ["2001", "2002", "2003"], "record": "always",
              "org_unit": "Demo"},
    "support": {"strategy": "skills", "members": {"2003": 50, "2004": 90}, "overflow": "queue:sales",
                "record": "always", "org_unit": "Demo"},
}
DEFAULT_PAUSE_REASONS = {"break": "Break", "lunch": "Lunch", "training": {"label": "Training", "approval": True}}
DEFAULT_WRAPUP_CODES = {"sale": "Sale", "info": "Information given", "complaint": "Complaint", "other": "Other"}


def _parse_queues(raw: Any, file: str, where: _Located) -> dict[str, QueueSpec]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[queues]", "must be a table of [queues.<name>] tables", where.line_of("queues"))
    queues: dict[str, QueueSpec] = {}
    for name, spec in raw.items():
        line = where.line_of(f"queues.{name}") or where.line_of("queues", name)
        key = f"[queues.{name}]"
        if not _NAME_RE.match(name):
            raise ConfigError(file, key, "a queue name is 1-40 letters, digits, _ or -", line)
        if isinstance(spec, list):  # the short form: name = ["2001", "2002"]
            spec = {"members": spec}
        if not isinstance(spec, dict):
            raise ConfigError(file, key, 'must be a table (strategy, members, ...) or a list of extensions', line)

        def fail(field_name: str, problem: str, name: str = name, line: int | None = line) -> ConfigError:
            return ConfigError(file, f"[queues.{name}] {field_name}",
                               problem, where.line_of(f"queues.{name}", field_name) or line)

        known = {f.name for f in dataclasses.fields(QueueSpec)} - {"name"}
        for field_name in spec:
            if field_name not in known:
                raise fail(field_name, f"unknown key (known keys: {', '.join(sorted(known))})")
        members_raw = spec.get("members", [])
        members: dict[str, int] = {}
        if isinstance(members_raw, list):
            members_raw = {m: 1 for m in members_raw} if all(isinstance(m, str) for m in members_raw) else None
        if not isinstance(members_raw, dict):
            raise fail("members", 'must be a list of extensions or a table extension = skill (1-100)')
        for ext, skill in members_raw.items():
            if not re.fullmatch(r"[1-9][0-9]{1,9}", str(ext)):
                raise fail("members", f"{ext!r} is not an extension")
            if isinstance(skill, bool) or not isinstance(skill, int) or not 1 <= skill <= 100:
                raise fail("members", f"skill of {ext} must be a whole number 1-100, got {skill!r}")
            members[str(ext)] = skill
        values: dict[str, Any] = {"name": name, "members": members}
        strategy = spec.get("strategy", "longest-idle")
        if strategy not in STRATEGIES:
            raise fail("strategy", f"must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        values["strategy"] = strategy
        for field_name, (lo, hi) in _QUEUE_INTS.items():
            if field_name in spec:
                value = spec[field_name]
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise fail(field_name, f"must be a whole number {lo}-{hi}, got {value!r}")
                values[field_name] = value
        overflow = spec.get("overflow", "callback")
        kind, _, target = str(overflow).partition(":")
        if overflow != "" and (kind not in OVERFLOW_KINDS or (kind != "callback" and not target)):
            raise fail("overflow", f"must be \"\", callback, queue:<name>, voicemail:<mailbox> or ivr:<flow>, "
                                   f"got {overflow!r}")
        values["overflow"] = str(overflow)
        if "record" in spec:
            if not isinstance(spec["record"], str) or not re.fullmatch(RECORDING_POLICY_PATTERN + "|^$",
                                                                       spec["record"]):
                raise fail("record", f'must be "", always, never or a percentage like "25%", got {spec["record"]!r}')
            values["record"] = spec["record"]
        if "moh_class" in spec:
            if not isinstance(spec["moh_class"], str) or not _NAME_RE.match(spec["moh_class"]):
                raise fail("moh_class", "must be a music-on-hold class name")
            values["moh_class"] = spec["moh_class"]
        if "org_unit" in spec:
            unit = spec["org_unit"]
            if not isinstance(unit, str) or len(unit) > 100 or re.search(r"[/\x00-\x1f\x7f]", unit):
                raise fail("org_unit", f"must be a unit name (up to 100 characters, no '/'), got {unit!r}")
            values["org_unit"] = unit.strip()
        queues[name] = QueueSpec(**values)
    for name, queue in queues.items():
        kind, _, target = queue.overflow.partition(":")
        if kind == "queue" and (target not in queues or target == name):
            raise ConfigError(file, f"[queues.{name}] overflow", f"queue {target!r} is not another configured queue",
                              where.line_of(f"queues.{name}", "overflow") or where.line_of(f"queues.{name}"))
    return queues


def _parse_pause_reasons(raw: Any, file: str, where: _Located) -> dict[str, PauseReason]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[pause_reasons]", 'must be a table of code = "Label"', where.line_of("pause_reasons"))
    reasons: dict[str, PauseReason] = {}
    for code, spec in raw.items():
        line = where.line_of("pause_reasons", code) or where.line_of(f"pause_reasons.{code}")
        if not _NAME_RE.match(code) or code == "missed":
            raise ConfigError(file, f"[pause_reasons] {code}", "a code is 1-40 letters, digits, _ or - "
                              "('missed' is reserved for unanswered calls)", line)
        if isinstance(spec, str):
            spec = {"label": spec}
        if not isinstance(spec, dict) or set(spec) - {"label", "approval"} or not isinstance(
                spec.get("label", code), str) or not isinstance(spec.get("approval", False), bool):
            raise ConfigError(file, f"[pause_reasons] {code}",
                              'must be "Label" or { label = "Label", approval = true }', line)
        reasons[code] = PauseReason(code, str(spec.get("label", code)), bool(spec.get("approval", False)))
    return reasons


def _parse_wrapup_codes(raw: Any, file: str, where: _Located) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[wrapup_codes]", 'must be a table of code = "Label"', where.line_of("wrapup_codes"))
    for code, label in raw.items():
        if not _NAME_RE.match(code) or not isinstance(label, str) or not label.strip():
            raise ConfigError(file, f"[wrapup_codes] {code}", 'must be code = "Label" (code: letters, digits, _ -)',
                              where.line_of("wrapup_codes", code))
    return dict(raw)


def _parse_recording_agents(raw: Any, file: str, where: _Located) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[recording_agents]", 'must be a table of extension = "always" | "never" | "NN%"',
                          where.line_of("recording_agents"))
    for ext, policy in raw.items():
        if not re.fullmatch(r"[1-9][0-9]{1,9}", ext) or not isinstance(policy, str) or not re.fullmatch(
                RECORDING_POLICY_PATTERN, policy):
            raise ConfigError(file, f"[recording_agents] {ext}",
                              'must be extension = "always", "never" or a percentage like "25%"',
                              where.line_of("recording_agents", ext))
    return dict(raw)


DEFAULT_MONITOR_GROUPS = {"supervisors": {"supervisors": ["2005"], "agents": ["*"]}}
_EXTENSION = re.compile(r"^[1-9][0-9]{1,9}$")


def _parse_monitor_groups(raw: Any, file: str, where: _Located) -> dict[str, MonitorGroupSpec]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[monitor_groups]", "must be a table of [monitor_groups.<name>] tables",
                          where.line_of("monitor_groups"))
    groups: dict[str, MonitorGroupSpec] = {}
    for name, spec in raw.items():
        line = where.line_of(f"monitor_groups.{name}")
        key = f"[monitor_groups.{name}]"
        if not _NAME_RE.match(name):
            raise ConfigError(file, key, "a group name is 1-40 letters, digits, _ or -", line)
        if not isinstance(spec, dict) or set(spec) - {"supervisors", "agents"} or "supervisors" not in spec:
            raise ConfigError(file, key, 'must be { supervisors = ["2005"], agents = ["2001", ...] or ["*"] }', line)
        lists: dict[str, list[str]] = {}
        for field_name in ("supervisors", "agents"):
            value = spec.get(field_name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(file, f"{key} {field_name}", "must be a list of extensions",
                                  where.line_of(f"monitor_groups.{name}", field_name) or line)
            for ext in value:
                if not _EXTENSION.match(ext) and not (field_name == "agents" and ext == "*"):
                    raise ConfigError(file, f"{key} {field_name}", f"{ext!r} is not an extension"
                                      + (' (or "*" for every agent)' if field_name == "agents" else ""),
                                      where.line_of(f"monitor_groups.{name}", field_name) or line)
            lists[field_name] = value
        groups[name] = MonitorGroupSpec(name, tuple(lists["supervisors"]),
                                        tuple(e for e in lists["agents"] if e != "*"), "*" in lists["agents"])
    return groups


_CAMPAIGN_KEYS = {f.name for f in dataclasses.fields(CampaignSpec)} - {"name"}
_CALLER_ID_RE = re.compile(r"^\+?[0-9]{2,20}$")
_REGION_RE = re.compile(r"^[A-Z]{2}$")


def _parse_campaigns(raw: Any, file: str, where: _Located, queues: Mapping[str, QueueSpec],
                     wrapup_codes: Mapping[str, str]) -> dict[str, CampaignSpec]:
    if not isinstance(raw, dict):
        raise ConfigError(file, "[campaigns]", "must be a table of [campaigns.<name>] tables",
                          where.line_of("campaigns"))
    campaigns: dict[str, CampaignSpec] = {}
    for name, spec in raw.items():
        line = where.line_of(f"campaigns.{name}") or where.line_of("campaigns", name)
        if not _NAME_RE.match(name):
            raise ConfigError(file, f"[campaigns.{name}]", "a campaign name is 1-40 letters, digits, _ or -", line)
        if not isinstance(spec, dict):
            raise ConfigError(file, f"[campaigns.{name}]", "must be a table (queue, caller_id, mode, ...)", line)

        def fail(key: str, problem: str, name: str = name, line: int | None = line) -> ConfigError:
            return ConfigError(file, f"[campaigns.{name}] {key}", problem,
                               where.line_of(f"campaigns.{name}", key) or where.line_of(f"campaigns.{name}.{key}")
                               or line)

        for key in spec:
            if key not in _CAMPAIGN_KEYS:
                raise fail(key, f"unknown key (known keys: {', '.join(sorted(_CAMPAIGN_KEYS))})")
        values: dict[str, Any] = {"name": name}
        for key in ("queue", "caller_id"):
            if key not in spec:
                raise fail(key, "is required")
        if spec["queue"] not in queues:
            raise fail("queue", f"no queue {spec['queue']!r} is configured (its agents work the campaign)")
        values["queue"] = spec["queue"]
        if not isinstance(spec["caller_id"], str) or not _CALLER_ID_RE.match(spec["caller_id"]):
            raise fail("caller_id", f"must be a phone number like \"+48221234567\", got {spec['caller_id']!r}")
        values["caller_id"] = spec["caller_id"]
        choices = {"mode": CAMPAIGN_MODES, "machine_action": MACHINE_ACTIONS, "agent_line": AGENT_LINES}
        for key, allowed in choices.items():
            if key in spec:
                if spec[key] not in allowed:
                    raise fail(key, f"must be one of {', '.join(allowed)}, got {spec[key]!r}")
                values[key] = spec[key]
        for key, pattern, what in (("trunk", r"^[A-Za-z0-9_-]+$", "a PJSIP endpoint name"),
                                   ("region", _REGION_RE.pattern, "a two-letter country code like \"PL\""),
                                   ("machine_message", _NAME_RE.pattern, "a prompt name"),
                                   ("abandon_message", _NAME_RE.pattern, "a prompt name"),
                                   ("session_music", r"^[A-Za-z0-9_-]*$", "a music-on-hold class or \"\"")):
            if key in spec:
                if not isinstance(spec[key], str) or not re.match(pattern, spec[key]):
                    raise fail(key, f"must be {what}, got {spec[key]!r}")
                values[key] = spec[key]
        if "timezone" in spec:
            try:
                if not isinstance(spec["timezone"], str):
                    raise ValueError
                if spec["timezone"]:
                    zoneinfo.ZoneInfo(spec["timezone"])
            except (ValueError, zoneinfo.ZoneInfoNotFoundError):
                raise fail("timezone", f"must be a time zone like \"Europe/Warsaw\", "
                                       f"got {spec['timezone']!r}") from None
            values["timezone"] = spec["timezone"]
        for key, lo, hi in (("ring_seconds", 15, 120), ("min_agents", 1, 1000)):
            if key in spec:
                value = spec[key]
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise fail(key, f"must be a whole number {lo}-{hi}, got {value!r}")
                values[key] = value
        for key, low, high in (("abandon_target", 0.1, 10.0), ("amd_false_positive_rate", 0.0, 50.0)):
            if key in spec:
                text = spec[key]
                if isinstance(text, str) and text.endswith("%"):
                    text = text[:-1]
                try:
                    number = float(text)
                except (TypeError, ValueError):
                    number = -1.0
                if isinstance(text, bool) or not low <= number <= high:
                    raise fail(key, f"must be a percentage {low:g}-{high:g}, got {spec[key]!r}")
                values[key] = number
        for key in ("amd", "callback_list"):
            if key in spec:
                if not isinstance(spec[key], bool):
                    raise fail(key, f"must be true or false, got {spec[key]!r}")
                values[key] = spec[key]
        if "abandon_windows" in spec:
            windows = spec["abandon_windows"]
            if not isinstance(windows, list) or not windows or any(w not in ABANDON_WINDOWS for w in windows):
                raise fail("abandon_windows", f"must be a list of {', '.join(ABANDON_WINDOWS)} (at least one), "
                                              f"got {windows!r}")
            values["abandon_windows"] = tuple(dict.fromkeys(windows))
        if "record" in spec:
            if not isinstance(spec["record"], str) or not re.fullmatch(RECORDING_POLICY_PATTERN + "|^$",
                                                                       spec["record"]):
                raise fail("record", f'must be "", always, never or a percentage like "25%", got {spec["record"]!r}')
            values["record"] = spec["record"]
        try:
            if "hours" in spec:
                values["hours"] = parse_window(str(spec["hours"]))
        except ValueError as exc:
            raise fail("hours", str(exc)) from None
        try:
            values["retries"] = parse_retries(spec.get("retries", {}))
        except (ValueError, TypeError) as exc:
            raise fail("retries", str(exc)) from None
        try:
            values["dispositions"] = parse_dispositions(spec.get("dispositions", {}))
        except (ValueError, TypeError) as exc:
            raise fail("dispositions", str(exc)) from None
        for code in values["dispositions"]:
            if code not in wrapup_codes:
                raise fail("dispositions", f"{code!r} is not a wrap-up code (known: {', '.join(wrapup_codes)})")
        campaigns[name] = CampaignSpec(**values)
    return campaigns


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Loads the settings: defaults, the file (if it exists), then environment overrides."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or "CALLCENTER_CONFIG" in environ
    file_path = Path(path or environ.get("CALLCENTER_CONFIG") or DEFAULT_CONFIG)
    file = str(file_path)
    data: dict[str, Any] = {}
    text = ""
    if file_path.exists():
        text = file_path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            raise ConfigError(file, "syntax", str(exc), int(match.group(1)) if match else None) from None
    elif explicit:
        raise ConfigError(file, "file", "does not exist")
    where = _Located(text)

    for section in data:
        if section not in SECTIONS and section not in TABLES:
            known = ", ".join([*SECTIONS, *TABLES])
            raise ConfigError(file, f"[{section}]", f"unknown section (known: {known})", where.line_of(section))

    overrides: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in SECTIONS}
    for name in SECTIONS:
        section_data = data.get(name, {})
        if not isinstance(section_data, dict):
            raise ConfigError(file, f"[{name}]", "must be a table", where.line_of(name))
        for key, value in section_data.items():
            overrides[name][key] = (value, "file")
    for env_key, value in environ.items():
        if not env_key.startswith(ENV_PREFIX) or "__" not in env_key:
            continue
        section, _, key = env_key[len(ENV_PREFIX):].lower().partition("__")
        if section not in SECTIONS:
            raise ConfigError("<environment>", env_key, f"unknown section {section!r}")
        overrides[section][key] = (value, "env")

    sections = {name: _build_section(cls, name, overrides[name], file, where) for name, cls in SECTIONS.items()}
    dids = _parse_dids(data.get("dids", {"1000": {"name": "Main line", "route": "ivr:main"}}), file, where)
    queues = _parse_queues(data.get("queues", DEFAULT_QUEUES), file, where)
    for did, route in dids.items():
        kind, _, target = route.route.partition(":")
        if kind == "queue" and target not in queues:
            raise ConfigError(file, f"[dids.{did}]", f"route {route.route!r}: no queue {target!r} is configured",
                              where.line_of(f"dids.{did}"))
    settings = Settings(**sections, dids=dids, queues=queues,
                        pause_reasons=_parse_pause_reasons(data.get("pause_reasons", DEFAULT_PAUSE_REASONS), file,
                                                           where),
                        wrapup_codes=_parse_wrapup_codes(data.get("wrapup_codes", DEFAULT_WRAPUP_CODES), file, where),
                        recording_agents=_parse_recording_agents(data.get("recording_agents", {}), file, where),
                        monitor_groups=_parse_monitor_groups(data.get("monitor_groups", DEFAULT_MONITOR_GROUPS),
                                                             file, where),
                        source=file if text else "<defaults>")
    wrapups = settings.wrapup_codes
    settings = dataclasses.replace(settings, campaigns=_parse_campaigns(data.get("campaigns", {}), file, where,
                                                                        queues, wrapups))
    if settings.ari.reconnect_min > settings.ari.reconnect_max:
        raise ConfigError(file, "[ari] reconnect_min", "must not exceed reconnect_max",
                          where.line_of("ari", "reconnect_min"))
    return settings
