"""Calls users make without the ACD, as the wallboard shows them: phone to phone, a DID routed straight to
an extension, or out through the trunk. Each one: the other party's number and since when they talk.

Asterisk's device states (AMI) say when a user's phone becomes busy or free; what the call is comes from
ARI's list of that endpoint's channels: the phone's channel that is not in our Stasis app. ACD offers
and calls, agent sessions and supervisors' monitoring calls (``#44`` or rung from the panel) all run in
the Stasis app: they are the controller's own, shown by the ACD or not at all (a supervisor's listening
call is no call to monitor).

The answer time is when the channel was first seen Up. The called phone's device state changes at the
answer, so its side is looked at then; a phone that dials out is busy from its first ring and nothing
changes on it when the far end answers, so a call not yet Up is looked at again every ``poll`` seconds
(and whenever another phone becomes busy: it may be the one answering).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callcenter.errors import AriError

log = logging.getLogger(__name__)

# Device states of a phone with a call (RINGINUSE: a second call rings a phone already in use).
BUSY = frozenset({"INUSE", "BUSY", "ONHOLD", "RINGINUSE"})
STASIS = "Stasis"
MONITOR_PREFIX = "mon-"  # channels of monitoring sessions (snoops, panel-rung supervisor calls)
# Seconds a busy phone with no channel listed yet is looked at again (its channel is still being made).
NOT_LISTED_FOR = 5.0


@dataclass(frozen=True)
class DirectCall:
    extension: str  # the user's phone
    channel_id: str  # its channel in the call
    number: str  # the other party
    name: str
    busy_since: datetime  # the phone became busy (dialling out: before the answer)
    answered_at: datetime | None  # None while it rings the far end


ChannelList = Callable[[str], Awaitable[list[dict[str, Any]]]]


def direct_channel(channels: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The phone's channel in a call of its own (not the controller's), preferring one that is Up."""
    mine = [c for c in channels if not str(c.get("id", "")).startswith(MONITOR_PREFIX)
            and (c.get("dialplan") or {}).get("app_name") != STASIS]
    return next((c for c in mine if c.get("state") == "Up"), mine[0] if mine else None)


class DirectCalls:
    def __init__(self, channels: ChannelList, notify: Callable[[], None] = lambda: None, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), poll: float = 0.5,
                 poll_for: float = 180.0) -> None:
        self.channels = channels  # extension -> the ARI channels of PJSIP/<extension>
        self.notify = notify
        self.now = now
        self.poll = poll
        self.poll_for = poll_for  # a call that rings longer than this is not looked at again
        self.busy: dict[str, datetime] = {}  # extension -> since when its phone is busy
        self.calls: dict[str, DirectCall] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    # -- what the wallboard reads -------------------------------------------------------------------

    def of(self, extension: str) -> DirectCall | None:
        return self.calls.get(extension)

    def answered(self) -> list[DirectCall]:
        return sorted((c for c in self.calls.values() if c.answered_at is not None), key=lambda c: c.extension)

    # -- device states ------------------------------------------------------------------------------

    def device_state(self, extension: str, state: str) -> None:
        """A user's phone changed state (AMI DeviceStateChange)."""
        if state in BUSY:
            self.busy.setdefault(extension, self.now())
            self._look(extension)
            for other, call in list(self.calls.items()):
                if other != extension and call.answered_at is None:
                    self._look(other)  # the phone that became busy may be answering this one
            return
        self.busy.pop(extension, None)
        self._again.discard(extension)
        task = self._tasks.pop(extension, None)
        if task is not None:
            task.cancel()
        if self.calls.pop(extension, None) is not None:
            self.notify()

    def replace_all(self, states: Mapping[str, str]) -> None:
        """Every user's state after (re)connecting to AMI: what we knew may be stale."""
        for extension in [e for e in (*self.busy, *self.calls) if states.get(e) not in BUSY]:
            self.device_state(extension, "NOT_INUSE")
        for extension, state in states.items():
            if state in BUSY:
                self.device_state(extension, state)

    def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    # -- looking at the phone's channels ------------------------------------------------------------

    def _look(self, extension: str) -> None:
        if extension in self._tasks:
            self._again.add(extension)  # the running look reads once more when it is done
            return
        task = asyncio.get_running_loop().create_task(self._refresh(extension))
        self._tasks[extension] = task
        task.add_done_callback(lambda t: self._done(extension, t))

    def _done(self, extension: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(extension) is task:
            del self._tasks[extension]
        if not task.cancelled() and task.exception() is not None:
            log.error("direct call of %s: %s", extension, task.exception())

    async def _refresh(self, extension: str) -> None:
        started = time.monotonic()
        deadline = started + self.poll_for
        while extension in self.busy:
            self._again.discard(extension)
            listed = True
            try:
                channels = await self.channels(extension)
            except AriError:
                channels, listed = [], False  # no such endpoint, or ARI away: nothing to show
            channel = direct_channel(channels)
            self._update(extension, channel)
            if extension in self._again:
                continue
            # The device state can come before ARI lists the phone's new channel: look again a little.
            not_listed_yet = listed and not channels and time.monotonic() - started < NOT_LISTED_FOR
            if (channel is None and not not_listed_yet) or (channel is not None and channel.get("state") == "Up") \
                    or time.monotonic() > deadline:
                return
            await asyncio.sleep(self.poll)

    def _update(self, extension: str, channel: dict[str, Any] | None) -> None:
        old = self.calls.get(extension)
        if channel is None or extension not in self.busy:
            new = None
        else:
            connected = channel.get("connected") or {}
            channel_id = str(channel.get("id", ""))
            up = channel.get("state") == "Up"
            answered = old.answered_at if old is not None and old.channel_id == channel_id else None
            new = DirectCall(extension, channel_id, str(connected.get("number", "")), str(connected.get("name", "")),
                             self.busy[extension], answered or (self.now() if up else None))
        if new == old:
            return
        if new is None:
            self.calls.pop(extension, None)
        else:
            self.calls[extension] = new
        self.notify()
