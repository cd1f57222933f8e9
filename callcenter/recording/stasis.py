"""Recording on the router: the end of each live recording (finished, or failed with a cause)."""

from __future__ import annotations

from callcenter.ari.events import AriEvent, RecordingEnded
from callcenter.ari.routing import ChannelRouter
from callcenter.recording.services import RecordingService


def register(router: ChannelRouter, recording: RecordingService) -> None:
    async def ended(event: AriEvent) -> None:
        if isinstance(event, RecordingEnded):
            recording.on_recording_ended(event.name, event.failed, event.cause)

    router.listen(RecordingEnded, ended)
