"""IVR flows: YAML files in ivr_flows/, loaded into frozen objects and validated.

Every problem is reported as ``file:line: what`` and a flow with a problem is never used. The schema
is documented in docs/ivr.md; ``callcenter ivr check`` prints the problems of every file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callcenter.ivr.hours import HoursError, WeeklyHours

EXIT_TYPES = ("queue", "extension", "voicemail", "hangup", "goto_flow")
NODE_TYPES = ("play", "menu", "collect", "hours", "holiday", "set", "http", "branch", "say", *EXIT_TYPES)
# Media URIs Asterisk plays as they are: no prompt file to look up.
PASSTHROUGH_MEDIA = ("number:", "digits:", "characters:", "tone:", "recording:")

# key -> (required, kind); kind: str, int, float, bool, prompts, node, map, list
_COMMON = {"type": (True, "str"), "comment": (False, "str")}
SCHEMA: dict[str, dict[str, tuple[bool, str]]] = {
    "play": {"prompts": (True, "prompts"), "interruptible": (False, "bool"), "next": (True, "node")},
    "menu": {"prompts": (True, "prompts"), "choices": (True, "choices"), "timeout": (False, "float"),
             "retries": (False, "int"), "invalid_prompts": (False, "prompts"),
             "no_input_prompts": (False, "prompts"), "default": (True, "node")},
    "collect": {"prompts": (True, "prompts"), "variable": (True, "str"), "min_length": (False, "int"),
                "max_length": (False, "int"), "terminator": (False, "str"), "timeout": (False, "float"),
                "pattern": (False, "str"), "retries": (False, "int"), "invalid_prompts": (False, "prompts"),
                "next": (True, "node"), "on_failure": (True, "node")},
    "hours": {"timezone": (True, "str"), "weekly": (True, "map"), "open": (True, "node"), "closed": (True, "node")},
    "holiday": {"holiday": (True, "node"), "next": (True, "node"), "timezone": (False, "str")},
    "set": {"language": (False, "str"), "variables": (False, "map"), "next": (True, "node")},
    "http": {"method": (False, "str"), "url": (True, "str"), "body": (False, "map"), "timeout": (False, "float"),
             "save": (False, "map"), "next": (True, "node"), "on_failure": (True, "node")},
    "branch": {"variable": (True, "str"), "cases": (True, "map"), "default": (True, "node")},
    "say": {"prompts": (False, "prompts"), "number": (False, "str"), "digits": (False, "str"),
            "next": (True, "node")},
    "queue": {"queue": (True, "str"), "priority": (False, "int"), "prompts": (False, "prompts")},
    "extension": {"extension": (True, "str"), "prompts": (False, "prompts")},
    "voicemail": {"mailbox": (True, "str"), "prompts": (False, "prompts")},
    "hangup": {"prompts": (False, "prompts")},
    "goto_flow": {"flow": (True, "str")},
}
# Keys whose value names the next node.
TARGET_KEYS = ("next", "default", "open", "closed", "holiday", "on_failure")


class FlowProblem(Exception):
    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    line: int
    spec: Mapping[str, Any] = field(repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        return self.spec.get(key, default)

    def targets(self) -> list[str]:
        found = [self.spec[key] for key in TARGET_KEYS if key in self.spec]
        if self.type == "menu":
            found += list(self.spec["choices"].values())
        if self.type == "branch":
            found += list(self.spec["cases"].values())
        return found

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(self.spec.get("prompts", ()))


@dataclass(frozen=True)
class Flow:
    name: str
    file: str
    version: str  # hash of the file's text: calls record which version they ran
    start: str
    language: str
    nodes: Mapping[str, Node]
    hours: Mapping[str, WeeklyHours] = field(default_factory=dict)


# -- YAML with line numbers ------------------------------------------------------------------------

class _LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key = str(key)
        if key in mapping:
            raise FlowProblem("", key_node.start_mark.line + 1, f"{key!r} appears twice")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads `on`/`off`/`yes`/`no` as booleans and 09 as a string: menu keys and times must stay text.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# -- validation -------------------------------------------------------------------------------------

PromptCheck = Callable[[str], bool]


class _Checker:
    def __init__(self, file: str, prompt_exists: PromptCheck, known_flows: Iterable[str]) -> None:
        self.file = file
        self.problems: list[FlowProblem] = []
        self.prompt_exists = prompt_exists
        self.known_flows = set(known_flows)

    def add(self, line: int, message: str) -> None:
        self.problems.append(FlowProblem(self.file, line, message))

    def check_value(self, node_name: str, spec: _LineDict, key: str, kind: str) -> None:
        value = spec[key]
        line = spec.key_lines.get(key, spec.line)
        where = f"node {node_name!r}: {key}"
        if kind == "str" and not isinstance(value, str | int):
            self.add(line, f"{where} must be text")
        elif kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            self.add(line, f"{where} must be a whole number >= 0")
        elif kind == "float" and (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0):
            self.add(line, f"{where} must be a number of seconds > 0")
        elif kind == "bool" and not isinstance(value, bool):
            self.add(line, f"{where} must be true or false")
        elif kind == "node" and not isinstance(value, str):
            self.add(line, f"{where} must name a node")
        elif kind == "map" and not isinstance(value, dict):
            self.add(line, f"{where} must be a mapping")
        elif kind == "choices":
            if not isinstance(value, dict) or not value:
                self.add(line, f"{where} must map keys (0-9, *, #) to nodes")
            else:
                for digit, target in value.items():
                    digit_line = value.key_lines.get(digit, line) if isinstance(value, _LineDict) else line
                    if not re.fullmatch(r"[0-9*#]", str(digit)):
                        self.add(digit_line, f"{where}: {digit!r} is not a key (0-9, * or #)")
                    if not isinstance(target, str):
                        self.add(digit_line, f"{where}: {digit!r} must name a node")
        elif kind == "prompts":
            prompts = [value] if isinstance(value, str) else value
            if not isinstance(prompts, list) or not all(isinstance(p, str) and p for p in prompts):
                self.add(line, f"{where} must be a prompt name or a list of them")
                return
            for prompt in prompts:
                if not prompt.startswith(PASSTHROUGH_MEDIA) \
                        and not self.prompt_exists(prompt.removeprefix("sound:")):
                    self.add(line, f"{where}: prompt {prompt!r} is missing in every language "
                                   "(not in sounds/<lang>/ nor Asterisk's sounds)")


def load_flow(path: Path, prompt_exists: PromptCheck, known_flows: Iterable[str] = ()) -> Flow:
    """Loads and validates one flow file. Raises ``FlowErrors`` listing every problem found."""
    file = str(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)
    except FlowProblem as problem:
        raise FlowErrors([FlowProblem(file, problem.line, problem.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise FlowErrors([FlowProblem(file, line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    checker = _Checker(file, prompt_exists, known_flows)
    if not isinstance(data, _LineDict):
        raise FlowErrors([FlowProblem(file, 1, "a flow file is a mapping with `start` and `nodes`")])
    for key in data:
        if key not in ("flow", "start", "language", "nodes", "description"):
            checker.add(data.key_lines[key], f"unknown top-level key {key!r} "
                                             "(known: flow, description, language, start, nodes)")
    name = str(data.get("flow") or path.stem)
    nodes_data = data.get("nodes")
    if not isinstance(nodes_data, _LineDict) or not nodes_data:
        checker.add(data.key_lines.get("nodes", 1), "`nodes` must be a mapping of node names to nodes")
        raise FlowErrors(checker.problems)
    nodes: dict[str, Node] = {}
    hours: dict[str, WeeklyHours] = {}
    for node_name, spec in nodes_data.items():
        line = nodes_data.key_lines[node_name]
        if not isinstance(spec, _LineDict):
            checker.add(line, f"node {node_name!r} must be a mapping with a `type`")
            continue
        node_type = spec.get("type")
        if node_type not in NODE_TYPES:
            checker.add(spec.key_lines.get("type", line),
                        f"node {node_name!r}: unknown type {node_type!r} (known: {', '.join(NODE_TYPES)})")
            continue
        schema = {**_COMMON, **SCHEMA[node_type]}
        for key in spec:
            if key not in schema:
                checker.add(spec.key_lines[key], f"node {node_name!r}: unknown key {key!r} for a {node_type} "
                                                 f"(known: {', '.join(sorted(schema))})")
        for key, (required, kind) in schema.items():
            if key in spec:
                checker.check_value(node_name, spec, key, kind)
            elif required:
                checker.add(line, f"node {node_name!r}: a {node_type} needs `{key}`")
        normalised = dict(spec)
        if isinstance(spec.get("prompts"), str):
            normalised["prompts"] = [spec["prompts"]]
        for key in ("invalid_prompts", "no_input_prompts"):
            if isinstance(spec.get(key), str):
                normalised[key] = [spec[key]]
        if node_type == "menu" and isinstance(spec.get("choices"), dict):
            normalised["choices"] = {str(k): v for k, v in spec["choices"].items()}
        if node_type == "hours" and isinstance(spec.get("weekly"), dict):
            try:
                hours[node_name] = WeeklyHours.parse(spec["weekly"], str(spec.get("timezone", "UTC")))
            except HoursError as exc:
                key_line = spec["weekly"].key_lines.get(exc.key, spec.key_lines["weekly"]) \
                    if isinstance(spec["weekly"], _LineDict) else line
                checker.add(key_line, f"node {node_name!r}: {exc}")
        if node_type == "collect":
            _check_collect(checker, node_name, spec)
        if node_type == "http":
            method = str(spec.get("method", "GET")).upper()
            if method not in ("GET", "POST"):
                checker.add(spec.key_lines.get("method", line), f"node {node_name!r}: method must be GET or POST")
            if not str(spec.get("url", "")).startswith(("http://", "https://", "{panel}")):
                checker.add(spec.key_lines.get("url", line),
                            f"node {node_name!r}: url must start with http://, https:// or {{panel}}")
        if node_type == "goto_flow" and known_flows and spec.get("flow") not in checker.known_flows:
            checker.add(spec.key_lines.get("flow", line), f"node {node_name!r}: no flow named {spec.get('flow')!r}")
        if node_type == "set" and "language" not in spec and "variables" not in spec:
            checker.add(line, f"node {node_name!r}: a set needs `language` or `variables`")
        nodes[node_name] = Node(node_name, node_type, line, normalised)

    start = data.get("start")
    if not isinstance(start, str) or start not in nodes_data:
        checker.add(data.key_lines.get("start", 1), f"`start` must name a node, got {start!r}")
    _check_graph(checker, nodes, str(start), nodes_data)
    if checker.problems:
        raise FlowErrors(sorted(checker.problems, key=lambda p: p.line))
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Flow(name, file, version, str(start), str(data.get("language", "en")), nodes, hours)


def _check_collect(checker: _Checker, node_name: str, spec: _LineDict) -> None:
    low, high = spec.get("min_length", 1), spec.get("max_length", 20)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        checker.add(spec.key_lines.get("min_length", spec.line), f"node {node_name!r}: min_length > max_length")
    terminator = spec.get("terminator", "#")
    if not re.fullmatch(r"[0-9*#]?", str(terminator)):
        checker.add(spec.key_lines.get("terminator", spec.line), f"node {node_name!r}: terminator must be one key")
    if "pattern" in spec:
        try:
            re.compile(str(spec["pattern"]))
        except re.error as exc:
            checker.add(spec.key_lines["pattern"], f"node {node_name!r}: pattern is not a regular expression ({exc})")


def _check_graph(checker: _Checker, nodes: Mapping[str, Node], start: str, nodes_data: _LineDict) -> None:
    for node in nodes.values():
        for target in node.targets():
            if isinstance(target, str) and target not in nodes_data:
                checker.add(_target_line(nodes_data[node.name], target),
                            f"node {node.name!r}: goes to {target!r}, which does not exist")
    if start not in nodes:
        return
    reachable: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in reachable or name not in nodes:
            continue
        reachable.add(name)
        todo.extend(t for t in nodes[name].targets() if isinstance(t, str))
    for name, node in nodes.items():
        if name not in reachable:
            checker.add(node.line, f"node {name!r} is unreachable from {start!r}")
    # Nodes from which no exit can be reached trap the caller in a loop.
    can_exit = {name for name, node in nodes.items() if node.type in EXIT_TYPES}
    changed = True
    while changed:
        changed = False
        for name, node in nodes.items():
            if name not in can_exit and any(t in can_exit for t in node.targets()):
                can_exit.add(name)
                changed = True
    for name in sorted(reachable - can_exit, key=lambda n: nodes[n].line):
        checker.add(nodes[name].line, f"node {name!r} is in a loop with no way out (no exit can be reached from it)")


def _target_line(spec: _LineDict, target: str) -> int:
    """The line that names ``target`` in a node (a choice or case line when it is one of those)."""
    for key, value in spec.items():
        if value == target:
            return spec.key_lines[key]
        if isinstance(value, _LineDict):
            for inner_key, inner_value in value.items():
                if inner_value == target:
                    return value.key_lines[inner_key]
    return spec.line


class FlowErrors(Exception):
    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
