"""The ACD's settings: the ``[acd]`` section and the ``[queues]``, ``[pause_reasons]`` and ``[wrapup_codes]`` tables."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callcenter.errors import ConfigError
from callcenter.recording.settings import RECORDING_POLICY_PATTERN
from callcenter.settings_file import NAME_RE, SettingsFile, opt


@dataclass(frozen=True)
class AcdSettings:
    # An agent who lets this many offered calls in a row go unanswered is paused ("missed").
    missed_limit: int = opt(3, lo=1, hi=100)
    # The key a waiting caller presses to be called back without losing their place.
    callback_key: str = opt("1", pattern=r"^[0-9*#]$")
    # Estimated wait uses the handle times of this many recent calls of the queue...
    estimate_calls: int = opt(20, lo=1, hi=1000)
    # ...and this handle time (seconds) until a queue has any.
    default_handle_time: int = opt(180, lo=1, hi=7200)
    # Where click-to-call and callbacks dial numbers that are not extensions: a PJSIP endpoint.
    trunk: str = opt("pstn", pattern=r"^[A-Za-z0-9_-]+$")


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


@dataclass(frozen=True)
class PauseReason:
    code: str
    label: str
    needs_approval: bool = False


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


def parse_queues(source: SettingsFile) -> dict[str, QueueSpec]:
    """``[queues.<name>]``: each queue's strategy, members and limits; overflow to a queue must name another."""
    raw = source.table("queues", DEFAULT_QUEUES)
    if not isinstance(raw, dict):
        raise source.error("[queues]", "must be a table of [queues.<name>] tables", source.line_of("queues"))
    queues: dict[str, QueueSpec] = {}
    for name, spec in raw.items():
        line = source.line_of(f"queues.{name}") or source.line_of("queues", name)
        key = f"[queues.{name}]"
        if not NAME_RE.match(name):
            raise source.error(key, "a queue name is 1-40 letters, digits, _ or -", line)
        if isinstance(spec, list):  # the short form: name = ["2001", "2002"]
            spec = {"members": spec}
        if not isinstance(spec, dict):
            raise source.error(key, 'must be a table (strategy, members, ...) or a list of extensions', line)

        def fail(field_name: str, problem: str, name: str = name, line: int | None = line) -> ConfigError:
            return source.error(f"[queues.{name}] {field_name}",
                                problem, source.line_of(f"queues.{name}", field_name) or line)

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
            if not isinstance(spec["moh_class"], str) or not NAME_RE.match(spec["moh_class"]):
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
            raise source.error(f"[queues.{name}] overflow", f"queue {target!r} is not another configured queue",
                               source.line_of(f"queues.{name}", "overflow") or source.line_of(f"queues.{name}"))
    return queues


def parse_pause_reasons(source: SettingsFile) -> dict[str, PauseReason]:
    """``[pause_reasons]``: code = "Label", or { label, approval } for a pause a supervisor must approve."""
    raw = source.table("pause_reasons", DEFAULT_PAUSE_REASONS)
    if not isinstance(raw, dict):
        raise source.error("[pause_reasons]", 'must be a table of code = "Label"', source.line_of("pause_reasons"))
    reasons: dict[str, PauseReason] = {}
    for code, spec in raw.items():
        line = source.line_of("pause_reasons", code) or source.line_of(f"pause_reasons.{code}")
        if not NAME_RE.match(code) or code == "missed":
            raise source.error(f"[pause_reasons] {code}", "a code is 1-40 letters, digits, _ or - "
                               "('missed' is reserved for unanswered calls)", line)
        if isinstance(spec, str):
            spec = {"label": spec}
        if not isinstance(spec, dict) or set(spec) - {"label", "approval"} or not isinstance(
                spec.get("label", code), str) or not isinstance(spec.get("approval", False), bool):
            raise source.error(f"[pause_reasons] {code}",
                               'must be "Label" or { label = "Label", approval = true }', line)
        reasons[code] = PauseReason(code, str(spec.get("label", code)), bool(spec.get("approval", False)))
    return reasons


def parse_wrapup_codes(source: SettingsFile) -> dict[str, str]:
    """``[wrapup_codes]``: code = "Label", the codes an agent picks after a call."""
    raw = source.table("wrapup_codes", DEFAULT_WRAPUP_CODES)
    if not isinstance(raw, dict):
        raise source.error("[wrapup_codes]", 'must be a table of code = "Label"', source.line_of("wrapup_codes"))
    for code, label in raw.items():
        if not NAME_RE.match(code) or not isinstance(label, str) or not label.strip():
            raise source.error(f"[wrapup_codes] {code}", 'must be code = "Label" (code: letters, digits, _ -)',
                               source.line_of("wrapup_codes", code))
    return dict(raw)
