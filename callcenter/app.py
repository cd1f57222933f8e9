"""The composition root: every adapter and service of the controller is wired here, nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from callcenter.acd import http as acd_http
from callcenter.acd import records as acd_records
from callcenter.acd import stasis as acd_stasis
from callcenter.acd.panel import AcdPanel
from callcenter.acd.records import AcdRecorder
from callcenter.acd.services import AcdService
from callcenter.ami.client import AmiClient
from callcenter.ari.client import AriClient
from callcenter.ari.routing import ChannelRouter
from callcenter.asterisk.layout import AsteriskLayout, resolve_layout
from callcenter.asterisk.lifecycle import AsteriskLifecycle
from callcenter.asterisk.process import AsteriskProcess
from callcenter.asterisk.render import RELOAD_MODULE, Renderer
from callcenter.banner import startup_banner
from callcenter.bus import Bus
from callcenter.calls import stasis as calls_stasis
from callcenter.calls.ledger import CelIngestor
from callcenter.calls.services import CallService
from callcenter.cdr import http as cdr_http
from callcenter.cdr.queries import CdrQueries
from callcenter.cdr.rates import load_rate_table
from callcenter.config import Settings
from callcenter.db.engine import Database
from callcenter.db.writer import RecordWriter
from callcenter.dialer import http as dialer_http
from callcenter.dialer import stasis as dialer_stasis
from callcenter.dialer.admin import DialerAdmin
from callcenter.dialer.services import DialerService
from callcenter.export.scheduler import ExportScheduler
from callcenter.ftps.accounts import AdminAccounts
from callcenter.ftps.server import FtpsServer
from callcenter.ivr import stasis as ivr_stasis
from callcenter.ivr.prompts import PromptCatalog
from callcenter.ivr.records import PathWriter
from callcenter.ivr.registry import FlowRegistry
from callcenter.ivr.services import IvrService
from callcenter.monitor import http as monitor_http
from callcenter.monitor import stasis as monitor_stasis
from callcenter.monitor.admin import MonitorAdmin
from callcenter.monitor.groups import Permissions, load_permissions, sync_groups
from callcenter.monitor.services import LiveLeg, MonitorService, UserRef
from callcenter.recording import http as recording_http
from callcenter.recording import stasis as recording_stasis
from callcenter.recording.queries import RecordingQueries
from callcenter.recording.services import RecordingService
from callcenter.retention import http as retention_http
from callcenter.retention.admin import RetentionAdmin
from callcenter.secrets import Secrets, load_or_create
from callcenter.status import ControllerStatus
from callcenter.users import first_start, units_http
from callcenter.users import http as users_http
from callcenter.users import services as users
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import UserAccounts
from callcenter.users.directory import UserDirectory
from callcenter.users.presence import PhonePresence
from callcenter.users.throttle import LoginThrottle
from callcenter.users.units_admin import UnitsAdmin
from callcenter.web import admin_pages
from callcenter.web.app import make_app

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
        self.bus = Bus()
        self.router = ChannelRouter(self.ari.channels_in_app)
        self.directory = UserDirectory()
        self.presence = PhonePresence(self.bus, self.directory.is_user, self.ami.device_states)
        self.ami.on_event("DeviceStateChange", self.presence.on_device_state)
        self.ami.on_login(self.presence.resync)
        library = self.layout.root / "usr/share/asterisk/sounds" if self.layout.root else \
            Path("/usr/share/asterisk/sounds")
        self.prompts = PromptCatalog(Path(settings.paths.sounds_dir).resolve(), self.layout.ast("sounds"), library)
        self.flows = FlowRegistry(Path(settings.paths.ivr_dir).resolve(), self.prompts.exists)
        self.ivr = IvrService(self.ari, self.flows, self.prompts, PathWriter(self.db), self.db,
                              panel_url=f"http://127.0.0.1:{settings.web.port}", bus=self.bus,
                              claims=self.router.claims_for(ivr_stasis.FEATURE))
        self.acd_writer = RecordWriter(self.db, "ACD records")
        self.acd = AcdService(self.ari, AcdRecorder(self.acd_writer), settings.acd, settings.pause_reasons,
                              settings.wrapup_codes, self.prompts, bus=self.bus,
                              claims=self.router.claims_for(acd_stasis.FEATURE),
                              dial_timeout=settings.asterisk.dial_timeout, extensions=self.directory.extensions,
                              card_lookup=acd_records.card_lookup(self.db),
                              phone_state=lambda extension: self.presence.states.get(extension, ""))
        self.recording = RecordingService(
            self.ari, self.acd_writer, self.db, settings.recording, bus=self.bus, files_dir=settings.files_dir,
            spool_dir=self.layout.host("spool", "recording"), agent_policies=dict(settings.recording_agents),
            queue_policies=lambda queue: settings.queues[queue].record if queue in settings.queues else "",
            campaign_policies=lambda name: settings.campaigns[name].record if name in settings.campaigns else "")
        self.dialer = DialerService(self.ari, self.acd, self.db, self.acd_writer, settings.campaigns, self.prompts,
                                    default_trunk=settings.acd.trunk, bus=self.bus,
                                    claims=self.router.claims_for(dialer_stasis.FEATURE))
        self.monitor = MonitorService(self.ari, self.acd_writer, Permissions({}),
                                      user_by_extension=self._user_ref, acd_leg=self._acd_leg,
                                      bus=self.bus, claims=self.router.claims_for(monitor_stasis.FEATURE),
                                      dial_timeout=settings.asterisk.dial_timeout, notify=self.acd.notify)
        self.accounts = UserAccounts(self.db)
        self.panel = AcdPanel(self.acd, self.db, self.flows.names, accounts=self.accounts, recording=self.recording,
                              monitor=self.monitor, dialer=self.dialer, phone_states=lambda: self.presence.states,
                              user_names=lambda: self.directory.names, user_ids=lambda: self.directory.ids)
        self.calls = CallService(self.ari, settings.dids, self.prompts, self.bus)
        # Each feature's channels on the router. The order is the order of resync after a reconnect: the
        # ACD and the dialer settle theirs before the call service adopts what nobody holds.
        acd_stasis.register(self.router, self.acd)
        dialer_stasis.register(self.router, self.dialer)
        monitor_stasis.register(self.router, self.monitor)
        recording_stasis.register(self.router, self.recording)
        ivr_stasis.register(self.router, self.ivr)
        calls_stasis.register(self.router, self.calls, self.ari)
        self.rates = load_rate_table(settings.cdr)
        self.ingestor = CelIngestor(self.layout.cel_log, self.db,
                                    {did: route.name for did, route in settings.dids.items()},
                                    self.rates, settings.acd.trunk)
        self.asterisk = AsteriskLifecycle(
            AsteriskProcess(self.layout, settings.var_dir / "log" / f"asterisk-{self.layout.instance}.log"),
            self.layout, self.ami, self.ari, settings.asterisk, self.ingestor.settle_after_restart)
        self.scheduler = ExportScheduler(self.db, settings.files_dir, settings.export)
        # One count of failed logins for the panel and FTPS: guesses spread over both are counted together.
        self.login_throttle = LoginThrottle()
        self.status = ControllerStatus(self.ari, self.ami, self.db, self.ingestor, self.calls, self.directory,
                                       self.presence, settings.sip)
        self.ftps = FtpsServer(settings.ftps, settings.var_dir, AdminAccounts(self.db, settings.files_dir),
                               self.login_throttle) if settings.ftps.enabled else None
        self._tasks: list[asyncio.Task[Any]] = []
        self._web: web.AppRunner | None = None
        # The passwords this start generated, until the banner has shown them once.
        self._first_start: list[first_start.Account] | None = None

    # -- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare_database)
        self.renderer.prepare_dirs()
        self.flows.reload()
        self._check_dids()
        changed = await asyncio.to_thread(self._render)
        if self.asterisk.manage:
            await self.asterisk.start()
        await self.asterisk.wait_ready()
        if self.asterisk.adopted:
            # Asterisk was already running: what we rendered just now must reach it.
            for module in dict.fromkeys(RELOAD_MODULE[n] for n in changed if n in RELOAD_MODULE):
                await self.ari.reload_module(module)
        self._tasks.append(asyncio.create_task(self.ari.run(self.router.dispatch, self.router.connected),
                                               name="ari"))
        self._tasks.append(asyncio.create_task(self.ingestor.run(self.settings.cdr.poll_interval),
                                               name="cel-ingest"))
        self._tasks.append(asyncio.create_task(self.ivr.writer.run(), name="ivr-paths"))
        self._tasks.append(asyncio.create_task(self.acd_writer.run(), name="acd-records"))
        self._tasks.append(asyncio.create_task(self.flows.watch(), name="ivr-watch"))
        self._tasks.append(asyncio.create_task(self.recording.run_sweeper(), name="recording-sweeper"))
        if self.asterisk.manage:
            self._tasks.append(asyncio.create_task(self.asterisk.watch(), name="asterisk-watch"))
        await asyncio.wait_for(self.ari.connected.wait(), self.settings.asterisk.boot_timeout)
        await self._start_web()
        self._tasks.append(asyncio.create_task(self.dialer.run(), name="dialer"))
        # Daily files at [export] at and the retention purge at [export] purge_at (UTC); a run missed
        # while the controller was down runs now.
        self.scheduler.start()
        if self.ftps is not None:
            await asyncio.to_thread(self.ftps.start)
            log.info("FTPS for admins on %s:%d (explicit TLS required)", self.settings.ftps.bind, self.ftps.port)
        log.info("controller ready")

    def _prepare_database(self) -> None:
        self.db.migrate()
        with self.db.session() as session:
            created = users.seed_demo(session)
        if created:
            accounts = [first_start.Account(c.user.login, c.user.extension, c.user.name, c.sip_password,
                                            c.panel_password or "") for c in created]
            first_start.write(self.settings.var_dir, accounts, datetime.now(UTC))
            self._first_start = accounts
        state = acd_records.load_state(self.db, self.settings.queues, self.settings.acd.estimate_calls,
                                       datetime.now(UTC))
        self.acd.load(state.queues, state.agents, state.figures, state.handle_times, state.callbacks)
        self.dialer.load()
        with self.db.session() as session:
            for problem in sync_groups(session, self.settings.monitor_groups):
                log.warning("%s", problem)
        self.reload_monitor_groups()

    def _user_ref(self, extension: str) -> UserRef | None:
        user_id = self.directory.ids.get(extension)
        return UserRef(user_id, extension, self.directory.names.get(extension, extension)) if user_id else None

    def _acd_leg(self, extension: str) -> LiveLeg | None:
        leg = self.acd.live_leg(extension)
        return LiveLeg(*leg) if leg is not None else None

    def reload_monitor_groups(self) -> None:
        """Permission groups from the database (after the admin page or the CLI changed them); it reads the
        database, so callers run it in a worker thread."""
        with self.db.session() as session:
            self.monitor.permissions = load_permissions(session)

    def _render(self) -> list[str]:
        with self.db.session() as session:
            sip_users = self.directory.reload(session)
        return self.renderer.render(sip_users)

    async def _start_web(self) -> None:
        app = make_app(self.status.health, self.status.status, accounts=self.accounts,
                       session_key=self.secrets.session_key,
                       secure_cookies=self.settings.web.secure_cookies, metrics_token=self.secrets.metrics_token,
                       demo=self.settings.web.demo)
        users_http.install(app, self.accounts, self.login_throttle)
        acd_http.install(app, self.panel)
        files = self.settings.files_dir
        admin_pages.install(app, AdminScopes(self.db))
        recording_http.install(app, RecordingQueries(self.db, files))
        cdr_http.install(app, CdrQueries(self.db))
        retention_http.install(app, RetentionAdmin(self.db, files))
        units_http.install(app, UnitsAdmin(self.db))
        monitor_http.install(app, MonitorAdmin(self.db, on_groups_changed=self.reload_monitor_groups))
        dialer_http.install(app, DialerAdmin(self.db, files, campaigns=self.settings.campaigns))
        self._web = web.AppRunner(app, access_log=None)
        await self._web.setup()
        site = web.TCPSite(self._web, self.settings.web.bind, self.settings.web.port)
        await site.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.scheduler.shutdown()
        if self.ftps is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.ftps.stop)
        if self._web is not None:
            await self._web.cleanup()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.ivr.close()
        with contextlib.suppress(Exception):
            await self.recording.drain()
        with contextlib.suppress(Exception):
            await self.acd_writer.flush()
        self.ami.close()
        await self.ari.close()
        await self.asterisk.stop()
        # Whatever Asterisk logged up to its exit goes in before we leave.
        with contextlib.suppress(Exception):
            while await asyncio.to_thread(self.ingestor.poll):
                pass
        self.db.dispose()

    def _check_dids(self) -> None:
        for did, route in self.settings.dids.items():
            kind, _, target = route.route.partition(":")
            if kind == "ivr" and not self.ivr.has_flow(target):
                log.error("DID %s routes to IVR flow %r, which is not loaded: callers hear "
                          "'not in service' until it is", did, target)

    def reload_flows(self) -> None:
        report = self.flows.reload(force=True)
        log.info("IVR flows reloaded: %s; %d problem(s)", ", ".join(report.loaded) or "none changed",
                 len(report.problems))

    async def reload_users(self) -> list[str]:
        """Renders the user-dependent files again and reloads what changed; calls go on."""
        changed = await asyncio.to_thread(self._render)
        await asyncio.to_thread(self.reload_monitor_groups)
        for name in changed:
            module = RELOAD_MODULE.get(name)
            if module:
                await self.ari.reload_module(module)
        if changed:
            log.info("users changed: reloaded %s", ", ".join(changed))
        return changed

    # -- reporting ----------------------------------------------------------------------------------

    def banner(self) -> str:
        """What `callcenter run` prints (to the terminal, never to a log) once the controller is ready.
        Passwords only on the first start, and only once."""
        with self.db.session() as session:
            listed = [(u.extension, u.name) for u in users.list_users(session) if u.extension]
        shown, self._first_start = self._first_start, None
        return startup_banner(self.settings, listed, shown)


def lock_path(settings: Settings) -> Path:
    return settings.var_dir / "callcenter.lock"
