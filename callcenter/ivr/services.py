"""Starts IVR sessions for channels and routes their events to them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

import aiohttp
from sqlalchemy import select

from callcenter import metrics
from callcenter.acd.events import EnterQueue
from callcenter.ari.client import AriClient
from callcenter.bus import Bus, ChannelClaims
from callcenter.db.engine import Database
from callcenter.db.models import Holiday
from callcenter.ivr.events import StartIvr
from callcenter.ivr.prompts import PromptCatalog
from callcenter.ivr.records import PathWriter, VisitRecorder
from callcenter.ivr.registry import FlowRegistry
from callcenter.ivr.runtime import CallContext, HolidayInfo, IvrSession
from callcenter.ivr.stasis import ChannelIO

log = logging.getLogger(__name__)


class IvrService:
    def __init__(self, ari: AriClient, registry: FlowRegistry, prompts: PromptCatalog, writer: PathWriter,
                 db: Database, panel_url: str, *, bus: Bus, claims: ChannelClaims,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ari = ari
        self.bus = bus
        self.claims = claims
        self.registry = registry
        self.prompts = prompts
        self.writer = writer
        self.db = db
        self.panel_url = panel_url
        self.clock = clock
        self.channels: dict[str, ChannelIO] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.http: aiohttp.ClientSession | None = None
        bus.serve(StartIvr, self._start_requested)

    async def _start_requested(self, request: StartIvr) -> bool:
        return self.start(request.channel_id, request.flow, request.caller, request.did, request.answered)

    def has_flow(self, name: str) -> bool:
        return self.registry.get(name) is not None

    async def _holiday(self, day: date) -> HolidayInfo | None:
        def lookup() -> HolidayInfo | None:
            with self.db.session() as session:
                row = session.scalar(select(Holiday).where(Holiday.day == day))
                return HolidayInfo(row.name, row.prompt) if row else None
        return await asyncio.to_thread(lookup)

    def start(self, channel_id: str, flow_name: str, caller: str, did: str, answered: bool = False) -> bool:
        flow = self.registry.get(flow_name)
        if flow is None:
            return False
        if self.http is None:
            self.http = aiohttp.ClientSession()

        async def enter_queue(queue: str, priority: int) -> bool:
            return bool(await self.bus.ask(EnterQueue(channel_id, queue, caller, "", did, True, priority)))
        io = ChannelIO(self.ari, channel_id, answered, enter_queue)
        recorder = VisitRecorder(self.writer, channel_id, flow.name, flow.version, did, caller)
        context = CallContext(caller=caller, did=did, panel_url=self.panel_url, language=flow.language)
        session = IvrSession(flow, io, recorder, self.prompts, context, flows=self.registry.get,
                             holidays=self._holiday, clock=self.clock, http=self.http)
        self.channels[channel_id] = io
        self.claims.take(channel_id)
        self.tasks[channel_id] = asyncio.create_task(self._run(channel_id, session), name=f"ivr-{channel_id}")
        return True

    async def _run(self, channel_id: str, session: IvrSession) -> None:
        try:
            outcome = await session.run()
            metrics.IVR_CALLS.labels(outcome.kind).inc()
        except Exception:
            log.exception("IVR session of %s failed; hanging up", channel_id)
            await self.channels[channel_id].hangup()
        finally:
            self.channels.pop(channel_id, None)
            self.tasks.pop(channel_id, None)

    def on_dtmf(self, channel_id: str, digit: str) -> None:
        io = self.channels.get(channel_id)
        if io is not None:
            io.on_dtmf(digit)

    def on_playback_started(self, channel_id: str, playback_id: str) -> None:
        io = self.channels.get(channel_id)
        if io is not None:
            io.on_playback_started(playback_id)

    def on_playback_finished(self, channel_id: str, playback_id: str) -> None:
        io = self.channels.get(channel_id)
        if io is not None:
            io.on_playback_finished(playback_id)

    def on_gone(self, channel_id: str) -> None:
        io = self.channels.get(channel_id)
        if io is not None:
            io.on_gone()

    async def resync(self, owned: set[str]) -> None:
        for channel_id, io in list(self.channels.items()):
            if channel_id not in owned:
                io.on_gone()
            else:
                await io.resync()

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        await self.writer.flush()

