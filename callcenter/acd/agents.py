"""An agent's states: log-in and -out, pauses (asked, approved, pending), ready, ringing, on a call, wrap-up."""

from __future__ import annotations

import logging
from datetime import timedelta

from callcenter import metrics
from callcenter.acd.core import (
    AcdCore,
)
from callcenter.acd.events import (
    AgentStateChanged,
    CallWrappedUp,
)
from callcenter.acd.model import (
    AGENT_TRANSITIONS,
    AcdCall,
    Agent,
    AgentState,
)
from callcenter.errors import ActionRefused

log = logging.getLogger(__name__)


class AgentStates(AcdCore):
    def _set_state(self, agent: Agent, state: AgentState, reason: str = "", detail: str = "") -> None:
        previous = agent.state
        if state not in AGENT_TRANSITIONS[previous] and state is not previous:
            log.warning("agent %s: unexpected transition %s -> %s", agent.extension, previous, state)
        now = self.timers.now()
        if state is previous and reason == agent.reason:
            return
        agent.state, agent.reason, agent.since = state, reason, now
        if state is AgentState.READY and previous is not AgentState.RINGING:
            # An offer that ended without a miss (another agent took it, the caller left) keeps the agent's
            # place in longest-idle; a miss moves them back (``_attempt_over``).
            agent.idle_since = now
        if state is not AgentState.WRAP_UP:
            agent.wrapup_deadline = None
            self._cancel_timer("wrapup", str(agent.user_id))
        self.recorder.agent_state(agent, previous, now, detail)
        metrics.ACD_AGENT_STATES.labels(state.value).inc()
        self.bus.post(AgentStateChanged(agent, previous, state, reason, detail, now))
        self.notify()

    def _settle(self, agent: Agent, detail: str = "") -> None:
        """The agent has no call and no wrap-up left: ready, or the pause they asked for meanwhile."""
        if agent.state is AgentState.LOGGED_OUT:
            return
        if agent.user_id in self._line_lost:
            self._set_state(agent, AgentState.LOGGED_OUT, "", self._line_lost.pop(agent.user_id))
            return
        if agent.missed_in_row >= self.settings.missed_limit:
            self._set_state(agent, AgentState.PAUSED, "missed",
                            f"{agent.missed_in_row} offered calls in a row not answered")
        elif agent.pending_pause:
            reason, agent.pending_pause = agent.pending_pause, None
            self._set_state(agent, AgentState.PAUSED, reason, detail)
        elif agent.resume_pause:
            reason, agent.resume_pause = agent.resume_pause, None
            self._set_state(agent, AgentState.PAUSED, reason, detail)
        else:
            self._set_state(agent, AgentState.READY, "", detail)

    async def login(self, user_id: int) -> None:
        agent = self._agent(user_id)
        if agent.logged_in:
            raise ActionRefused("You are logged in already.")
        agent.missed_in_row = 0
        self._set_state(agent, AgentState.READY, "", "login")
        await self.dispatch()

    async def logout(self, user_id: int, by: str = "agent") -> None:
        agent = self._agent(user_id)
        if not agent.logged_in:
            raise ActionRefused("You are logged out already.")
        if agent.calls:
            raise ActionRefused("Finish the call first.")
        agent.pending_pause = agent.awaiting_approval = agent.resume_pause = None
        self._set_state(agent, AgentState.LOGGED_OUT, "", f"logout by {by}")
        session = self.sessions.of(agent)
        if session is not None:
            await self.sessions.close(session)
        await self._overflow_unstaffed()

    async def ready(self, user_id: int) -> None:
        agent = self._agent(user_id)
        if agent.state is AgentState.READY:
            return
        if agent.state not in (AgentState.PAUSED, AgentState.WRAP_UP, AgentState.LOGGED_OUT):
            raise ActionRefused("You can go ready when the call ends.")
        agent.missed_in_row = 0
        agent.pending_pause = agent.resume_pause = None
        self._set_state(agent, AgentState.READY, "", "ready")
        await self.dispatch()

    async def pause(self, user_id: int, reason: str) -> None:
        agent = self._agent(user_id)
        if reason not in self.pause_reasons:
            raise ActionRefused(f"Unknown pause reason {reason!r}.")
        if not agent.logged_in:
            raise ActionRefused("Log in first.")
        if self.pause_reasons[reason].needs_approval:
            agent.awaiting_approval, agent.awaiting_since = reason, self.timers.now()
            self.recorder.agent_state(agent, agent.state, self.timers.now(), f"asks for pause {reason}")
            self.notify()
            return
        self._apply_pause(agent, reason)

    def _apply_pause(self, agent: Agent, reason: str, detail: str = "") -> None:
        if agent.calls or agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            agent.pending_pause = reason
            self.notify()
        else:
            agent.missed_in_row = 0
            self._set_state(agent, AgentState.PAUSED, reason, detail)

    async def decide_pause(self, supervisor: str, agent_id: int, approve: bool) -> None:
        agent = self._agent(agent_id)
        reason = agent.awaiting_approval
        if reason is None:
            raise ActionRefused(f"{agent.name} is not waiting for a pause approval.", 404)
        agent.awaiting_approval = agent.awaiting_since = None
        if approve and agent.logged_in:
            self._apply_pause(agent, reason, f"approved by {supervisor}")
        else:
            self.recorder.agent_state(agent, agent.state, self.timers.now(),
                                      f"pause {reason} {'denied' if not approve else 'void'} by {supervisor}")
            self.notify()

    async def toggle_login(self, extension: str) -> str | None:
        """The agent login feature code: logs in (ready) or out; the Asterisk prompt to play."""
        agent = self.agent_by_extension(extension)
        if agent is None:
            return None
        try:
            if agent.logged_in:
                await self.logout(agent.user_id, by="feature code")
                return "agent-loggedoff"
            await self.login(agent.user_id)
        except ActionRefused:
            return "agent-alreadyon"  # on a call: nothing changes
        return "agent-loginok"

    async def wrapup(self, user_id: int, code: str, note: str) -> None:
        agent = self._agent(user_id)
        if code not in self.wrapup_codes:
            raise ActionRefused("Pick a wrap-up code.")
        connected = agent.current if agent.current is not None and agent.current.agent is agent else None
        call = connected or agent.last_call
        if call is None:
            raise ActionRefused("There is no call to wrap up.")
        call.wrapup_code, call.note = code, note.strip()[:2000]
        self.recorder.call_updated(call.record_id, wrapup_code=code, note=call.note)
        await self.bus.publish(CallWrappedUp(call, code, call.campaign))
        if agent.state is AgentState.WRAP_UP and connected is None:
            self._settle(agent, f"wrap-up {code}")
            await self.dispatch()
        self.notify()

    async def _wrapup_over(self, agent: Agent) -> None:
        if agent.state is AgentState.WRAP_UP:
            self._settle(agent, "wrap-up time over")
            await self.dispatch()

    def _start_wrapup(self, agent: Agent, call: AcdCall) -> None:
        agent.last_call = call
        seconds = self.queues[call.queue].spec.wrapup if call.queue in self.queues else self.default_wrapup
        if seconds <= 0:
            self._settle(agent, "call ended")
            return
        self._set_state(agent, AgentState.WRAP_UP, "", f"call {call.record_id}")
        agent.wrapup_deadline = self.timers.now() + timedelta(seconds=seconds)
        self._set_timer("wrapup", str(agent.user_id), seconds, lambda: self._wrapup_over(agent))
