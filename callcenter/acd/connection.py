"""Connection: an agent and a customer put in one bridge (a queue call answered, a click-to-call or a
callback dialled), the agents' kept session lines (``sessions.py``), and the end of a call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from callcenter import metrics
from callcenter.acd.core import (
    ACD_ARG,
    AcdCore,
    format_caller_id,
)
from callcenter.acd.events import (
    AgentLegEnded,
    AgentLegStarted,
    CallConnected,
    CallEnded,
    CallEnding,
    OutboundLegDialled,
)
from callcenter.acd.model import (
    AcdCall,
    Agent,
    AgentLeg,
    AgentState,
    Attempt,
    CallState,
    Direction,
)
from callcenter.acd.sessions import SESSION_ARG, SESSION_RING_SECONDS, AgentSession
from callcenter.errors import AriError, AriNotFound

log = logging.getLogger(__name__)


class Connection(AcdCore):
    # -- agent sessions (sessions.py) ----------------------------------------------------------------

    def session_of(self, user_id: int) -> AgentSession | None:
        agent = self.agents.get(user_id)
        return self.sessions.of(agent) if agent is not None else None

    async def open_session(self, user_id: int, label: str, music: str = "") -> bool:
        """Calls a free agent's phone to keep it connected for ``label`` (a campaign); False if the agent
        cannot take it now (not free, a session already, their phone busy)."""
        agent = self.agents.get(user_id)
        if agent is None or self.sessions.of(agent) is not None or not self._available(agent):
            return False
        session = self.sessions.begin(agent, label, music, self.timers.now())
        self._track(session.channel_id, "session")
        self.recorder.agent_state(agent, agent.state, self.timers.now(), f"session for {label}: calling the phone")
        self.notify()
        try:
            await self.control.originate(session.channel_id, f"PJSIP/{agent.extension}", format_caller_id(label, ""),
                                         SESSION_RING_SECONDS, [ACD_ARG, SESSION_ARG], originator=None)
        except AriError as exc:
            log.warning("agent %s: calling the phone for %s failed: %s", agent.extension, label, exc)
            self.sessions.forget(session)
            self._session_failed(session)
        return True

    async def close_session(self, user_id: int) -> None:
        """No campaign needs the agent's kept line any more: it is hung up once they have no call."""
        agent = self.agents.get(user_id)
        session = self.sessions.of(agent) if agent is not None else None
        if session is None or session.lent or (agent is not None and agent.calls):
            return
        await self.sessions.close(session)
        self.recorder.agent_state(session.agent, session.agent.state, self.timers.now(),
                                  f"session for {session.label} closed")
        self.notify()

    async def _session_answered(self, session: AgentSession) -> None:
        agent = session.agent
        try:
            await self.sessions.answered(session, self.timers.now())
        except AriError as exc:
            log.warning("agent %s: the session could not start: %s", agent.extension, exc)
            await self.sessions.close(session)
            self._session_failed(session)
            return
        self.recorder.agent_state(agent, agent.state, self.timers.now(), f"session for {session.label} connected")
        self.messages.pop(agent.user_id, None)
        self.notify()
        await self.dispatch()

    def _session_failed(self, session: AgentSession) -> None:
        """The line could not be set up (no call to end): the agent leaves at once."""
        self._session_dropped(session, 0)
        self._out_if_line_lost(session.agent)

    def _session_dropped(self, session: AgentSession, cause: int) -> None:
        """The kept line ended without us: the agent leaves (after the call they are on), with a message,
        and is never left ready with no phone."""
        agent = session.agent
        if agent.state is AgentState.LOGGED_OUT:
            return
        what = "did not answer the call" if not session.up else "line was hung up"
        message = (f"Your phone {what} for {session.label} (cause {cause}): you are logged out. "
                   "Log in again to rejoin.")
        self.messages[agent.user_id] = message
        self._line_lost[agent.user_id] = f"session line lost ({session.label}, cause {cause})"
        log.info("agent %s: the session line for %s ended (cause %s)", agent.extension, session.label, cause)

    def _out_if_line_lost(self, agent: Agent) -> None:
        if agent.user_id in self._line_lost and not agent.calls and agent.state is not AgentState.WRAP_UP:
            self._settle(agent, "")
            self.notify()

    async def _let_go_leg(self, channel_id: str) -> None:
        """An agent-side channel leaves a call: a session leg goes back to its agent, any other hangs up."""
        session = self.sessions.leg(channel_id)
        if session is not None:
            await self.sessions.take_back(session)
            return
        with contextlib.suppress(AriError):
            await self.control.hangup(channel_id)

    async def _bridge_agent_leg(self, bridge_id: str, channel_id: str) -> None:
        session = self.sessions.leg(channel_id)
        if session is not None:
            await self.sessions.lend(session, bridge_id)
        else:
            await self.control.add_to_bridge(bridge_id, channel_id)

    # -- connecting ----------------------------------------------------------------------------------

    async def _connect(self, call: AcdCall, attempt: Attempt) -> None:
        agent = attempt.agent
        now = self.timers.now()
        if call.state is not CallState.RINGING or call.channel_id is None:
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
            return
        self._take_answer(call, attempt, now, "agent")
        others = list(call.ringing.values())
        self._cancel_call_timers(call)
        first_answer = call.answered_at is None
        call.state, call.state_since = CallState.CONNECTED, now
        # Connected from now on for the panel: a hold or transfer clicked meanwhile waits for the bridge.
        call.linking = asyncio.Event()
        call.answered_at = call.answered_at or now
        call.agent, call.agent_channel, call.target_agent = agent, attempt.channel_id, None
        agent.missed_in_row = 0
        agent.calls_today += 1
        self._set_state(agent, AgentState.ON_CALL, "", f"call {call.record_id} from {call.number}")
        wait = (now - (call.entered_at or now)).total_seconds()
        with self.recorder.writer.together():
            if first_answer:
                if call.direction is Direction.INBOUND:
                    self._count_answer(call, wait)
                self.recorder.call_updated(call.record_id, answered_at=now, wait_seconds=round(wait, 2),
                                           agent_id=agent.user_id, outcome="answered")
            else:
                self.recorder.call_updated(call.record_id, agent_id=agent.user_id)
            self.recorder.destination(call, "U", agent.extension, now)
            await self._begin_leg(call, agent, f"{call.record_id}-{attempt.seq}", now)
        for other in others:
            # A dialer's person was offered to this agent because the earlier offers were too slow.
            overtaken = call.direction is Direction.DIALER and other.started_at < attempt.started_at
            await self._attempt_over(other, "overtaken" if overtaken else "taken_by_other", hang_up=True)
        customer = call.channel_id

        async def bridge() -> None:
            await self._unpark(call)
            call.bridge_id = f"acd-call-{call.record_id}"
            await self.control.create_bridge(call.bridge_id, "mixing")
            await self.control.add_to_bridge(call.bridge_id, customer)
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
            session = self.sessions.leg(attempt.channel_id)
            if session is not None:
                await self.sessions.beep(session)
        await self._link(call, bridge(), call.campaign if call.direction is Direction.DIALER else None)
        self.notify()

    async def _link(self, call: AcdCall, bridge: Awaitable[None], campaign: str | None) -> None:
        """Puts the customer and the agent in the call's bridge (``bridge``) while a hold or a transfer the
        agent clicked meanwhile waits (``call.linking``), and tells the bus (recording starts before they go
        on). A party who hangs up meanwhile is no failure: its own event ends the call."""
        # The event the answer set up (a click between the answer and here waits on it), else a new one.
        linking = call.linking if call.linking is not None and not call.linking.is_set() else asyncio.Event()
        call.linking = linking
        try:
            try:
                await bridge
            except AriNotFound:
                log.info("call %s: a party left while being connected", call.record_id)
                bridged = False
            else:
                bridged = True
            await self.bus.publish(CallConnected(call, bridged, campaign))
        finally:
            linking.set()

    async def _begin_leg(self, call: AcdCall, agent: Agent, leg_id: str, now: datetime) -> None:
        call.leg = AgentLeg(leg_id, agent, now)
        call.legs.append(call.leg)
        with self.recorder.writer.together():
            await self.bus.publish(AgentLegStarted(call, call.leg))

    async def _finish_leg(self, call: AcdCall, how: str) -> None:
        """The agent talking on ``call`` leaves it (``how``: hangup, transferred)."""
        leg, call.leg = call.leg, None
        if leg is None:
            return
        leg.ended_at, leg.how = self.timers.now(), how
        with self.recorder.writer.together():
            await self.bus.publish(AgentLegEnded(call, leg))

    def _take_answer(self, call: AcdCall, attempt: Attempt, now: datetime, role: str) -> None:
        """An agent's phone answered this offer: it stops ringing and becomes the call's ``role`` channel."""
        self._cancel_timer("ring", attempt.channel_id)
        call.ringing.pop(attempt.channel_id, None)
        attempt.answered, attempt.outcome = True, "answered"
        self.recorder.attempt_ended(call, attempt, now)
        metrics.ACD_ATTEMPTS.labels("answered").inc()
        self._track(attempt.channel_id, role, call)

    async def _agent_leg_answered(self, call: AcdCall, attempt: Attempt) -> None:
        """Click-to-call and callbacks: the agent took their phone; now the customer is dialled."""
        agent = attempt.agent
        now = self.timers.now()
        self._take_answer(call, attempt, now, "agent")
        call.agent, call.agent_channel = agent, attempt.channel_id
        if call.direction is Direction.CALLBACK:
            agent.missed_in_row = 0
            agent.calls_today += 1
            self._set_state(agent, AgentState.ON_CALL, "", f"callback {call.record_id} to {call.number}")
        call.state, call.state_since = CallState.DIALING, now
        call.bridge_id = f"acd-call-{call.record_id}"
        dial_channel = f"acd-{uuid.uuid4().hex[:20]}"
        self._track(dial_channel, "dial", call)
        await self.bus.publish(OutboundLegDialled(call, agent, f"{call.record_id}-{attempt.seq}"))
        # The customer's leg belongs to the agent's call, except a kept session line's: that line is a
        # call of its own (for hours), and the customer's call must keep its own records (docs/cdr.md).
        originator = None if self.sessions.leg(attempt.channel_id) is not None else attempt.channel_id
        try:
            await self.control.create_bridge(call.bridge_id, "mixing")
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
            await self.control.originate(dial_channel, self._endpoint(call.number, call.trunk),
                                         call.dial_caller_id or format_caller_id(agent.name, agent.extension),
                                         self.dial_timeout,
                                         [ACD_ARG, call.record_id], originator=originator)
        except AriError as exc:
            log.warning("dialling %s failed: %s", call.number, exc)
            self.channels.pop(dial_channel, None)
            await self._dial_failed(call, "failed")
            return
        self._set_timer("dial", call.record_id, self.dial_timeout,
                        lambda: self._dial_timeout_over(call, dial_channel))
        self.notify()

    def _endpoint(self, number: str, trunk: str | None = None) -> str:
        if number in self.extensions():
            return f"PJSIP/{number}"
        return f"PJSIP/{number}@{trunk or self.settings.trunk}"

    async def _dial_timeout_over(self, call: AcdCall, dial_channel: str) -> None:
        if self.channels.pop(dial_channel, None) is not None:
            with contextlib.suppress(AriError):
                await self.control.hangup(dial_channel)
            await self._dial_failed(call, "no_answer")

    async def _customer_answered(self, call: AcdCall, channel_id: str) -> None:
        now = self.timers.now()
        self._cancel_timer("dial", call.record_id)
        call.channel_id = channel_id
        self._track(channel_id, "customer", call)
        call.state, call.state_since, call.answered_at = CallState.CONNECTED, now, now
        call.linking = asyncio.Event()  # as in _connect: hold and transfer wait for the bridge
        values: dict[str, Any] = {"answered_at": now, "outcome": "answered", "channel_id": channel_id,
                                  "agent_id": call.agent.user_id if call.agent else None}
        if call.direction is Direction.CALLBACK:
            wait = (now - (call.entered_at or now)).total_seconds()
            values["wait_seconds"] = round(wait, 2)
            self._count_answer(call, wait)
        with self.recorder.writer.together():
            self.recorder.call_updated(call.record_id, **values)
            if call.agent is not None:
                self.recorder.destination(call, "U", call.agent.extension, now)
                await self._begin_leg(call, call.agent, f"{call.record_id}-{call.attempt_seq}", now)
        if call.number in self.callbacks:
            self._close_callback(call.number, "done", call.agent.user_id if call.agent else None)
        assert call.bridge_id is not None
        await self._link(call, self.control.add_to_bridge(call.bridge_id, channel_id), call.campaign)
        self.notify()

    async def _dial_failed(self, call: AcdCall, outcome: str) -> None:
        """The customer of a click-to-call or callback did not answer: the agent is told and freed."""
        if call.agent is not None:
            self.messages[call.agent.user_id] = f"{call.number} did not answer ({outcome.replace('_', ' ')})."
        if call.number and call.direction is Direction.CALLBACK:
            self._add_callback(call, "callback_failed")
        await self._end_call(call, outcome=outcome)

    # -- ending --------------------------------------------------------------------------------------

    async def customer_gone(self, channel_id: str) -> None:
        entry = self.channels.pop(channel_id, None)
        if entry is None:
            return
        call = entry.call
        if call.state in (CallState.WAITING, CallState.RINGING):
            await self._abandoned(call)
        elif call.state is not CallState.ENDED:
            call.channel_id = None
            await self._end_call(call)

    async def _abandoned(self, call: AcdCall) -> None:
        now = self.timers.now()
        self._cancel_call_timers(call)
        rang = call.attempt_seq > 0
        call.state, call.outcome = CallState.ENDED, "abandoned"
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        wait = (now - (call.entered_at or now)).total_seconds()
        runtime = self.queues.get(call.queue or "")
        dialer = call.direction is Direction.DIALER
        if runtime is not None and not dialer:
            runtime.figures.abandoned += 1
            metrics.ACD_CALLS.labels(call.queue, "abandoned").inc()
        with self.recorder.writer.together():
            self.recorder.call_updated(call.record_id, ended_at=now, outcome="abandoned",
                                       wait_seconds=round(wait, 2))
            if not dialer:  # the dialer's own retry rules call the customer again
                self._add_callback(call, "missed" if rang else "abandoned")
            self._forget(call)
            await self.bus.publish(CallEnded(call, "abandoned", call.campaign if dialer else None))
        await self.dispatch()

    async def withdraw(self, record_id: str) -> AcdCall | None:
        """The dialer takes back a customer no agent took in time (the 2-second rule): the offers stop,
        the ACD lets go of the channel, and the record says abandoned. None if the call is no longer
        waiting (an agent got it a moment ago)."""
        call = self.calls.get(record_id)
        if call is None or call.state not in (CallState.WAITING, CallState.RINGING):
            return None
        now = self.timers.now()
        call.state = CallState.ENDED
        self._cancel_call_timers(call)
        wait = (now - (call.entered_at or now)).total_seconds()
        self.recorder.call_updated(call.record_id, ended_at=now, outcome="abandoned", wait_seconds=round(wait, 2))
        if call.channel_id is not None:
            self.channels.pop(call.channel_id, None)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "withdrawn", hang_up=True)
        self._forget(call)
        call.outcome = "abandoned"
        # Not the campaign's event: the dialer books the withdrawn call itself.
        await self.bus.publish(CallEnded(call, "abandoned"))
        await self.dispatch()
        return call

    async def _agent_hung_up(self, call: AcdCall) -> None:
        if call.state is CallState.CONSULTING and call.consult_channel is not None:
            await self.transfer_complete_call(call)  # as a phone's attended transfer does
            return
        if call.agent_channel:
            self.channels.pop(call.agent_channel, None)
        call.agent_channel = None
        await self._end_call(call)

    async def _end_call(self, call: AcdCall, outcome: str | None = None, agent_left: bool = False) -> None:
        """Ends a call that reached an agent (or was dialled for one): every channel and the bridge go,
        the agent wraps up."""
        if call.state is CallState.ENDED:
            return
        now = self.timers.now()
        previous = call.state
        call.state = CallState.ENDED
        call.outcome = outcome or ("answered" if call.answered_at else "")
        await self.bus.publish(CallEnding(call))
        self._cancel_call_timers(call)
        for attempt in list(call.ringing.values()):
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
        channels = [c for c in (call.channel_id, call.agent_channel, call.consult_channel) if c]
        channels += [cid for cid, entry in self.channels.items() if entry.call is call]
        for channel_id in dict.fromkeys(channels):
            entry = self.channels.pop(channel_id, None)
            if entry is not None and entry.role == "consult" and call.consult is not None:
                self._consult_agent_free(call.consult.agent)
            await self._let_go_leg(channel_id)
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await self.control.destroy_bridge(call.bridge_id)
        talk = (now - call.answered_at).total_seconds() if call.answered_at else None
        values: dict[str, Any] = {"ended_at": now}
        if talk is not None:
            values["talk_seconds"] = round(talk, 2)
            runtime = self.queues.get(call.queue or "") if call.direction is not Direction.DIALER else None
            if runtime is not None:
                runtime.figures.talk_total += talk
                runtime.figures.talked += 1
                runtime.handle_times.append(talk + runtime.spec.wrapup)
        if outcome:
            values["outcome"] = outcome
        with self.recorder.writer.together():
            self.recorder.call_updated(call.record_id, **values)
            self._forget(call)
            agent = call.agent
            if agent is not None and call in agent.calls:
                agent.calls.remove(call)
                if not agent_left and previous is not CallState.RINGING:
                    self._start_wrapup(agent, call)
            await self._finish_leg(call, "hangup")
            await self.bus.publish(CallEnded(call, call.outcome, call.campaign))
        await self.dispatch()
