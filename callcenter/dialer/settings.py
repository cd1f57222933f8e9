"""The dialer's settings: the ``[campaigns.<name>]`` table (DIA-1..5).

A campaign names the queue whose agents work it and the wrap-up codes its dispositions use, so
:func:`parse_campaigns` takes the queues and codes the ACD's settings parsed.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
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
from callcenter.recording.settings import RECORDING_POLICY_PATTERN
from callcenter.settings_file import NAME_RE, SettingsFile

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


_CAMPAIGN_KEYS = {f.name for f in dataclasses.fields(CampaignSpec)} - {"name"}
_CALLER_ID_RE = re.compile(r"^\+?[0-9]{2,20}$")
_REGION_RE = re.compile(r"^[A-Z]{2}$")


def parse_campaigns(source: SettingsFile, queues: Collection[str],
                    wrapup_codes: Mapping[str, str]) -> dict[str, CampaignSpec]:
    """``[campaigns.<name>]``: each campaign's queue (one of ``queues``), caller ID, mode, pacing and rules;
    its dispositions must be ``wrapup_codes``."""
    raw = source.table("campaigns", {})
    if not isinstance(raw, dict):
        raise source.error("[campaigns]", "must be a table of [campaigns.<name>] tables",
                           source.line_of("campaigns"))
    campaigns: dict[str, CampaignSpec] = {}
    for name, spec in raw.items():
        line = source.line_of(f"campaigns.{name}") or source.line_of("campaigns", name)
        if not NAME_RE.match(name):
            raise source.error(f"[campaigns.{name}]", "a campaign name is 1-40 letters, digits, _ or -", line)
        if not isinstance(spec, dict):
            raise source.error(f"[campaigns.{name}]", "must be a table (queue, caller_id, mode, ...)", line)

        def fail(key: str, problem: str, name: str = name, line: int | None = line) -> ConfigError:
            return source.error(f"[campaigns.{name}] {key}", problem,
                                source.line_of(f"campaigns.{name}", key) or source.line_of(f"campaigns.{name}.{key}")
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
                                   ("machine_message", NAME_RE.pattern, "a prompt name"),
                                   ("abandon_message", NAME_RE.pattern, "a prompt name"),
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
