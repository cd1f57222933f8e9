"""The caller's side of an IVR session over ARI: play (interruptible by keys), read keys, hand the
call to the dialplan, hang up. Keys pressed during or before a prompt are kept (type-ahead). ``register``
puts the IVR's channels on the router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from callcenter import metrics
from callcenter.ari.client import AriClient
from callcenter.ari.routing import ChannelHandlers, ChannelRouter
from callcenter.errors import AriError, AriNotFound
from callcenter.ivr.runtime import CallerGone

if TYPE_CHECKING:
    from callcenter.ivr.services import IvrService

log = logging.getLogger(__name__)

FEATURE = "ivr"

# Where each IVR exit continues in the dialplan (dialplan/extensions.conf.j2); a queue exit stays in
# the app and goes to the ACD.
HAND_OVER_CONTEXTS = {"extension": "users", "voicemail": "ivr-voicemail"}
# Puts a channel in a queue (queue, priority); False when there is no such queue.
EnterQueue = Callable[[str, int], Awaitable[bool]]


class ChannelIO:
    def __init__(self, ari: AriClient, channel_id: str, answered: bool = False,
                 enter_queue: EnterQueue | None = None) -> None:
        self.ari = ari
        self.enter_queue = enter_queue
        self.channel_id = channel_id
        self.answered = answered
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.playbacks: dict[str, asyncio.Future[None]] = {}
        self.key_at: float | None = None

    # -- events from the adapter ----------------------------------------------------------------------

    def on_dtmf(self, digit: str) -> None:
        self.key_at = time.monotonic()
        self.digits.put_nowait(digit)

    def on_playback_started(self, playback_id: str) -> None:
        if self.key_at is not None and playback_id in self.playbacks:
            metrics.IVR_KEY_TO_PROMPT.observe(time.monotonic() - self.key_at)
            self.key_at = None

    def on_playback_finished(self, playback_id: str) -> None:
        future = self.playbacks.pop(playback_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    def on_gone(self) -> None:
        self.gone.set()

    # -- CallerIO -------------------------------------------------------------------------------------

    async def _call(self, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except AriNotFound:
            raise CallerGone from None

    async def answer(self) -> None:
        if not self.answered:
            await self._call(self.ari.answer(self.channel_id))
            self.answered = True

    async def play(self, media: list[str], interruptible: bool) -> str | None:
        if self.gone.is_set():
            raise CallerGone
        if interruptible and not self.digits.empty():
            return self.digits.get_nowait()
        playback_id = f"ivr-{uuid.uuid4().hex}"
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.playbacks[playback_id] = finished
        await self._call(self.ari.play(self.channel_id, media, playback_id))
        gone: asyncio.Future[Any] = asyncio.ensure_future(self.gone.wait())
        key: asyncio.Future[str] | None = asyncio.ensure_future(self.digits.get()) if interruptible else None
        waiting: list[asyncio.Future[Any]] = [finished, gone]
        if key is not None:
            waiting.append(key)
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if key is not None and not key.done():
                key.cancel()
        if self.gone.is_set():
            raise CallerGone
        if key is not None and key.done() and not key.cancelled():
            self.playbacks.pop(playback_id, None)
            with contextlib.suppress(AriError):
                await self.ari.stop_playback(playback_id)
            return key.result()
        return None

    async def get_digit(self, timeout: float) -> str | None:
        if self.gone.is_set():
            raise CallerGone
        key = asyncio.ensure_future(self.digits.get())
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait([key, gone], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not key.done():
                key.cancel()
        if key.done() and not key.cancelled():
            return key.result()
        if self.gone.is_set():
            raise CallerGone
        return None

    async def hand_over(self, kind: str, target: str, priority: int = 0) -> None:
        if kind == "queue":
            if self.enter_queue is None or not await self.enter_queue(target, priority):
                log.error("IVR exit to queue %r, which does not exist: hanging up %s", target, self.channel_id)
                await self.hangup()
            return
        await self._call(self.ari.continue_in_dialplan(self.channel_id, HAND_OVER_CONTEXTS[kind], target))

    async def hangup(self) -> None:
        with contextlib.suppress(AriNotFound):
            await self.ari.hangup(self.channel_id)

    async def resync(self) -> None:
        """After a reconnect: playbacks that ended meanwhile are finished now."""
        for playback_id in list(self.playbacks):
            if not await self.ari.playback_exists(playback_id):
                self.on_playback_finished(playback_id)


def register(router: ChannelRouter, ivr: IvrService) -> None:
    """The keys, playbacks and end of the channels an IVR flow runs on (ari/routing.py)."""

    async def dtmf(channel_id: str, digit: str) -> None:
        ivr.on_dtmf(channel_id, digit)

    async def playback_started(channel_id: str, playback_id: str) -> None:
        ivr.on_playback_started(channel_id, playback_id)

    async def playback_finished(channel_id: str, playback_id: str) -> None:
        ivr.on_playback_finished(channel_id, playback_id)

    async def ended(channel_id: str) -> None:
        ivr.on_gone(channel_id)

    async def resync(channel_ids: set[str]) -> list[str]:
        await ivr.resync(channel_ids)
        return []  # the call service still holds these channels: it settles them after us

    router.register(FEATURE, ChannelHandlers(dtmf=dtmf, playback_started=playback_started,
                                           playback_finished=playback_finished, ended=ended, resync=resync))
