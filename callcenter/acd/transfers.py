"""The agent's call control (TEL-3): click-to-call, hold, hang-up, blind and attended transfers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid

from callcenter.acd.core import (
    ACD_ARG,
    NUMBER_RE,
    AcdCore,
    format_caller_id,
)
from callcenter.acd.events import OutboundCallStarted
from callcenter.acd.model import (
    AcdCall,
    Agent,
    AgentState,
    Attempt,
    CallState,
    CustomerCard,
    Direction,
)
from callcenter.errors import ActionRefused, AriError, AriNotFound

log = logging.getLogger(__name__)


class Transfers(AcdCore):
    # -- click-to-call, hold, hang-up ----------------------------------------------------------------

    async def dial(self, user_id: int, number: str, *, campaign: str | None = None, card: CustomerCard | None = None,
                   caller_id: str | None = None, trunk: str | None = None, ticket_id: int | None = None,
                   external_id: str | None = None) -> AcdCall:
        """Click-to-call: the agent's phone rings first; when they pick up, the number is dialled. A preview
        campaign's call says so (``campaign``, the contact's ``card``, the campaign's caller ID and trunk)."""
        agent = self._agent(user_id)
        number = re.sub(r"[\s()./-]", "", number)
        if not NUMBER_RE.match(number):
            raise ActionRefused("Enter a phone number (digits, optionally starting with +).")
        if not agent.logged_in:
            raise ActionRefused("Log in first.")
        if agent.calls or agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            raise ActionRefused("Finish the current call first.")
        if number == agent.extension:
            raise ActionRefused("That is your own extension.")
        session = self.sessions.of(agent)
        if session is not None and not session.up:
            raise ActionRefused("Your phone is being called for your session: answer it first.")
        now = self.timers.now()
        direction = Direction.OUTBOUND
        call = AcdCall(None, direction, None, number, self.callbacks.get(number, {}).get("name", ""),
                       entered_at=now, state=CallState.RINGING, state_since=now, campaign=campaign, card=card,
                       dial_caller_id=caller_id, trunk=trunk)
        if agent.state is AgentState.PAUSED:
            agent.resume_pause = agent.reason
        self.calls[call.record_id] = call
        self.recorder.call_started(call)
        channel_id = session.channel_id if session is not None else f"acd-{uuid.uuid4().hex[:20]}"
        attempt = Attempt(call.next_attempt_seq(), agent, channel_id, now, purpose="agent-leg")
        call.ringing[attempt.channel_id] = attempt
        call.agent = agent
        self._track(attempt.channel_id, "ring", call, attempt)
        agent.calls.append(call)
        self._set_state(agent, AgentState.ON_CALL, "outbound", f"calls {number}")
        self.recorder.attempt_started(call, attempt)
        if ticket_id is not None:
            call.extra["ticket_id"] = ticket_id
        if external_id is not None:  # an integration's own id of the call (API click-to-call): in its webhooks
            call.extra["external_id"] = external_id
        await self.bus.publish(OutboundCallStarted(call, agent))
        if self.card_lookup is not None and card is None:
            asyncio.get_running_loop().create_task(self._load_card(call))
        if session is not None:  # the agent's line is open already: the number is dialled at once
            await self._agent_leg_answered(call, attempt)
            return call
        try:
            await self.control.originate(attempt.channel_id, f"PJSIP/{agent.extension}", format_caller_id("", number),
                                         self.dial_timeout, [ACD_ARG, call.record_id])
        except AriError as exc:
            log.warning("click-to-call: ringing %s failed: %s", agent.extension, exc)
            self.channels.pop(attempt.channel_id, None)
            call.ringing.clear()
            agent.calls.remove(call)
            await self._end_call(call, outcome="failed", agent_left=True)
            self._settle(agent, "click-to-call failed")
            raise ActionRefused("Your phone could not be rung: is it registered?") from None
        self._set_timer("ring", attempt.channel_id, self.dial_timeout,
                        lambda: self._ring_timeout_over(attempt))
        return call

    async def _linked(self, call: AcdCall) -> None:
        """Waits (briefly) until a call being connected has both parties in its bridge."""
        if call.linking is not None and not call.linking.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.linking.wait(), 5)

    async def hold(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        await self._linked(call)
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONNECTED or call.channel_id is None or call.bridge_id is None:
            raise ActionRefused("Only a connected call can be held.")
        call.state, call.state_since = CallState.HELD, self.timers.now()
        await self.control.remove_from_bridge(call.bridge_id, call.channel_id)
        await self.control.start_moh(call.channel_id, "default")
        self.notify()

    async def unhold(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.HELD or call.channel_id is None or call.bridge_id is None:
            raise ActionRefused("The call is not on hold.")
        call.state, call.state_since = CallState.CONNECTED, self.timers.now()
        await self.control.stop_moh(call.channel_id)
        await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()

    async def hangup(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.channel_id:
            channel_id = call.channel_id
            self.channels.pop(channel_id, None)
            call.channel_id = None
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
        await self._end_call(call)

    # -- transfers -----------------------------------------------------------------------------------

    async def transfer(self, user_id: int, mode: str, kind: str, target: str) -> None:
        _agent, call = self._own_call(user_id)
        await self._linked(call)
        agent, call = self._own_call(user_id)
        if call.state is not CallState.CONNECTED and not (call.state is CallState.HELD and mode == "blind"):
            raise ActionRefused("Only a connected call can be transferred.")
        if call.channel_id is None:
            raise ActionRefused("The customer has left.")
        if mode not in ("blind", "attended"):
            raise ActionRefused("Transfer mode is blind or attended.")
        if kind == "agent":
            other = self.agent_by_extension(target) or self.agents.get(int(target) if target.isdigit() else -1)
            if other is None or other is agent:
                raise ActionRefused(f"No other agent {target}.")
            if not self._available(other):
                raise ActionRefused(f"{other.name} is not available ({other.state.value.replace('_', ' ')}).")
            if mode == "attended":
                await self._consult(call, agent, other)
            else:
                await self._blind_to_agent(call, agent, other)
        elif mode == "attended":
            raise ActionRefused("Attended transfer goes to an agent; use blind for a queue or an IVR flow.")
        elif kind == "queue":
            if target not in self.queues:
                raise ActionRefused(f"No queue {target}.")
            await self._detach_agent(call, agent)
            await self._move_to_queue(call, target, "transferred")
        elif kind == "ivr":
            await self._detach_agent(call, agent)
            await self._to_ivr(call, target, "transferred")
        else:
            raise ActionRefused("Transfer to an agent, a queue or an IVR flow.")
        self.recorder.agent_state(agent, agent.state, self.timers.now(),
                                  f"transferred call {call.record_id} ({mode}) to {kind} {target}")

    async def _detach_agent(self, call: AcdCall, agent: Agent) -> None:
        """The transferring agent leaves the call (and wraps up); the customer stays with the ACD."""
        assert call.channel_id is not None
        if call.agent_channel:
            self.channels.pop(call.agent_channel, None)
            await self._let_go_leg(call.agent_channel)
        if call.bridge_id:
            with contextlib.suppress(AriError):
                await self.control.destroy_bridge(call.bridge_id)
        if call.state is CallState.HELD:
            with contextlib.suppress(AriError):
                await self.control.stop_moh(call.channel_id)
        call.agent_channel = call.bridge_id = None
        call.agent = None
        if call in agent.calls:
            agent.calls.remove(call)
        self._start_wrapup(agent, call)
        await self._finish_leg(call, "transferred")

    async def _blind_to_agent(self, call: AcdCall, agent: Agent, other: Agent) -> None:
        await self._detach_agent(call, agent)
        call.state, call.state_since, call.target_agent = CallState.WAITING, self.timers.now(), other
        call.tried.clear()
        await self._park(call)
        await self.dispatch()

    async def _consult(self, call: AcdCall, agent: Agent, other: Agent) -> None:
        assert call.channel_id is not None and call.bridge_id is not None
        now = self.timers.now()
        call.state, call.state_since = CallState.CONSULTING, now
        await self.control.remove_from_bridge(call.bridge_id, call.channel_id)
        await self.control.start_moh(call.channel_id, "default")
        other_session = self.sessions.of(other)
        channel_id = other_session.channel_id if other_session is not None else f"acd-{uuid.uuid4().hex[:20]}"
        attempt = Attempt(call.next_attempt_seq(), other, channel_id, now, purpose="consult")
        call.consult = attempt
        self._track(attempt.channel_id, "ring", call, attempt)
        other.calls.append(call)
        self._set_state(other, AgentState.RINGING, "", f"consulted by {agent.extension}")
        self.recorder.attempt_started(call, attempt)
        if self.sessions.up(other):
            await self._consult_answered(call, attempt)
            return
        self._set_timer("ring", attempt.channel_id, self._ring_timeout(call),
                        lambda: self._ring_timeout_over(attempt))
        try:
            await self.control.originate(attempt.channel_id, f"PJSIP/{other.extension}",
                                         format_caller_id(agent.name, agent.extension), self._ring_timeout(call) + 5,
                                         [ACD_ARG, call.record_id], originator=call.channel_id)
        except AriError:
            await self._attempt_over(attempt, "failed")
        self.notify()

    async def _consult_answered(self, call: AcdCall, attempt: Attempt) -> None:
        now = self.timers.now()
        if call.state is not CallState.CONSULTING or call.bridge_id is None:
            await self._attempt_over(attempt, "caller_gone", hang_up=True)
            return
        self._take_answer(call, attempt, now, "consult")
        call.consult_channel = attempt.channel_id
        attempt.agent.calls_today += 1
        self._set_state(attempt.agent, AgentState.ON_CALL, "", f"consultation on call {call.record_id}")
        with contextlib.suppress(AriNotFound):
            await self._bridge_agent_leg(call.bridge_id, attempt.channel_id)
        self.notify()

    async def _consult_failed(self, call: AcdCall, attempt: Attempt) -> None:
        other = attempt.agent
        call.consult = None
        if other.state is AgentState.RINGING and not other.calls:
            self._settle(other, "consultation not answered")
        if call.agent is not None:
            self.messages[call.agent.user_id] = f"{other.name} did not answer; the customer is back with you."
        await self._back_from_consult(call)

    def _consult_agent_free(self, other: Agent) -> None:
        for held in list(other.calls):
            other.calls.remove(held)
        if other.state in (AgentState.RINGING, AgentState.ON_CALL):
            self._settle(other, "consultation over")

    async def _back_from_consult(self, call: AcdCall) -> None:
        if call.state is not CallState.CONSULTING or call.channel_id is None or call.bridge_id is None:
            return
        call.state, call.state_since = CallState.CONNECTED, self.timers.now()
        with contextlib.suppress(AriNotFound):
            await self.control.stop_moh(call.channel_id)
            await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()

    async def _consult_ended(self, call: AcdCall) -> None:
        """The consulted agent hung up: the customer returns to the first agent."""
        if call.consult_channel:
            self.channels.pop(call.consult_channel, None)
        call.consult_channel = None
        if call.consult is not None:
            self._consult_agent_free(call.consult.agent)
            call.consult = None
        await self._back_from_consult(call)

    async def transfer_cancel(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONSULTING or call.consult is None:
            raise ActionRefused("No transfer is in progress.")
        attempt = call.consult
        if call.consult_channel is None:
            await self._attempt_over(attempt, "cancelled", hang_up=True)
            return
        channel = call.consult_channel
        await self._consult_ended(call)
        await self._let_go_leg(channel)

    async def transfer_complete(self, user_id: int) -> None:
        _agent, call = self._own_call(user_id)
        if call.state is not CallState.CONSULTING or call.consult_channel is None:
            raise ActionRefused("The transfer target has not answered yet.")
        await self.transfer_complete_call(call)

    async def transfer_complete_call(self, call: AcdCall) -> None:
        assert call.consult is not None and call.consult_channel is not None and call.channel_id is not None
        agent, other = call.agent, call.consult.agent
        if call.agent_channel:
            channel = call.agent_channel
            self.channels.pop(channel, None)
            await self._let_go_leg(channel)
        now = self.timers.now()
        consult_seq = call.consult.seq
        await self._finish_leg(call, "transferred")
        call.agent, call.agent_channel = other, call.consult_channel
        self._track(call.consult_channel, "agent", call)
        call.consult = None
        call.consult_channel = None
        call.state, call.state_since = CallState.CONNECTED, now
        self.recorder.call_updated(call.record_id, agent_id=other.user_id)
        self.recorder.destination(call, "U", other.extension, now)
        await self._begin_leg(call, other, f"{call.record_id}-{consult_seq}", now)
        if agent is not None:
            if call in agent.calls:
                agent.calls.remove(call)
            self._start_wrapup(agent, call)
        with contextlib.suppress(AriNotFound):
            await self.control.stop_moh(call.channel_id)
            assert call.bridge_id is not None
            await self.control.add_to_bridge(call.bridge_id, call.channel_id)
        self.notify()
