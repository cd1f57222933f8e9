"""ARI events as typed, frozen objects. Only the fields the controller uses are lifted out; the
whole JSON stays in ``raw`` for anything else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str = ""
    caller_name: str = ""
    connected_number: str = ""
    context: str = ""
    exten: str = ""
    language: str = "en"
    creationtime: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Channel:
        caller = data.get("caller") or {}
        connected = data.get("connected") or {}
        dialplan = data.get("dialplan") or {}
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            connected_number=str(connected.get("number", "")),
            context=str(dialplan.get("context", "")),
            exten=str(dialplan.get("exten", "")),
            language=str(data.get("language", "en") or "en"),
            creationtime=str(data.get("creationtime", "")),
        )


@dataclass(frozen=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Playback:
        return cls(str(data.get("id", "")), str(data.get("media_uri", "")),
                   str(data.get("target_uri", "")), str(data.get("state", "")))


@dataclass(frozen=True)
class Bridge:
    id: str
    bridge_type: str
    channels: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bridge:
        return cls(str(data.get("id", "")), str(data.get("bridge_type", "")),
                   tuple(data.get("channels", ())))


@dataclass(frozen=True)
class AriEvent:
    type: str
    application: str
    timestamp: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class StasisStart(AriEvent):
    channel: Channel
    args: tuple[str, ...]


@dataclass(frozen=True)
class StasisEnd(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class ChannelStateChange(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class ChannelDtmfReceived(AriEvent):
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ChannelHangupRequest(AriEvent):
    channel: Channel
    cause: int


@dataclass(frozen=True)
class ChannelDestroyed(AriEvent):
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class PlaybackStarted(AriEvent):
    playback: Playback


@dataclass(frozen=True)
class PlaybackFinished(AriEvent):
    playback: Playback


@dataclass(frozen=True)
class ChannelEnteredBridge(AriEvent):
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True)
class ChannelLeftBridge(AriEvent):
    bridge: Bridge
    channel: Channel


@dataclass(frozen=True)
class RecordingEnded(AriEvent):
    """RecordingFinished or RecordingFailed of a live recording."""

    name: str
    failed: bool
    cause: str


def parse_event(data: Mapping[str, Any]) -> AriEvent:
    """Turns one websocket message into its typed event (an ``AriEvent`` when we have no class)."""
    kind = str(data.get("type", ""))
    base: dict[str, Any] = {
        "type": kind,
        "application": str(data.get("application", "")),
        "timestamp": str(data.get("timestamp", "")),
        "raw": data,
    }

    def channel() -> Channel:
        return Channel.from_json(data.get("channel") or {})

    if kind == "StasisStart":
        return StasisStart(**base, channel=channel(), args=tuple(str(a) for a in data.get("args", ())))
    if kind == "StasisEnd":
        return StasisEnd(**base, channel=channel())
    if kind == "ChannelStateChange":
        return ChannelStateChange(**base, channel=channel())
    if kind == "ChannelDtmfReceived":
        return ChannelDtmfReceived(**base, channel=channel(), digit=str(data.get("digit", "")),
                                   duration_ms=int(data.get("duration_ms", 0)))
    if kind == "ChannelHangupRequest":
        return ChannelHangupRequest(**base, channel=channel(), cause=int(data.get("cause", 0) or 0))
    if kind == "ChannelDestroyed":
        return ChannelDestroyed(**base, channel=channel(), cause=int(data.get("cause", 0) or 0),
                                cause_txt=str(data.get("cause_txt", "")))
    if kind == "PlaybackStarted":
        return PlaybackStarted(**base, playback=Playback.from_json(data.get("playback") or {}))
    if kind == "PlaybackFinished":
        return PlaybackFinished(**base, playback=Playback.from_json(data.get("playback") or {}))
    if kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
        cls = ChannelEnteredBridge if kind == "ChannelEnteredBridge" else ChannelLeftBridge
        return cls(**base, bridge=Bridge.from_json(data.get("bridge") or {}), channel=channel())
    if kind in ("RecordingFinished", "RecordingFailed"):
        recording = data.get("recording") or {}
        return RecordingEnded(**base, name=str(recording.get("name", "")), failed=kind == "RecordingFailed",
                              cause=str(recording.get("cause", "")))
    return AriEvent(**base)
