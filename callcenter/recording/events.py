"""What the recording feature tells the rest of the controller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RecordingDone:
    """A recording's MP3 is ready (``status`` ready) or could not be made (failed). Published inside the
    records writer's ``together()`` with the recording's row update: subscribers' writes (the webhooks'
    outbox) land in the same transaction; they read the rest (its call, agent, file) from the row."""

    recording_id: str
    status: str  # ready, failed
    seconds: float | None
    at: datetime
