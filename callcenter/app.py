"""The composition root: builds the shared adapters, loads each feature (its ``plugin.py``) in dependency
order, and runs what the features asked for at start and stop (features.py). No business logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from callcenter.acd import plugin as acd_plugin
from callcenter.ami.client import AmiClient
from callcenter.ari.client import AriClient
from callcenter.ari.routing import ChannelRouter
from callcenter.asterisk.layout import AsteriskLayout, resolve_layout
from callcenter.asterisk.lifecycle import AsteriskLifecycle
from callcenter.asterisk.process import AsteriskProcess
from callcenter.asterisk.render import RELOAD_MODULE, Renderer
from callcenter.banner import startup_banner
from callcenter.bus import Bus
from callcenter.calls import plugin as calls_plugin
from callcenter.cdr import plugin as cdr_plugin
from callcenter.config import Settings
from callcenter.customers import plugin as customers_plugin
from callcenter.db.engine import Database
from callcenter.db.writer import RecordWriter
from callcenter.dialer import plugin as dialer_plugin
from callcenter.export import plugin as export_plugin
from callcenter.features import Core
from callcenter.ftps import plugin as ftps_plugin
from callcenter.ivr import plugin as ivr_plugin
from callcenter.ivr.prompts import PromptCatalog
from callcenter.monitor import plugin as monitor_plugin
from callcenter.recording import plugin as recording_plugin
from callcenter.retention import plugin as retention_plugin
from callcenter.secrets import Secrets, load_or_create
from callcenter.status import ControllerStatus
from callcenter.tickets import plugin as tickets_plugin
from callcenter.users import plugin as users_plugin
from callcenter.users.directory import UserDirectory
from callcenter.users.presence import PhonePresence
from callcenter.users.throttle import LoginThrottle
from callcenter.web.app import make_app
from callcenter.webhooks import plugin as webhooks_plugin

log = logging.getLogger(__name__)


class Controller:
    def __init__(self, settings: Settings, *, instance: str | None = None) -> None:
        self.settings = settings
        self.secrets: Secrets = load_or_create(settings.var_dir)
        self.db = Database(settings.database_url)
        self.layout: AsteriskLayout = resolve_layout(settings, instance)
        self.renderer = Renderer(settings, self.layout, self.secrets)
        self.ari = AriClient(
            f"http://127.0.0.1:{settings.asterisk.http_port}", self.secrets.ari_user,
            self.secrets.ari_password, settings.asterisk.app,
            request_timeout=settings.ari.request_timeout, reconnect_min=settings.ari.reconnect_min,
            reconnect_max=settings.ari.reconnect_max)
        self.ami = AmiClient("127.0.0.1", settings.asterisk.ami_port, self.secrets.ami_user,
                             self.secrets.ami_password)
        bus = Bus()
        self.router = ChannelRouter(self.ari.channels_in_app)
        self.directory = UserDirectory()
        self.presence = PhonePresence(bus, self.directory.is_user, self.ami.device_states)
        self.ami.on_event("DeviceStateChange", self.presence.on_device_state)
        self.ami.on_login(self.presence.resync)
        library = self.layout.root / "usr/share/asterisk/sounds" if self.layout.root else \
            Path("/usr/share/asterisk/sounds")
        prompts = PromptCatalog(Path(settings.paths.sounds_dir).resolve(), self.layout.ast("sounds"), library)
        self.records = RecordWriter(self.db, "ACD records")
        core = Core(settings, self.db, self.ari, bus, self.router, self.layout, prompts, self.directory,
                    self.presence, self.records)
        # One count of failed logins for the panel and FTPS: guesses spread over both are counted together.
        throttle = LoginThrottle()

        # The features, each after those it needs. The order is also the order of their start-up steps,
        # of the bus's subscribers to one event, and of the channel router's resync after a reconnect.
        self.users = users_plugin.load(core, throttle)
        self.customers = customers_plugin.load(core)
        self.webhooks = webhooks_plugin.load(core)
        # Tickets report their changes to the webhooks' outbox, in the transaction of each change.
        self.tickets = tickets_plugin.load(core, announce=self.webhooks.announce)
        self.ivr = ivr_plugin.load(core)
        self.customers.history_sources.append(self.tickets.customer_history)
        self.acd = acd_plugin.load(core, card_tickets=self.tickets.card_tickets)
        self.recording = recording_plugin.load(core)
        self.dialer = dialer_plugin.load(core, self.acd)
        self.monitor = monitor_plugin.load(core, self.acd)
        acd_plugin.load_panel(core, self.acd, self.users.accounts, self.recording, self.monitor, self.dialer,
                              self.ivr.registry.names)
        self.calls = calls_plugin.load(core, self.ivr.has_flow)
        self.ledger = calls_plugin.load_ledger(core)
        # Calls users dial from their phones (the ACD never sees them), in the transaction of their CDR.
        self.ledger.direct_call_hooks += [self.tickets.rules.direct_call, self.webhooks.calls.direct_call]
        cdr_plugin.load(core)
        retention_plugin.load(core)
        export_plugin.load(core)
        ftps_plugin.load(core, throttle)

        self.lifecycle = core.lifecycle
        self.asterisk = AsteriskLifecycle(
            AsteriskProcess(self.layout, settings.var_dir / "log" / f"asterisk-{self.layout.instance}.log"),
            self.layout, self.ami, self.ari, settings.asterisk, self.ledger.settle_after_restart)
        self.status = ControllerStatus(self.ari, self.ami, self.db, self.ledger, self.calls, self.directory,
                                       self.presence, settings.sip)
        self._tasks: list[asyncio.Task[Any]] = []
        self._web: web.AppRunner | None = None

    # -- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)
        changed = await asyncio.to_thread(self._render)
        if self.asterisk.manage:
            await self.asterisk.start()
        await self.asterisk.wait_ready()
        if self.asterisk.adopted:
            # Asterisk was already running: what we rendered just now must reach it.
            for module in dict.fromkeys(RELOAD_MODULE[n] for n in changed if n in RELOAD_MODULE):
                await self.ari.reload_module(module)
        self._run("ari", self.ari.run(self.router.dispatch, self.router.connected))
        self._run("acd-records", self.records.run())
        if self.asterisk.manage:
            self._run("asterisk-watch", self.asterisk.watch())
        await asyncio.wait_for(self.ari.connected.wait(), self.settings.asterisk.boot_timeout)
        for name, work in self.lifecycle.tasks:
            self._run(name, work())
        await self._start_web()
        for start in self.lifecycle.serving:
            await start()
        log.info("controller ready")

    def _run(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    def _prepare(self) -> None:
        self.db.migrate()
        self.renderer.prepare_dirs()
        for step in self.lifecycle.prepare:
            step()

    def _render(self) -> list[str]:
        with self.db.session() as session:
            sip_users = self.directory.reload(session)
        return self.renderer.render(sip_users)

    async def _start_web(self) -> None:
        app = make_app(self.status.health, self.status.status, accounts=self.users.accounts,
                       session_key=self.secrets.session_key,
                       secure_cookies=self.settings.web.secure_cookies, metrics_token=self.secrets.metrics_token,
                       demo=self.settings.web.demo)
        for install in self.lifecycle.pages:
            install(app)
        self._web = web.AppRunner(app, access_log=None)
        await self._web.setup()
        site = web.TCPSite(self._web, self.settings.web.bind, self.settings.web.port)
        await site.start()

    async def stop(self) -> None:
        for stop in reversed(self.lifecycle.stop_serving):
            with contextlib.suppress(Exception):
                await stop()
        if self._web is not None:
            await self._web.cleanup()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for drain in self.lifecycle.drain:
            with contextlib.suppress(Exception):
                await drain()
        with contextlib.suppress(Exception):
            await self.records.flush()
        self.ami.close()
        await self.ari.close()
        await self.asterisk.stop()
        # Whatever Asterisk logged up to its exit goes in before we leave.
        for step in self.lifecycle.after_asterisk:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(step)
        self.db.dispose()

    # -- operator requests (signals from `callcenter users ...` and `callcenter ivr reload`) ------------

    def reload_flows(self) -> None:
        self.ivr.registry.reload_all()

    async def reload_users(self) -> list[str]:
        """Renders the user-dependent files again and reloads what changed; calls go on."""
        changed = await asyncio.to_thread(self._render)
        await asyncio.to_thread(self.monitor.reload_permissions, self.db)
        for name in changed:
            module = RELOAD_MODULE.get(name)
            if module:
                await self.ari.reload_module(module)
        if changed:
            log.info("users changed: reloaded %s", ", ".join(changed))
        return changed

    def banner(self) -> str:
        """What `callcenter run` prints (to the terminal, never to a log) once the controller is ready.
        Passwords only on the first start, and only once."""
        return startup_banner(self.settings, self.users.phones(self.db), self.users.passwords_to_show())


def lock_path(settings: Settings) -> Path:
    return settings.var_dir / "callcenter.lock"
