"""The call service's channels on the router: every channel entering the app with no feature's argument
(DID calls, feature codes), and the adoption of such channels after a restart."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from callcenter.ari.client import AriClient
from callcenter.ari.events import StasisStart
from callcenter.ari.routing import ChannelHandlers, ChannelRouter
from callcenter.calls.services import CallService, OwnedChannel
from callcenter.errors import AriError, AriNotFound

log = logging.getLogger(__name__)

FEATURE = "calls"


def register(router: ChannelRouter, calls: CallService, ari: AriClient) -> None:
    journeys = calls.journeys

    async def started(event: StasisStart) -> None:
        await calls.start(event.channel.id, event.args, caller=event.channel.caller_number,
                          caller_name=event.channel.caller_name)

    async def playback_finished(_channel_id: str, playback_id: str) -> None:
        await calls.playback_finished(playback_id)

    async def ended(channel_id: str) -> None:
        calls.ended(channel_id)
        if journeys is not None:
            await journeys.channel_ended(channel_id)

    async def resync(channel_ids: set[str]) -> Iterable[str]:
        owned: dict[str, OwnedChannel] = {}
        for channel_id in channel_ids:
            try:
                data = await ari.request("GET", f"/channels/{channel_id}")
            except AriNotFound:
                continue
            dialplan = data.get("dialplan") or {}
            parts = str(dialplan.get("app_data", "")).split(",")
            args = tuple(parts[1:]) if parts and parts[0] == ari.app else ()
            caller = str((data.get("caller") or {}).get("number", ""))
            owned[channel_id] = OwnedChannel(args, answered=data.get("state") == "Up", caller=caller)
        try:
            await calls.resync(owned)
        except AriError:
            log.exception("resync after reconnect failed")

        return calls.calls.keys()

    router.register(FEATURE, ChannelHandlers(started=started, playback_finished=playback_finished, ended=ended,
                                             resync=resync), default=True)
