"""Delivery: callers enter a queue and wait (parked with music, announced), and free agents are offered
the calls (dispatch, ringing, offers that end untaken)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from callcenter import metrics
from callcenter.acd import strategies
from callcenter.acd.bridges import create_or_adopt
from callcenter.acd.core import (
    ACD_ARG,
    MISS_OUTCOMES,
    WIDEN_AFTER,
    WIDEN_RING_MARGIN,
    AcdCore,
    format_caller_id,
    queue_rank,
)
from callcenter.acd.events import (
    CallOffered,
    CallQueued,
)
from callcenter.acd.model import (
    AcdCall,
    Agent,
    AgentState,
    Attempt,
    CallState,
    CustomerCard,
    Direction,
)
from callcenter.errors import AriError, AriNotFound

log = logging.getLogger(__name__)


class Delivery(AcdCore):
    # -- entering a queue, waiting -------------------------------------------------------------------

    async def enqueue(self, channel_id: str, queue: str, number: str, name: str = "", did: str = "",
                      priority: int = 0, answered: bool = False, parent: AcdCall | None = None,
                      campaign: str | None = None, card: CustomerCard | None = None,
                      connect_by: datetime | None = None, session_only: bool = False) -> AcdCall | None:
        """A caller (from a DID, the IVR or a transfer) waits in ``queue``; None if there is no such queue.

        With a ``campaign`` the customer is one the dialer reached: they wait in silence (a person who
        answered a call hears no music), nothing is counted in the queue's inbound figures, and the dialer
        decides when they stop waiting (``withdraw``, at ``connect_by``). ``session_only``: only agents
        with a kept line (``sessions.py``) are offered the call."""
        runtime = self.queues.get(queue)
        if runtime is None:
            return None
        self._roll_day()
        now = self.timers.now()
        direction = Direction.DIALER if campaign else Direction.INBOUND
        call = AcdCall(channel_id, direction, queue, number, name, did, priority, entered_at=now,
                       state_since=now, parent_id=parent.record_id if parent else None, order=next(self._order),
                       campaign=campaign, card=card, connect_by=connect_by, session_only=session_only,
                       # A caller's whole call is their channel's: the same through an IVR and back.
                       session_id=channel_id)
        if parent is not None:
            call.card, call.destination_seq, call.session_id = parent.card, 0, parent.session_id
        # The queue when this caller arrived, themself included (queue_call CSV: callers, agents).
        waiting = sum(1 for c in self.calls.values() if c.queue == queue and c.state is CallState.WAITING)
        call.queue_callers = waiting + 1
        call.queue_agents = sum(1 for a in self.agents.values() if a.logged_in and queue in a.skills)
        self.calls[call.record_id] = call
        self._track(channel_id, "customer", call)
        self.recorder.call_started(call)
        self.recorder.destination(call, "Q", queue, now)
        if call.direction is Direction.DIALER:
            self.notify()
            await self.bus.publish(CallQueued(call))
            await self.dispatch()
            return call
        runtime.figures.offered += 1
        metrics.ACD_CALLS.labels(queue, "offered").inc()
        self.notify()
        await self.bus.publish(CallQueued(call))
        if self.card_lookup is not None and call.card is None:
            asyncio.get_running_loop().create_task(self._load_card(call))
        try:
            if not answered:
                await self.control.answer(channel_id)
            await self._park(call)
        except AriNotFound:
            await self.customer_gone(channel_id)
            return call
        if runtime.spec.max_wait > 0:
            self._set_timer("maxwait", call.record_id, runtime.spec.max_wait, lambda: self._max_wait(call))
        if runtime.spec.announce_every > 0:
            self._set_timer("announce", call.record_id, min(5, runtime.spec.announce_every),
                            lambda: self._announce(call))
        if not self._staffed(queue) and runtime.spec.overflow:
            await self._overflow(call, "no agent logged in")
            return call
        await self.dispatch()
        return call

    async def _load_card(self, call: AcdCall) -> None:
        assert self.card_lookup is not None
        try:
            call.card = await self.card_lookup(call.number)
        except Exception as exc:  # the card is a nicety; the call goes on without it
            log.warning("customer card for %s failed: %s", call.number, exc)
            return
        self.notify()

    def _staffed(self, queue: str) -> bool:
        return any(a.logged_in and queue in a.skills for a in self.agents.values())

    async def _park(self, call: AcdCall) -> None:
        """The customer hears music: in the queue's holding bridge, or alone when no queue."""
        assert call.channel_id is not None
        call.parked = True
        runtime = self.queues.get(call.queue or "")
        if runtime is None:
            await self.control.start_moh(call.channel_id, "default")
            return
        if not runtime.bridge_ready:
            runtime.bridge_ready = True
            try:
                await create_or_adopt(self.control, runtime.hold_bridge, "holding")
                await self.control.bridge_moh(runtime.hold_bridge, runtime.spec.moh_class)
            except AriError:
                runtime.bridge_ready = False
                raise
        try:
            await self.control.add_to_bridge(runtime.hold_bridge, call.channel_id)
        except AriError as exc:
            if isinstance(exc, AriNotFound) or exc.status < 400 or exc.status >= 500:
                raise
            # A caller adopted after a controller restart may still be in the holding bridge.
            log.info("call %s: %s; the caller stays where it is", call.record_id, exc.message)

    async def _unpark(self, call: AcdCall) -> None:
        if call.channel_id is None or not call.parked:
            await self._stop_playback(call)
            return
        call.parked = False
        runtime = self.queues.get(call.queue or "")
        with contextlib.suppress(AriNotFound):
            if runtime is None:
                await self.control.stop_moh(call.channel_id)
            else:
                await self.control.remove_from_bridge(runtime.hold_bridge, call.channel_id)
        await self._stop_playback(call)

    async def _stop_playback(self, call: AcdCall) -> None:
        if call.playback_id:
            playback, call.playback_id = call.playback_id, None
            with contextlib.suppress(AriError):
                await self.control.stop_playback(playback)

    async def _announce(self, call: AcdCall) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.state not in (CallState.WAITING, CallState.RINGING) or not call.channel_id:
            return
        position = self.position(call)
        media = [self.prompts.media("queue-position"), f"number:{position}"]
        wait = self.estimated_wait(runtime.spec.name, position)
        if wait is not None:
            minutes = round(wait / 60)
            media += [self.prompts.media("queue-under-minute")] if minutes < 1 else \
                [self.prompts.media("queue-wait"), f"number:{minutes}", self.prompts.media("queue-minutes")]
        media.append(self.prompts.media("queue-callback-offer"))
        await self._stop_playback(call)
        call.playback_id = f"acd-ann-{uuid.uuid4().hex}"
        try:
            await self.control.play(call.channel_id, media, call.playback_id)
            metrics.ACD_ANNOUNCEMENTS.inc()
        except AriError as exc:
            log.info("announcement to %s failed: %s", call.channel_id, exc)
        self._set_timer("announce", call.record_id, runtime.spec.announce_every, lambda: self._announce(call))

    # -- offers --------------------------------------------------------------------------------------

    def available(self, agent: Agent) -> bool:
        """Free, and their phone can take a call now."""
        return self._available(agent)

    def _available(self, agent: Agent) -> bool:
        if not agent.free:
            return False
        session = self.sessions.of(agent)
        if session is not None:
            # The phone is busy with the session leg itself: what counts is that the leg is up and idle.
            return session.up and not session.lent
        if self.phone_state is None:
            return True
        # An unregistered or busy phone (a direct call) would only ring out or refuse.
        return self.phone_state(agent.extension) in ("NOT_INUSE", "UNKNOWN", "")

    async def dispatch(self) -> None:
        """Offers waiting calls to free agents: the highest priority, then the longest waiting first,
        whatever queue they are in (a callback keeps the place its caller had).

        A person the dialer reached is already on the line with a 2-second promise: while their offer
        rings one agent, another free agent is offered them too (a session agent is connected at once),
        after every caller nobody is ringing yet has had their turn."""
        now = self.timers.now()
        waiting = sorted((c for c in self.calls.values()
                          if (c.state in (CallState.WAITING, CallState.CALLBACK_WAITING) and not c.ringing)
                          or (c.state is CallState.RINGING and c.direction is Direction.DIALER)),
                         key=lambda c: (bool(c.ringing), queue_rank(c)))
        offers: list[tuple[AcdCall, list[Agent]]] = []
        for call in waiting:
            free = [a for a in self.agents.values() if self._available(a)]
            if not free:
                break
            if call.session_only:
                free = [a for a in free if self.sessions.up(a)]
            if call.ringing:
                left = (call.connect_by - now).total_seconds() if call.connect_by else 0.0
                rung = (now - max(a.started_at for a in call.ringing.values())).total_seconds()
                free = [a for a in free if left > 0 and (
                    self.sessions.up(a) or (left >= WIDEN_RING_MARGIN and rung >= WIDEN_AFTER))]
                if not free:
                    continue
            if call.target_agent is not None:
                chosen = [call.target_agent] if call.target_agent in free else []
            else:
                runtime = self.queues.get(call.queue or "")
                if runtime is None:
                    continue
                chosen = strategies.choose(runtime.spec.strategy, runtime.spec.name, free, call.tried,
                                           self.last_offered)
            if chosen:
                self._reserve(call, chosen)
                offers.append((call, chosen))
        for call, chosen in offers:
            await self._ring(call, chosen)

    def _reserve(self, call: AcdCall, agents: list[Agent]) -> None:
        now = self.timers.now()
        ring_timeout = self._ring_timeout(call)
        for agent in agents:
            session = self.sessions.of(agent)
            # A session agent's offer is their kept leg: it is connected at once, nothing rings.
            channel_id = session.channel_id if session is not None else f"acd-{uuid.uuid4().hex[:20]}"
            attempt = Attempt(call.next_attempt_seq(), agent, channel_id, now)
            call.ringing[attempt.channel_id] = attempt
            self._track(attempt.channel_id, "ring", call, attempt)
            agent.calls.append(call)
            if call.queue:
                self.last_offered[call.queue] = int(agent.extension)
            self._set_state(agent, AgentState.RINGING, "", f"offered call {call.record_id}")
            self.recorder.attempt_started(call, attempt)
            if session is None:
                self._set_timer("ring", attempt.channel_id, ring_timeout, self._ring_timer(attempt))
                if call.direction is Direction.DIALER:
                    self._set_timer("widen", call.record_id, WIDEN_AFTER, self.dispatch)
            trigger = max(agent.idle_since or now, call.state_since or call.entered_at or now)
            metrics.ACD_OFFER_DELAY.observe(max(0.0, (now - trigger).total_seconds()))
        if call.state is CallState.WAITING:
            call.state = CallState.RINGING

    def _ring_timer(self, attempt: Attempt) -> Callable[[], Awaitable[None]]:
        return lambda: self._ring_timeout_over(attempt)

    def _ring_timeout(self, call: AcdCall) -> int:
        runtime = self.queues.get(call.queue or "")
        return runtime.spec.ring_timeout if runtime else 20

    async def _ring(self, call: AcdCall, agents: list[Agent]) -> None:
        caller_id = format_caller_id(call.name, call.number)
        for agent in agents:
            attempt = next((a for a in call.ringing.values() if a.agent is agent), None)
            if attempt is None:
                continue
            await self.bus.publish(CallOffered(call, agent, attempt.channel_id))
            if self.sessions.leg(attempt.channel_id) is not None:
                await self._connect(call, attempt)
                continue
            try:
                await self.control.originate(attempt.channel_id, f"PJSIP/{agent.extension}", caller_id,
                                             self._ring_timeout(call) + 5, [ACD_ARG, call.record_id],
                                             originator=call.channel_id)
            except AriError as exc:
                log.warning("ringing agent %s failed: %s", agent.extension, exc)
                await self._attempt_over(attempt, "failed")

    async def _ring_timeout_over(self, attempt: Attempt) -> None:
        entry = self.channels.get(attempt.channel_id)
        if entry is None or entry.role != "ring":
            return
        await self._attempt_over(attempt, "no_answer", hang_up=True)

    async def _attempt_over(self, attempt: Attempt, outcome: str, hang_up: bool = False) -> None:
        """An offer ended without the agent taking the call."""
        entry = self.channels.pop(attempt.channel_id, None)
        if entry is None:
            return
        call, agent = entry.call, attempt.agent
        self._cancel_timer("ring", attempt.channel_id)
        call.ringing.pop(attempt.channel_id, None)
        attempt.outcome = outcome
        self.recorder.attempt_ended(call, attempt, self.timers.now())
        metrics.ACD_ATTEMPTS.labels(outcome).inc()
        if call in agent.calls:
            agent.calls.remove(call)
        if hang_up:
            await self._let_go_leg(attempt.channel_id)
        if attempt.purpose == "consult":
            await self._consult_failed(call, attempt)
            return
        if not call.answered_like_inbound and call.state is CallState.RINGING:
            # The agent did not pick up their own click-to-call or callback leg.
            if call.direction is Direction.OUTBOUND:
                await self._end_call(call, outcome="failed", agent_left=True)
                self._settle(agent, f"outbound call not picked up ({outcome})")
                await self.dispatch()
                return
        if outcome in MISS_OUTCOMES:
            agent.missed_in_row += 1
            call.tried.add(agent.user_id)
            # A missed offer is no claim to the next one: the agent goes to the back of longest-idle.
            agent.idle_since = self.timers.now()
            detail = f"did not take call {call.record_id} ({outcome})"
        else:
            detail = f"offer of call {call.record_id} over ({outcome})"
        if agent.state is AgentState.RINGING and not agent.calls:
            self._settle(agent, detail)
        if call.state is CallState.RINGING and not call.ringing:
            call.state = CallState.WAITING if call.channel_id else CallState.CALLBACK_WAITING
            call.state_since = self.timers.now()
            if call.target_agent is agent:
                await self._target_missed(call)
                return
        self.notify()
        await self.dispatch()

    async def _target_missed(self, call: AcdCall) -> None:
        """A blind transfer to one agent was not taken: back to the queue, else their voicemail."""
        agent, call.target_agent = call.target_agent, None
        if call.queue and call.queue in self.queues:
            await self.dispatch()
            return
        assert agent is not None
        await self._to_voicemail(call, agent.extension)
