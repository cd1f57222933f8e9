"""ARI events to the feature that owns the channel, instead of asking every feature in turn.

Each feature registers what it does with its channels' events (``ChannelHandlers``) and the Stasis
arguments of the channels it takes when they enter the app (the dialer's ``dialer``, the ACD's ``acd``...).
Channels entering with no registered argument go to the default feature (the call service).

A channel's **holders** are the features that took it, oldest first: the one that got it at StasisStart
and every feature it was handed to since (a DID call: calls -> IVR -> ACD), or that originated it.
A feature takes a channel through its ``ChannelClaims`` (``claims_for(name).take``), before it originates
one or when it starts handling one handed over. Then:

- keys (DTMF) and playbacks on the channel go to the newest holder only: the feature that has the
  caller now;
- StasisEnd and ChannelDestroyed go to every holder, newest first, so each lets go of its own records
  (the ACD ends the call before the dialer, which handed it over, books the outcome);
- a playback on a bridge (no channel to own it) goes to every feature that handles playbacks: each
  looks its playback id up and ignores the others';
- events that belong to no channel (a recording ending) go to the features that listen for their type.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from callcenter.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from callcenter.errors import AriError

log = logging.getLogger(__name__)

ChannelEvent = Callable[[str], Awaitable[None]]
Keyed = Callable[[str, str], Awaitable[None]]  # (channel, digit or playback id)
Destroyed = Callable[[str, int], Awaitable[None]]  # (channel, hang-up cause)
# After every (re)connect, with the channels the app has now: the feature settles its own and returns
# the ones it holds (kept or adopted), which no later feature is offered.
Resync = Callable[[set[str]], Awaitable[Iterable[str]]]


@dataclass(frozen=True)
class ChannelHandlers:
    """What one feature does with the ARI events of the channels it holds; None: nothing."""

    started: Callable[[StasisStart], Awaitable[None]] | None = None
    dtmf: Keyed | None = None
    playback_started: Keyed | None = None
    playback_finished: Keyed | None = None
    ended: ChannelEvent | None = None  # StasisEnd: the channel left the app
    destroyed: Destroyed | None = None  # ChannelDestroyed, also for channels that never entered the app
    resync: Resync | None = None


class _Claims:
    def __init__(self, router: ChannelRouter, feature: str) -> None:
        self._router = router
        self._feature = feature

    def take(self, channel_id: str) -> None:
        self._router.take(channel_id, self._feature)


class ChannelRouter:
    def __init__(self, channels_in_app: Callable[[], Awaitable[set[str]]]) -> None:
        """``channels_in_app``: what Asterisk says the app owns, asked after every (re)connect."""
        self._channels_in_app = channels_in_app
        self._features: dict[str, ChannelHandlers] = {}
        self._by_arg: dict[str, str] = {}
        self._default = ""
        self._holders: dict[str, list[str]] = {}
        self._listeners: dict[type[AriEvent], list[Callable[[AriEvent], Awaitable[None]]]] = {}

    # -- registration (at construction, by each feature's stasis module) ----------------------------------

    def register(self, feature: str, handlers: ChannelHandlers, *, stasis_args: Iterable[str] = (),
                 default: bool = False) -> None:
        """``stasis_args``: the first Stasis arguments of the channels this feature takes on StasisStart;
        ``default``: it takes the channels no feature claimed by argument."""
        if feature in self._features:
            raise ValueError(f"feature {feature!r} is registered twice")
        self._features[feature] = handlers
        for arg in stasis_args:
            if arg in self._by_arg:
                raise ValueError(f"Stasis argument {arg!r} is taken by {self._by_arg[arg]!r}")
            self._by_arg[arg] = feature
        if default:
            if self._default:
                raise ValueError(f"{self._default!r} already takes the unclaimed channels")
            self._default = feature

    def listen(self, kind: type[AriEvent], handler: Callable[[AriEvent], Awaitable[None]]) -> None:
        """Events of a type that belongs to no channel (``RecordingEnded``)."""
        self._listeners.setdefault(kind, []).append(handler)

    def claims_for(self, feature: str) -> _Claims:
        return _Claims(self, feature)

    # -- ownership ------------------------------------------------------------------------------------

    def take(self, channel_id: str, feature: str) -> None:
        holders = self._holders.setdefault(channel_id, [])
        if holders and holders[-1] == feature:
            return
        if feature in holders:
            holders.remove(feature)
        holders.append(feature)

    def owner(self, channel_id: str) -> str | None:
        holders = self._holders.get(channel_id)
        return holders[-1] if holders else None

    def holders(self, channel_id: str) -> tuple[str, ...]:
        return tuple(self._holders.get(channel_id, ()))

    # -- dispatch -------------------------------------------------------------------------------------

    async def dispatch(self, event: AriEvent) -> None:
        if isinstance(event, StasisStart):
            await self._started(event)
        elif isinstance(event, ChannelDtmfReceived):
            handlers = self._owner_handlers(event.channel.id)
            if handlers is not None and handlers.dtmf is not None:
                await handlers.dtmf(event.channel.id, event.digit)
        elif isinstance(event, PlaybackStarted | PlaybackFinished):
            await self._playback(event)
        elif isinstance(event, StasisEnd):
            for handlers in self._newest_first(event.channel.id):
                if handlers.ended is not None:
                    await handlers.ended(event.channel.id)
        elif isinstance(event, ChannelDestroyed):
            for handlers in self._newest_first(event.channel.id):
                if handlers.destroyed is not None:
                    await handlers.destroyed(event.channel.id, event.cause)
            self._holders.pop(event.channel.id, None)
        for listener in self._listeners.get(type(event), ()):
            await listener(event)

    async def _started(self, event: StasisStart) -> None:
        feature = self._by_arg.get(event.args[0]) if event.args else None
        feature = feature or self._default
        if not feature:
            log.warning("channel %s entered the app with %s and no feature takes it", event.channel.id, event.args)
            return
        self.take(event.channel.id, feature)
        started = self._features[feature].started
        if started is not None:
            await started(event)

    async def _playback(self, event: PlaybackStarted | PlaybackFinished) -> None:
        target = event.playback.target_uri
        playback_id = event.playback.id
        if target.startswith("channel:"):
            channel_id = target.removeprefix("channel:")
            owner = self._owner_handlers(channel_id)
            targets = [(channel_id, owner)] if owner is not None else []
        else:
            targets = [("", handlers) for handlers in self._features.values()]
        for channel_id, handlers in targets:
            handle = handlers.playback_started if isinstance(event, PlaybackStarted) else handlers.playback_finished
            if handle is not None:
                await handle(channel_id, playback_id)

    def _owner_handlers(self, channel_id: str) -> ChannelHandlers | None:
        owner = self.owner(channel_id)
        return self._features.get(owner) if owner else None

    def _newest_first(self, channel_id: str) -> list[ChannelHandlers]:
        return [self._features[f] for f in reversed(self._holders.get(channel_id, ())) if f in self._features]

    async def connected(self) -> None:
        """After every (re)connect: Asterisk replays no StasisStart, so each feature settles its channels."""
        try:
            channel_ids = await self._channels_in_app()
        except AriError:
            log.exception("resync after reconnect failed: could not list the app's channels")
            return
        await self.resync(channel_ids)

    async def resync(self, channel_ids: set[str]) -> None:
        """After a (re)connect (Asterisk replays no StasisStart), with the channels the app has now: every
        feature but the default one settles its channels against them and returns those it holds; the
        default feature then gets the channels nobody else holds, which it may adopt (after a restart of
        the controller, nobody holds anything). Holders are not pruned here: a channel still ringing is
        not in the app's list yet, and its ChannelDestroyed will come."""
        kept: set[str] = set()
        for feature, handlers in self._features.items():
            if feature == self._default or handlers.resync is None:
                continue
            try:
                held = set(await handlers.resync(set(channel_ids)))
            except Exception:  # one feature's failure must not leave the others unsettled
                log.exception("%s: resync after reconnect failed", feature)
                continue
            for channel_id in held:
                self.take(channel_id, feature)
            kept |= held
        if not self._default or self._features[self._default].resync is None:
            return
        unclaimed = {c for c in channel_ids - kept
                     if not self._holders.get(c) or self._default in self._holders[c]}
        resync = self._features[self._default].resync
        assert resync is not None
        for channel_id in await resync(unclaimed):
            if not self._holders.get(channel_id):  # adopted; a channel it handed on stays with its holder
                self.take(channel_id, self._default)
