"""The dialer's channels on the router: the people it calls (``dialer``, and ``dialer-amd`` when answering
machine detection has a verdict), their playbacks, and how each call attempt ends."""

from __future__ import annotations

from callcenter.ari.events import StasisStart
from callcenter.ari.routing import ChannelHandlers, ChannelRouter
from callcenter.dialer.placement import AMD_ARG, DIALER_ARG
from callcenter.dialer.services import DialerService

FEATURE = "dialer"


def register(router: ChannelRouter, dialer: DialerService) -> None:
    async def started(event: StasisStart) -> None:
        await dialer.stasis_start(event.channel.id, event.args)

    async def playback_finished(_channel_id: str, playback_id: str) -> None:
        await dialer.playback_finished(playback_id)

    async def destroyed(channel_id: str, cause: int) -> None:
        await dialer.channel_destroyed(channel_id, cause)

    router.register(FEATURE, ChannelHandlers(started=started, playback_finished=playback_finished,
                                              destroyed=destroyed), stasis_args=(DIALER_ARG, AMD_ARG))
