"""The flows in ivr_flows/, kept current: an edited file is loaded for new calls (calls already in
the IVR finish on the version they started with); a broken edit is reported and the previous
version keeps running."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callcenter.ivr.flows import Flow, FlowErrors, FlowProblem, load_flow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadReport:
    loaded: list[str]
    problems: list[FlowProblem]


class FlowRegistry:
    def __init__(self, directory: Path, prompt_exists: Callable[[str], bool]) -> None:
        self.directory = directory
        self.prompt_exists = prompt_exists
        self.flows: dict[str, Flow] = {}
        self._seen: dict[Path, float] = {}  # file -> mtime of the version we last looked at
        self.problems: dict[Path, list[FlowProblem]] = {}
        # The watcher reloads in a worker thread and an operator may force a reload meanwhile; calls read
        # ``flows`` on the event loop, and each flow is swapped in whole.
        self._reloading = threading.Lock()

    async def watch(self, interval: float = 1.0) -> None:
        """Edited flow files reach new calls within ``interval`` (no inotify needed). Listing, stat-ing and
        parsing the files runs in a thread: a slow disk or a big flow never stalls the calls."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.reload)
            except Exception:
                log.exception("reloading IVR flows failed")

    def reload_all(self) -> None:
        """Every file again (an operator's `callcenter ivr reload`), with a line in the log."""
        report = self.reload(force=True)
        log.info("IVR flows reloaded: %s; %d problem(s)", ", ".join(report.loaded) or "none changed",
                 len(report.problems))

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def names(self) -> list[str]:
        return sorted(self.flows)

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def _known_names(self, files: list[Path]) -> set[str]:
        # goto_flow may name any flow in the directory, loaded or about to be.
        return {p.stem for p in files} | set(self.flows)

    def reload(self, force: bool = False) -> LoadReport:
        """Loads files that are new or changed (all with ``force``); keeps the old version of a
        flow whose new file is broken."""
        with self._reloading:
            return self._reload(force)

    def _reload(self, force: bool) -> LoadReport:
        files = self._files()
        names = self._known_names(files)
        loaded: list[str] = []
        problems: list[FlowProblem] = []
        for path in files:
            mtime = path.stat().st_mtime
            if not force and self._seen.get(path) == mtime:
                continue
            self._seen[path] = mtime
            try:
                flow = load_flow(path, self.prompt_exists, names)
            except FlowErrors as errors:
                self.problems[path] = errors.problems
                problems.extend(errors.problems)
                kept = " (the previous version keeps running)" if path.stem in self.flows else ""
                for problem in errors.problems:
                    log.error("%s%s", problem, kept)
                continue
            except OSError as exc:
                log.error("%s: cannot read (%s)", path, exc)
                continue
            self.problems.pop(path, None)
            previous = self.flows.get(flow.name)
            self.flows[flow.name] = flow
            loaded.append(flow.name)
            if previous is not None and previous.version != flow.version:
                log.info("flow %s: version %s replaces %s for new calls", flow.name, flow.version, previous.version)
        for path in list(self._seen):
            if path not in files:
                del self._seen[path]
        return LoadReport(loaded, problems)


def check_files(paths: list[Path], prompt_exists: Callable[[str], bool]) -> list[FlowProblem]:
    """Every problem of the given flow files (for `callcenter ivr check`)."""
    names = {p.stem for p in paths}
    if paths:
        names |= {p.stem for p in paths[0].parent.glob("*.y*ml")}
    problems: list[FlowProblem] = []
    for path in paths:
        try:
            load_flow(path, prompt_exists, names)
        except FlowErrors as errors:
            problems.extend(errors.problems)
    return problems
