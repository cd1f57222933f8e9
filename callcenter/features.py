"""What the composition root hands every feature, and what a feature hands back.

A feature is a folder with a ``plugin.py`` whose ``load(core, ...)`` builds the feature's service from
``Core`` (and the services of the features it needs, passed by name), registers its channels on the
router, subscribes to the bus, and tells the controller what to run when: start-up steps, background
tasks, pages, shutdown. The composition root (app.py) calls each ``load`` once, in dependency order.
docs/architecture.md shows a whole new feature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from callcenter.ari.client import AriClient
from callcenter.ari.routing import ChannelRouter
from callcenter.asterisk.layout import AsteriskLayout
from callcenter.bus import Bus
from callcenter.config import Settings
from callcenter.db.engine import Database
from callcenter.db.writer import RecordWriter
from callcenter.ivr.prompts import PromptCatalog
from callcenter.users.directory import UserDirectory
from callcenter.users.presence import PhonePresence

PageInstaller = Callable[[web.Application], None]
Step = Callable[[], object]
AsyncStep = Callable[[], Awaitable[None]]


@dataclass
class Lifecycle:
    """What features asked the controller to run, each list in the order the features were loaded."""

    # Blocking, in a worker thread, once the database is migrated (load state, sync configuration).
    prepare: list[Step] = field(default_factory=list)
    # Background work, started once Asterisk is connected; cancelled at shutdown.
    tasks: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = field(default_factory=list)
    # Pages and APIs of the panel, installed when it starts.
    pages: list[PageInstaller] = field(default_factory=list)
    # Once the panel listens (schedules, other servers), and their ends before the panel closes.
    serving: list[AsyncStep] = field(default_factory=list)
    stop_serving: list[AsyncStep] = field(default_factory=list)
    # After the background tasks are cancelled: what must reach the disk or the database.
    drain: list[AsyncStep] = field(default_factory=list)
    # After Asterisk stopped: read what it wrote last.
    after_asterisk: list[Step] = field(default_factory=list)


@dataclass
class Core:
    """The shared adapters and state every feature may use."""

    settings: Settings
    db: Database
    ari: AriClient
    bus: Bus
    router: ChannelRouter
    layout: AsteriskLayout
    prompts: PromptCatalog
    directory: UserDirectory
    presence: PhonePresence
    # The ACD's records, recordings and monitoring sessions, written in order in the background.
    records: RecordWriter
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    def prepare(self, step: Step) -> None:
        self.lifecycle.prepare.append(step)

    def task(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.lifecycle.tasks.append((name, work))

    def pages(self, install: PageInstaller) -> None:
        self.lifecycle.pages.append(install)

    def serve(self, start: AsyncStep, stop: AsyncStep) -> None:
        self.lifecycle.serving.append(start)
        self.lifecycle.stop_serving.append(stop)

    def drain(self, step: AsyncStep) -> None:
        self.lifecycle.drain.append(step)

    def after_asterisk(self, step: Step) -> None:
        self.lifecycle.after_asterisk.append(step)
