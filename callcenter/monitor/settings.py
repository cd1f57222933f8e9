"""Monitoring's settings: the ``[monitor_groups.<name>]`` table (who may monitor whom, MON-2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from callcenter.settings_file import NAME_RE, SettingsFile


@dataclass(frozen=True)
class MonitorGroupSpec:
    """Supervisors who may monitor agents (MON-2); ``agents`` empty with ``all_agents``: everyone."""

    name: str
    supervisors: tuple[str, ...]
    agents: tuple[str, ...]
    all_agents: bool = False


DEFAULT_MONITOR_GROUPS = {"supervisors": {"supervisors": ["2005"], "agents": ["*"]}}
_EXTENSION = re.compile(r"^[1-9][0-9]{1,9}$")


def parse_monitor_groups(source: SettingsFile) -> dict[str, MonitorGroupSpec]:
    """``[monitor_groups.<name>]``: supervisors = [...], agents = [...] or ["*"] for every agent."""
    raw = source.table("monitor_groups", DEFAULT_MONITOR_GROUPS)
    if not isinstance(raw, dict):
        raise source.error("[monitor_groups]", "must be a table of [monitor_groups.<name>] tables",
                           source.line_of("monitor_groups"))
    groups: dict[str, MonitorGroupSpec] = {}
    for name, spec in raw.items():
        line = source.line_of(f"monitor_groups.{name}")
        key = f"[monitor_groups.{name}]"
        if not NAME_RE.match(name):
            raise source.error(key, "a group name is 1-40 letters, digits, _ or -", line)
        if not isinstance(spec, dict) or set(spec) - {"supervisors", "agents"} or "supervisors" not in spec:
            raise source.error(key, 'must be { supervisors = ["2005"], agents = ["2001", ...] or ["*"] }', line)
        lists: dict[str, list[str]] = {}
        for field_name in ("supervisors", "agents"):
            value = spec.get(field_name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise source.error(f"{key} {field_name}", "must be a list of extensions",
                                   source.line_of(f"monitor_groups.{name}", field_name) or line)
            for ext in value:
                if not _EXTENSION.match(ext) and not (field_name == "agents" and ext == "*"):
                    raise source.error(f"{key} {field_name}", f"{ext!r} is not an extension"
                                       + (' (or "*" for every agent)' if field_name == "agents" else ""),
                                       source.line_of(f"monitor_groups.{name}", field_name) or line)
            lists[field_name] = value
        groups[name] = MonitorGroupSpec(name, tuple(lists["supervisors"]),
                                        tuple(e for e in lists["agents"] if e != "*"), "*" in lists["agents"])
    return groups
