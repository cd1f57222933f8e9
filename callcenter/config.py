"""One typed place for settings: defaults, then the TOML file, then the environment.

Environment variables override single keys as ``CALLCENTER_<SECTION>__<KEY>`` (for example
``CALLCENTER_WEB__PORT=8081``); ``CALLCENTER_CONFIG`` names the file. A wrong key or value stops
start-up with the file, the line, the key and what is wrong.

The process's own sections (SIP, Asterisk, ARI, web, database, paths, log) are declared here; every
feature declares and parses its own in its ``settings.py`` (``acd/settings.py``: ``[acd]``,
``[queues]``...), with the generic loader of :mod:`callcenter.settings_file`. :class:`Settings` is
their composition and :func:`load_settings` runs the features' parsers and the checks across them.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.acd.settings import (
    AcdSettings,
    PauseReason,
    QueueSpec,
    parse_pause_reasons,
    parse_queues,
    parse_wrapup_codes,
)
from callcenter.calls.settings import DidRoute, check_did_routes, parse_dids
from callcenter.cdr.settings import CdrSettings
from callcenter.customers.settings import CustomersSettings
from callcenter.dialer.settings import CampaignSpec, parse_campaigns
from callcenter.export.settings import ExportSettings
from callcenter.ftps.settings import FtpsSettings
from callcenter.monitor.settings import MonitorGroupSpec, parse_monitor_groups
from callcenter.recording.settings import RecordingSettings, parse_recording_agents
from callcenter.settings_file import SettingsFile, opt
from callcenter.tickets.settings import TicketsSettings
from callcenter.webhooks.settings import WebhooksSettings


@dataclass(frozen=True)
class SipSettings:
    bind: str = opt("127.0.0.1")
    port: int = opt(5060, lo=1, hi=65535)
    # Calls from this address that match no user name come in on the `pstn` trunk endpoint.
    trunk_address: str = opt("127.0.0.1")
    # Where calls out through the trunk go (the demo "PSTN" listens there).
    trunk_port: int = opt(5090, lo=1, hi=65535)


@dataclass(frozen=True)
class AsteriskSettings:
    mode: str = opt("auto", choices=("auto", "chroot", "system"))
    root: str = opt(".asterisk/root")
    binary: str = opt("asterisk")
    instance: str = opt("main", pattern=r"^[A-Za-z0-9_-]+$")
    manage: bool = opt(True)
    http_port: int = opt(8088, lo=1, hi=65535)
    ami_port: int = opt(5038, lo=1, hi=65535)
    app: str = opt("callcenter", pattern=r"^[A-Za-z0-9_-]+$")
    dial_timeout: int = opt(30, lo=1, hi=600)
    line_check_number: str = opt("9999", pattern=r"^[0-9]{1,32}$")
    boot_timeout: float = opt(60.0, lo=1, hi=600)


@dataclass(frozen=True)
class AriSettings:
    request_timeout: float = opt(5.0, lo=0.1, hi=120)
    reconnect_min: float = opt(0.2, lo=0.01, hi=60)
    reconnect_max: float = opt(5.0, lo=0.1, hi=300)


@dataclass(frozen=True)
class WebSettings:
    bind: str = opt("127.0.0.1")
    port: int = opt(8080, lo=1, hi=65535)
    # Mark session cookies Secure even on plain HTTP: set it when a TLS proxy serves the panel.
    secure_cookies: bool = opt(False)
    # Serve the demo's helpers (the IVR's account lookup at /demo/balance): the built-in settings are the
    # demo's; a production configuration sets it false.
    demo: bool = opt(True)


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty means a SQLite file var/callcenter.db under paths.var_dir.
    url: str = opt("")


@dataclass(frozen=True)
class PathsSettings:
    var_dir: str = opt("var")
    sounds_dir: str = opt("sounds")
    ivr_dir: str = opt("ivr_flows")
    dialplan_dir: str = opt("dialplan")


@dataclass(frozen=True)
class LogSettings:
    level: str = opt("info", choices=("debug", "info", "warning", "error"))
    format: str = opt("text", choices=("text", "json"))


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
    customers: CustomersSettings = field(default_factory=CustomersSettings)
    tickets: TicketsSettings = field(default_factory=TicketsSettings)
    webhooks: WebhooksSettings = field(default_factory=WebhooksSettings)
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


# Sections of single keys (the dataclass fields of Settings) are built by the generic loader, environment
# overrides included; tables have a shape of their own and their feature's parse_* function reads them.
# A new feature adds its field to Settings and, for a table, its name here and one parse_* call below.
TABLES = ("dids", "queues", "pause_reasons", "wrapup_codes", "recording_agents", "monitor_groups", "campaigns")
SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in (*TABLES, "source")
}


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Loads the settings: defaults, the file (if it exists), then environment overrides."""
    environ = os.environ if environ is None else environ
    source = SettingsFile.read(path, environ, sections=SECTIONS, tables=TABLES)
    sections: dict[str, Any] = {name: source.section(name, cls) for name, cls in SECTIONS.items()}
    dids = parse_dids(source)
    queues = parse_queues(source)
    check_did_routes(dids, queues, source)
    pause_reasons = parse_pause_reasons(source)
    wrapup_codes = parse_wrapup_codes(source)
    recording_agents = parse_recording_agents(source)
    monitor_groups = parse_monitor_groups(source)
    campaigns = parse_campaigns(source, queues, wrapup_codes)
    settings = Settings(**sections, dids=dids, queues=queues, pause_reasons=pause_reasons, wrapup_codes=wrapup_codes,
                        recording_agents=recording_agents, monitor_groups=monitor_groups, campaigns=campaigns,
                        source=source.origin)
    if settings.ari.reconnect_min > settings.ari.reconnect_max:
        raise source.error("[ari] reconnect_min", "must not exceed reconnect_max",
                           source.line_of("ari", "reconnect_min"))
    return settings
