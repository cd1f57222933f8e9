"""Reading the settings file: TOML with the line of every key, typed sections, environment overrides.

This module knows no feature. A feature declares its settings in its own ``settings.py`` and the
composition of them all is :class:`callcenter.config.Settings`. A feature has two ways to declare:

- a *section* of single keys (``[acd]``): a frozen dataclass whose fields are declared with
  :func:`opt` (default, and the choices, range or pattern a value must meet). The loader builds it
  from the file and from ``CALLCENTER_<SECTION>__<KEY>`` environment variables, and names the file,
  the line and the key of a wrong value.
- a *table* of its own shape (``[queues.<name>]``): a ``parse_<table>(source: SettingsFile)``
  function that reads ``source.table(name, default)`` and raises ``source.error(key, problem,
  source.line_of(...))`` for anything wrong. Tables are not overridden from the environment.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

from callcenter.errors import ConfigError

DEFAULT_CONFIG = Path("config/callcenter.toml")
ENV_PREFIX = "CALLCENTER_"
#: What names in tables look like (queues, codes, groups, campaigns, prompts).
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

T = TypeVar("T")


def opt(default: Any, *, choices: tuple[str, ...] = (), lo: float | None = None,
        hi: float | None = None, pattern: str | None = None) -> Any:
    """A field of a section with its default and what a value must meet (one of choices, lo-hi, pattern)."""
    return field(default=default, metadata={"choices": choices, "lo": lo, "hi": hi, "pattern": pattern})


class Located:
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


class SettingsFile:
    """A settings file as read: its tables, the line of each key, and the environment's overrides."""

    def __init__(self, file: str, text: str, data: Mapping[str, Any],
                 overrides: Mapping[str, Mapping[str, tuple[Any, str]]]) -> None:
        self.file = file
        self.text = text
        self.data = data
        self.overrides = overrides  # section -> key -> (value, "file" | "env")
        self.where = Located(text)

    @classmethod
    def read(cls, path: str | Path | None, environ: Mapping[str, str], *, sections: Iterable[str],
             tables: Iterable[str]) -> SettingsFile:
        """Reads the file (``path``, else ``CALLCENTER_CONFIG``, else the default file if it exists) and
        the environment's overrides of the ``sections``; any other top-level name than these and the
        ``tables`` is an error."""
        sections, tables = list(sections), list(tables)
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
        where = Located(text)

        for section in data:
            if section not in sections and section not in tables:
                known = ", ".join([*sections, *tables])
                raise ConfigError(file, f"[{section}]", f"unknown section (known: {known})", where.line_of(section))

        overrides: dict[str, dict[str, tuple[Any, str]]] = {name: {} for name in sections}
        for name in sections:
            section_data = data.get(name, {})
            if not isinstance(section_data, dict):
                raise ConfigError(file, f"[{name}]", "must be a table", where.line_of(name))
            for key, value in section_data.items():
                overrides[name][key] = (value, "file")
        for env_key, value in environ.items():
            if not env_key.startswith(ENV_PREFIX) or "__" not in env_key:
                continue
            section, _, key = env_key[len(ENV_PREFIX):].lower().partition("__")
            if section not in sections:
                raise ConfigError("<environment>", env_key, f"unknown section {section!r}")
            overrides[section][key] = (value, "env")
        return cls(file, text, data, overrides)

    @property
    def origin(self) -> str:
        """What the settings came from, for logs: the file, or ``<defaults>`` when it was absent or empty."""
        return self.file if self.text else "<defaults>"

    def line_of(self, section: str, key: str | None = None) -> int | None:
        """The line of ``[section]`` (a dotted name for ``[queues.sales]``), or of ``key`` in it."""
        return self.where.line_of(section, key)

    def error(self, key: str, problem: str, line: int | None = None) -> ConfigError:
        """The error to raise for a wrong table entry: names this file, the line, the key and the problem."""
        return ConfigError(self.file, key, problem, line)

    def table(self, name: str, default: Any) -> Any:
        """A top-level table as written (not checked), or ``default`` when the file has none."""
        return self.data.get(name, default)

    def section(self, name: str, cls: type[T]) -> T:
        """Builds the section ``[name]`` as ``cls`` (a dataclass declared with :func:`opt`) from the file and the
        environment: converts each value to its field's type and checks it."""
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for key, (raw, source) in self.overrides.get(name, {}).items():
            label = f"env {ENV_PREFIX}{name.upper()}__{key.upper()}" if source == "env" else f"[{name}] {key}"
            line = self.line_of(name, key) if source == "file" else None
            file = self.file if source == "file" else "<environment>"
            if key not in known:
                choices = ", ".join(sorted(known))
                raise ConfigError(file, label, f"unknown key (known keys: {choices})", line)
            try:
                value = _coerce(raw, hints[key], source)
                _check(known[key], value)
            except ValueError as exc:
                raise ConfigError(file, label, str(exc), line) from None
            kwargs[key] = value
        return cls(**kwargs)
