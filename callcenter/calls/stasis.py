"""Turns ARI events into calls on the call service, and resyncs it after every (re)connect."""

from __future__ import annotations

import logging

from callcenter.acd.services import ACD_ARG, AcdService
from callcenter.ari.client import AriClient
from callcenter.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    PlaybackFinished,
    PlaybackStarted,
    RecordingEnded,
    StasisEnd,
    StasisStart,
)
from callcenter.calls.services import CallService, OwnedChannel
from callcenter.dialer.services import DialerService
from callcenter.errors import AriError, AriNotFound
from callcenter.ivr.services import IvrService
from callcenter.monitor.services import SNOOP_ARG, SUPERVISOR_ARG, MonitorService
from callcenter.recording.services import RecordingService

log = logging.getLogger(__name__)


class StasisAdapter:
    def __init__(self, ari: AriClient, calls: CallService, ivr: IvrService, acd: AcdService,
                 recording: RecordingService | None = None, monitor: MonitorService | None = None,
                 dialer: DialerService | None = None) -> None:
        self.ari = ari
        self.calls = calls
        self.ivr = ivr
        self.acd = acd
        self.recording = recording
        self.monitor = monitor
        self.dialer = dialer

    async def on_event(self, event: AriEvent) -> None:
        if isinstance(event, ChannelDtmfReceived):
            if self.monitor is not None and await self.monitor.dtmf(event.channel.id, event.digit):
                return
            if not await self.acd.dtmf(event.channel.id, event.digit):
                self.ivr.on_dtmf(event.channel.id, event.digit)
        elif isinstance(event, PlaybackStarted):
            self.ivr.on_playback_started(event.playback.target_uri.removeprefix("channel:"), event.playback.id)
        elif isinstance(event, PlaybackFinished):
            self.ivr.on_playback_finished(event.playback.target_uri.removeprefix("channel:"), event.playback.id)
            await self.calls.playback_finished(event.playback.id)
            await self.acd.playback_finished(event.playback.id)
            if self.dialer is not None:
                await self.dialer.playback_finished(event.playback.id)
        elif isinstance(event, StasisStart):
            if self.dialer is not None and await self.dialer.stasis_start(event.channel.id, event.args):
                return
            if self.monitor is not None and event.args[:1] == (SNOOP_ARG,) and len(event.args) > 1:
                await self.monitor.snoop_started(event.channel.id, event.args[1])
            elif self.monitor is not None and event.args[:1] == (SUPERVISOR_ARG,) and len(event.args) > 1:
                await self.monitor.supervisor_answered(event.channel.id, event.args[1])
            elif event.args[:1] == (ACD_ARG,):
                await self.acd.channel_entered(event.channel.id)
            else:
                await self.calls.start(event.channel.id, event.args, caller=event.channel.caller_number,
                                       caller_name=event.channel.caller_name)
        elif isinstance(event, StasisEnd):
            if self.monitor is not None:
                await self.monitor.channel_gone(event.channel.id)
            self.ivr.on_gone(event.channel.id)
            self.calls.ended(event.channel.id)
            await self.acd.channel_gone(event.channel.id)
        elif isinstance(event, RecordingEnded):
            if self.recording is not None:
                self.recording.on_recording_ended(event.name, event.failed, event.cause)
        elif isinstance(event, ChannelDestroyed):
            if self.monitor is not None:
                await self.monitor.channel_gone(event.channel.id)
            # Agent phones that never answered leave no StasisEnd: this is how their offer ends.
            await self.acd.channel_gone(event.channel.id, event.cause)
            if self.dialer is not None:
                await self.dialer.channel_destroyed(event.channel.id, event.cause)

    async def on_connect(self) -> None:
        """Asterisk replays no StasisStart: ask what the app still owns and hand it to the service."""
        try:
            app = await self.ari.application()
        except AriNotFound:
            app = {"channel_ids": []}
        owned: dict[str, OwnedChannel] = {}
        await self.acd.resync(set(app.get("channel_ids", [])))
        for channel_id in app.get("channel_ids", []):
            if self.acd.owns(channel_id) or (self.dialer is not None and self.dialer.owns(channel_id)):
                continue
            try:
                data = await self.ari.request("GET", f"/channels/{channel_id}")
            except AriNotFound:
                continue
            dialplan = data.get("dialplan") or {}
            app_data = str(dialplan.get("app_data", ""))
            parts = app_data.split(",")
            args = tuple(parts[1:]) if parts and parts[0] == self.ari.app else ()
            caller = str((data.get("caller") or {}).get("number", ""))
            owned[channel_id] = OwnedChannel(args, answered=data.get("state") == "Up", caller=caller)
        try:
            await self.ivr.resync(set(owned))
            await self.calls.resync(owned)
        except AriError:
            log.exception("resync after reconnect failed")
