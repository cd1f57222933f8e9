"""Monitoring's channels on the router: the snoop on the agent and the supervisor's phone (their Stasis
arguments carry the session), and the supervisor's keys (4 silent, 5 whisper, 6 three-way)."""

from __future__ import annotations

import logging

from callcenter.ari.events import StasisStart
from callcenter.ari.routing import ChannelHandlers, ChannelRouter
from callcenter.monitor.events import SNOOP_ARG, SUPERVISOR_ARG
from callcenter.monitor.services import MonitorService

log = logging.getLogger(__name__)

FEATURE = "monitor"


def register(router: ChannelRouter, monitor: MonitorService) -> None:
    async def started(event: StasisStart) -> None:
        if len(event.args) < 2:
            log.warning("monitoring channel %s entered the app without a session: %s", event.channel.id, event.args)
            return
        if event.args[0] == SNOOP_ARG:
            await monitor.snoop_started(event.channel.id, event.args[1])
        else:
            await monitor.supervisor_answered(event.channel.id, event.args[1])

    async def dtmf(channel_id: str, digit: str) -> None:
        await monitor.dtmf(channel_id, digit)

    async def gone(channel_id: str, _cause: int = 0) -> None:
        await monitor.channel_gone(channel_id)

    router.register(FEATURE, ChannelHandlers(started=started, dtmf=dtmf, ended=gone, destroyed=gone),
                    stasis_args=(SNOOP_ARG, SUPERVISOR_ARG))
