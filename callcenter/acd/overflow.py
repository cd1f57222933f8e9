"""Overflow and callbacks: a caller who waited too long, or finds nobody logged in, goes to another queue,
a voicemail, an IVR flow or the callback list; a caller who keeps their place by a key waits as a
callback; the callback list itself."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from callcenter import metrics
from callcenter.acd.core import (
    NUMBER_RE,
    AcdCore,
)
from callcenter.acd.events import CallEnded
from callcenter.acd.model import (
    AcdCall,
    CallState,
    Direction,
)
from callcenter.errors import ActionRefused, AriError, AriNotFound
from callcenter.ivr.events import StartIvr

log = logging.getLogger(__name__)


class Overflow(AcdCore):
    # -- overflow ------------------------------------------------------------------------------------

    async def _max_wait(self, call: AcdCall) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.state not in (CallState.WAITING, CallState.RINGING) or not runtime.spec.overflow:
            return
        await self._overflow(call, f"waited {runtime.spec.max_wait} s")

    async def _overflow_unstaffed(self) -> None:
        for call in list(self.calls.values()):
            runtime = self.queues.get(call.queue or "")
            if (runtime is not None and call.state is CallState.WAITING and runtime.spec.overflow
                    and not self._staffed(runtime.spec.name)):
                await self._overflow(call, "no agent logged in")

    async def _overflow(self, call: AcdCall, why: str) -> None:
        runtime = self.queues[call.queue or ""]
        kind, _, target = runtime.spec.overflow.partition(":")
        log.info("call %s overflows from %s to %s: %s", call.record_id, call.queue, runtime.spec.overflow, why)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        metrics.ACD_CALLS.labels(call.queue, "overflow").inc()
        if kind == "queue":
            await self._move_to_queue(call, target, "overflow")
        elif kind == "voicemail":
            await self._to_voicemail(call, target)
        elif kind == "ivr":
            await self._to_ivr(call, target, "overflow")
        else:
            await self._leave_for_callback(call, "overflow", "queue-overflow-callback")

    def _close_record(self, call: AcdCall, outcome: str, kind: str, target: str) -> None:
        now = self.timers.now()
        self._cancel_call_timers(call)
        wait = (now - (call.entered_at or now)).total_seconds()
        runtime = self.queues.get(call.queue or "")
        if runtime is not None and call.answered_at is None:
            runtime.figures.overflowed += 1
        call.outcome = outcome
        values: dict[str, Any] = {"ended_at": now, "outcome": outcome}
        if call.answered_at is None:
            values["wait_seconds"] = round(wait, 2)
        else:
            values["talk_seconds"] = round((now - call.answered_at).total_seconds(), 2)
        self.recorder.call_updated(call.record_id, **values)
        self.recorder.destination(call, kind, target, now)

    async def _move_to_queue(self, call: AcdCall, queue: str, outcome: str) -> None:
        assert call.channel_id is not None
        self._close_record(call, outcome, "Q", queue)
        await self._unpark(call)
        self._forget(call)
        await self.bus.publish(CallEnded(call, outcome, continues=True))
        await self.enqueue(call.channel_id, queue, call.number, call.name, call.did, call.priority, answered=True,
                           parent=call)

    async def _to_voicemail(self, call: AcdCall, mailbox: str) -> None:
        channel_id = call.channel_id
        self._close_record(call, "overflow" if call.answered_at is None else "transferred", "V", mailbox)
        self._add_callback(call, "voicemail")
        call.state = CallState.ENDED
        self._forget(call)
        await self.bus.publish(CallEnded(call, call.outcome))
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
                await self.control.continue_in_dialplan(channel_id, "ivr-voicemail", mailbox)
        await self.dispatch()

    async def _to_ivr(self, call: AcdCall, flow: str, outcome: str) -> None:
        channel_id = call.channel_id
        self._close_record(call, outcome, "R", flow)
        call.state = CallState.ENDED
        self._forget(call)
        await self.bus.publish(CallEnded(call, outcome))
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
            if not await self.bus.ask(StartIvr(channel_id, flow, call.number, call.did)):
                log.error("call %s: IVR flow %s is not loaded; hanging up", call.record_id, flow)
                with contextlib.suppress(AriError):
                    await self.control.hangup(channel_id)
        await self.dispatch()

    async def _leave_for_callback(self, call: AcdCall, reason: str, prompt: str) -> None:
        """Overflow to the callback list: the caller hears why, hangs up, and the number is listed."""
        channel_id = call.channel_id
        self._close_record(call, "overflow", "C", "callback")
        self._add_callback(call, reason)
        call.state = CallState.ENDED
        self._forget(call)
        await self.bus.publish(CallEnded(call, "overflow"))
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self._unpark(call)
            await self._goodbye(channel_id, prompt)
        await self.dispatch()

    async def _goodbye(self, channel_id: str, prompt: str) -> None:
        """Plays a last prompt to a customer the ACD let go of, then hangs up."""
        playback_id = f"acd-bye-{uuid.uuid4().hex}"
        self._goodbyes[playback_id] = channel_id
        try:
            await self.control.play(channel_id, self.prompts.media(prompt), playback_id)
        except AriError:
            self._goodbyes.pop(playback_id, None)
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)

    async def playback_finished(self, playback_id: str) -> None:
        channel_id = self._goodbyes.pop(playback_id, None)
        if channel_id is not None:
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return
        for call in self.calls.values():
            if call.playback_id == playback_id:
                call.playback_id = None

    # -- callbacks -----------------------------------------------------------------------------------

    # A CALLBACK_WAITING call is offered like any other; when the agent answers, _agent_leg_answered
    # dials the customer (Direction.CALLBACK), and the wait ends when the customer answers.

    async def _callback_requested(self, call: AcdCall) -> None:
        """The caller keeps their place without holding on: the call waits on as a callback."""
        assert call.channel_id is not None
        channel_id = call.channel_id
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        self.channels.pop(channel_id, None)
        self._cancel_timer("announce", call.record_id)
        self._cancel_timer("maxwait", call.record_id)
        with contextlib.suppress(AriNotFound):
            await self._unpark(call)
        call.channel_id = None
        call.direction = Direction.CALLBACK
        call.state = CallState.CALLBACK_WAITING
        self._add_callback(call, "requested")
        self.recorder.call_updated(call.record_id, direction=Direction.CALLBACK.value)
        self.recorder.destination(call, "C", "requested", self.timers.now())
        metrics.ACD_CALLS.labels(call.queue, "callback_requested").inc()
        self.notify()
        await self._goodbye(channel_id, "queue-callback-ok")
        await self.dispatch()

    def _add_callback(self, call: AcdCall, reason: str) -> None:
        if not call.number or not NUMBER_RE.match(call.number):
            return  # anonymous: nobody to call back
        now = self.timers.now()
        entry = self.callbacks.get(call.number)
        if entry is None:
            entry = {"id": call.number, "number": call.number, "name": call.name, "queue": call.queue,
                     "reason": reason, "count": 0, "last_at": now.isoformat()}
            self.callbacks[call.number] = entry
        entry["count"] += 1
        entry.update(reason=reason, last_at=now.isoformat(), name=call.name or entry["name"],
                     queue=call.queue or entry["queue"])
        self.recorder.callback(call.number, call.name, call.queue, reason, call.record_id, now)
        self.notify()

    def _close_callback(self, number: str, status: str, user_id: int | None) -> None:
        if self.callbacks.pop(number, None) is not None:
            self.recorder.callback_closed(number, status, user_id, self.timers.now())
            self.notify()

    def close_callback(self, number: str, user_id: int | None) -> None:
        """The dialer reached a number from the callback list: it leaves the list."""
        self._close_callback(number, "done", user_id)

    async def callback_call(self, user_id: int, number: str) -> None:
        if number not in self.callbacks:
            raise ActionRefused("That callback is no longer on the list.", 404)
        call = await self.dial(user_id, number)
        call.extra["callback"] = True  # a call back of a missed call (its ticket hears of it)

    async def callback_remove(self, user_id: int, number: str) -> None:
        if number not in self.callbacks:
            raise ActionRefused("That callback is no longer on the list.", 404)
        self._close_callback(number, "removed", user_id)
