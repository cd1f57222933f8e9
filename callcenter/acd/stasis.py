"""The ACD's channels on the router: agent phones it rang (``acd`` Stasis argument), callers it queued,
the lines of agent sessions. Keys, the ACD's playbacks and every channel's end come here."""

from __future__ import annotations

from collections.abc import Iterable

from callcenter.acd.core import ACD_ARG
from callcenter.acd.services import AcdService
from callcenter.ari.events import StasisStart
from callcenter.ari.routing import ChannelHandlers, ChannelRouter

FEATURE = "acd"


def register(router: ChannelRouter, acd: AcdService) -> None:
    async def started(event: StasisStart) -> None:
        await acd.channel_entered(event.channel.id)

    async def dtmf(channel_id: str, digit: str) -> None:
        await acd.dtmf(channel_id, digit)

    async def playback_finished(_channel_id: str, playback_id: str) -> None:
        await acd.playback_finished(playback_id)

    async def ended(channel_id: str) -> None:
        await acd.channel_gone(channel_id)

    async def destroyed(channel_id: str, cause: int) -> None:
        # Agent phones that never answered leave no StasisEnd: this is how their offer ends.
        await acd.channel_gone(channel_id, cause)

    async def resync(channel_ids: set[str]) -> Iterable[str]:
        await acd.resync(channel_ids)
        return [channel_id for channel_id in channel_ids if acd.owns(channel_id)]

    router.register(FEATURE, ChannelHandlers(started=started, dtmf=dtmf, playback_finished=playback_finished,
                                             ended=ended, destroyed=destroyed, resync=resync),
                    stasis_args=(ACD_ARG,))
