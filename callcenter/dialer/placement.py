"""The dialer's calls (DIA-1, DIA-3, DIA-4): placing them, the answer and the AMD verdict, the 2-second
hand-over of a person to the ACD, the abandon message, machines, and how each call ends.

A due contact is originated through the campaign's trunk. An answered call runs Asterisk's AMD() in the
dialplan when the campaign asks for it and comes back to the app with the verdict. A person is queued
(silently) for the campaign's agents; if no agent is connected within 2 seconds the call is abandoned:
the campaign's message is played and the call hung up, with the timestamps kept as proof. The ACD tells
`connected` and `ended` for the calls it was handed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from callcenter.acd.model import AcdCall, CallState
from callcenter.db.models import DialerAttempt
from callcenter.dialer import store
from callcenter.dialer.state import CampaignRuntime, DialerState, LiveAttempt, customer_card, utc
from callcenter.errors import AriError, AriNotFound

log = logging.getLogger(__name__)

DIALER_ARG = "dialer"
AMD_ARG = "dialer-amd"
AMD_CONTEXT = "dialer-amd"
# A person who answered must have an agent within this many seconds, or the call is abandoned.
CONNECT_WITHIN = 2.0
# Q.850 causes of a call that was not answered.
UNANSWERED = {17: "busy", 21: "busy", 18: "no_answer", 19: "no_answer", 0: "no_answer", 16: "no_answer"}


class DialerControl(Protocol):
    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int,
                        args: list[str], originator: str | None = None) -> None: ...
    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str,
                                   priority: int = 1) -> None: ...
    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...
    async def play(self, channel_id: str, media: list[str] | str, playback_id: str,
                   lang: str | None = None) -> None: ...
    async def subscribe_channel(self, channel_id: str) -> None: ...


class PromptMedia(Protocol):
    def media(self, name: str, lang: str = "en") -> str: ...


class Placement:
    """Places the calls the campaign loop decides on and follows each through Asterisk and the ACD."""

    def __init__(self, state: DialerState, control: DialerControl, prompts: PromptMedia, *,
                 default_trunk: str) -> None:
        self.state = state
        self.control = control
        self.prompts = prompts
        self.default_trunk = default_trunk

    # -- placing calls -------------------------------------------------------------------------------------

    async def place(self, runtime: CampaignRuntime, contact: store.ContactRef) -> None:
        spec = runtime.spec
        attempt = LiveAttempt(uuid.uuid4().hex, spec.name, contact, spec.mode, f"dialer-{uuid.uuid4().hex[:24]}",
                              self.state.clock())
        self.state.track(attempt)
        runtime.placed += 1
        self.state.acd.notify()
        placed_at = datetime.fromtimestamp(attempt.placed, UTC)
        row = {"id": attempt.id, "campaign": spec.name, "contact_id": contact.id, "number": contact.number,
               "mode": spec.mode, "channel_id": attempt.channel_id, "placed_at": placed_at,
               "amd_status": "" if spec.amd else "off", "outcome": ""}
        self.state.writer.add(lambda session: session.add(DialerAttempt(**row)))
        assert attempt.channel_id is not None
        try:
            trunk = spec.trunk or self.default_trunk
            await self.control.originate(attempt.channel_id, f"PJSIP/{contact.number}@{trunk}", spec.caller_id,
                                         spec.ring_seconds, [DIALER_ARG])
        except AriError as exc:
            log.warning("dialer: calling %s failed: %s", contact.number, exc)
            await self.state.finish(attempt, "failed")
            return
        # Asterisk ends an unanswered originate itself; this only catches a lost event.
        self.state.timer(attempt, spec.ring_seconds + 20, lambda: self._ring_lost(attempt))

    async def _ring_lost(self, attempt: LiveAttempt) -> None:
        if attempt.state == "ringing" and attempt.id in self.state.live:
            if attempt.channel_id:
                with contextlib.suppress(AriError):
                    await self.control.hangup(attempt.channel_id)
            await self.state.finish(attempt, "no_answer")

    # -- events from Asterisk ---------------------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.state.by_channel

    async def stasis_start(self, channel_id: str, args: tuple[str, ...]) -> bool:
        """A dialled number answered (``dialer``) or AMD has its verdict (``dialer-amd``); False if not ours."""
        if not args or args[0] not in (DIALER_ARG, AMD_ARG):
            return False
        attempt = self.state.by_channel.get(channel_id)
        if attempt is None or attempt.id not in self.state.live:
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return True
        runtime = self.state.campaigns[attempt.campaign]
        now = self.state.clock()
        if args[0] == DIALER_ARG:
            attempt.answered = now
            self.state.update(attempt, answered_at=utc(now))
            if runtime.spec.amd:
                attempt.state = "amd"
                try:
                    await self.control.subscribe_channel(channel_id)  # its hang-up during AMD reaches us
                    await self.control.continue_in_dialplan(channel_id, AMD_CONTEXT, "s", 1)
                except AriError as exc:
                    log.warning("dialer: AMD could not start on %s (%s); treating the answer as a person",
                                channel_id, exc)
                    await self._person(runtime, attempt, "NOTSURE", "amd-failed")
                else:
                    self.state.timer(attempt, 15, lambda: self._amd_lost(attempt))
            else:
                await self._person(runtime, attempt, "", "")
            return True
        status = args[1] if len(args) > 1 else "NOTSURE"
        cause = args[2] if len(args) > 2 else ""
        if status == "MACHINE":
            await self._machine(runtime, attempt, cause)
        elif status == "HANGUP":
            self.state.update(attempt, amd_status=status, amd_cause=cause[:40])
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
        else:  # HUMAN, and NOTSURE: it may be a person, so they get the 2-second promise
            await self._person(runtime, attempt, status, cause)
        return True

    async def _amd_lost(self, attempt: LiveAttempt) -> None:
        if attempt.state == "amd" and attempt.id in self.state.live:
            log.warning("dialer: no AMD verdict for %s; hanging up", attempt.channel_id)
            if attempt.channel_id:
                with contextlib.suppress(AriError):
                    await self.control.hangup(attempt.channel_id)
            await self.state.finish(attempt, "failed")

    async def _machine(self, runtime: CampaignRuntime, attempt: LiveAttempt, cause: str) -> None:
        now = self.state.clock()
        ring = (attempt.answered or now) - attempt.placed
        runtime.estimates.call_result("machine", ring)
        if attempt.answered is not None:
            runtime.estimates.amd(now - attempt.answered)
        runtime.ledger.machine_detected(now)
        attempt.state, attempt.outcome = "message", "machine"
        self.state.update(attempt, amd_status="MACHINE", amd_cause=cause[:40], outcome="machine")
        assert attempt.channel_id is not None
        if runtime.spec.machine_action == "message":
            await self._play_then_hang_up(attempt, runtime.spec.machine_message)
        else:
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)

    async def _person(self, runtime: CampaignRuntime, attempt: LiveAttempt, amd_status: str, cause: str) -> None:
        """A person is on the line: an agent of the campaign must be talking to them within 2 s."""
        now = self.state.clock()
        attempt.human = now
        attempt.state = "waiting"
        runtime.estimates.call_result("human", (attempt.answered or now) - attempt.placed)
        if amd_status and attempt.answered is not None:
            runtime.estimates.amd(now - attempt.answered)
        values: dict[str, Any] = {"human_at": utc(now)}
        if amd_status:
            values.update(amd_status=amd_status, amd_cause=cause[:40])
        self.state.update(attempt, **values)
        contact = attempt.contact
        card = customer_card(runtime.spec, contact)
        assert attempt.channel_id is not None
        self.state.timer(attempt, CONNECT_WITHIN, lambda: self._deadline(attempt))
        call = await self.state.acd.enqueue(attempt.channel_id, runtime.spec.queue, contact.number, contact.name,
                                      priority=100, answered=True, campaign=runtime.spec.name, card=card,
                                      connect_by=utc(now + CONNECT_WITHIN),
                                      session_only=runtime.spec.agent_line == "session")
        if call is None:
            log.error("dialer: campaign %s's queue %s is gone", runtime.spec.name, runtime.spec.queue)
            return
        call.extra.update(contact_id=contact.id, attempt_id=attempt.id, human=now)
        if call.state is not CallState.ENDED:
            attempt.acd_call_id = call.record_id
            self.state.by_call[call.record_id] = attempt

    async def _deadline(self, attempt: LiveAttempt) -> None:
        """2 seconds after the person answered: no agent yet, so the call is abandoned (DIA-3)."""
        if attempt.state != "waiting" or attempt.acd_call_id is None:
            return
        call = await self.state.acd.withdraw(attempt.acd_call_id)
        if call is None:
            return  # an agent took it in the meantime
        self.state.by_call.pop(attempt.acd_call_id, None)
        runtime = self.state.campaigns[attempt.campaign]
        now = self.state.clock()
        runtime.ledger.abandoned(attempt.human or now)
        attempt.state, attempt.outcome = "message", "abandoned"
        self.state.update(attempt, abandoned_at=utc(now), outcome="abandoned")
        log.info("dialer: %s abandoned (no agent within %.0f s); playing %s", attempt.contact.number, CONNECT_WITHIN,
                 runtime.spec.abandon_message)
        await self._play_then_hang_up(attempt, runtime.spec.abandon_message)

    async def _play_then_hang_up(self, attempt: LiveAttempt, prompt: str) -> None:
        assert attempt.channel_id is not None
        # The person is the dialer's again (the ACD let go of a call nobody took): the message's end and
        # the person's keys come here, not to the ACD (ari/routing.py).
        self.state.claims.take(attempt.channel_id)
        playback_id = f"dialer-{uuid.uuid4().hex[:20]}"
        attempt.playback_id = playback_id
        self.state.playbacks[playback_id] = attempt
        try:
            await self.control.play(attempt.channel_id, self.prompts.media(prompt), playback_id)
        except AriError as exc:
            if not isinstance(exc, AriNotFound):
                log.warning("dialer: playing %s to %s failed: %s", prompt, attempt.contact.number, exc)
            self.state.playbacks.pop(playback_id, None)
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)
            return
        self.state.update(attempt, message_at=utc(self.state.clock()))
        self.state.timer(attempt, 60, lambda: self._hang_up(attempt))

    async def _hang_up(self, attempt: LiveAttempt) -> None:
        if attempt.channel_id and attempt.id in self.state.live:
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)

    async def playback_finished(self, playback_id: str) -> bool:
        attempt = self.state.playbacks.pop(playback_id, None)
        if attempt is None:
            return False
        await self._hang_up(attempt)
        return True

    async def channel_destroyed(self, channel_id: str, cause: int) -> None:
        attempt = self.state.by_channel.get(channel_id)
        if attempt is None:
            finished = self.state.cause_awaited.pop(channel_id, None)
            if finished is not None:
                self.state.update_id(finished, hangup_cause=cause)
            return
        if attempt.state == "ringing":
            await self.state.finish(attempt, UNANSWERED.get(cause, "failed"), cause)
        elif attempt.state == "amd":
            await self.state.finish(attempt, "hung_up", cause)
        elif attempt.state == "message":
            await self.state.finish(attempt, attempt.outcome, cause)
        elif attempt.state == "waiting" and attempt.acd_call_id is None:
            await self.state.finish(attempt, "hung_up", cause)
        else:
            # Queued or connected: the ACD ends the call and tells us (``ended``); keep the cause.
            self.state.update(attempt, hangup_cause=cause)

    # -- what the ACD tells us ---------------------------------------------------------------------------------

    async def connected(self, call: AcdCall) -> None:
        attempt = self.state.by_call.get(call.record_id) or self._waiting_on(call)
        if attempt is None:
            return
        now = self.state.clock()
        attempt.state = "connected"
        attempt.agent_id = call.agent.user_id if call.agent else None
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()
            attempt.cancel_timer = None
        attempt.acd_call_id = call.record_id
        self.state.by_call[call.record_id] = attempt
        runtime = self.state.campaigns[attempt.campaign]
        if attempt.mode == "preview":
            attempt.human = now
            runtime.ledger.human_answered(now)
            self.state.update(attempt, answered_at=utc(now), human_at=utc(now))
        elif attempt.human is not None:
            runtime.ledger.human_answered(attempt.human)
        self.state.update(attempt, connected_at=utc(now), agent_id=attempt.agent_id, acd_call_id=call.record_id,
                     outcome="human")
        attempt.outcome = "human"
        number = attempt.contact.fields.get("callback_number")
        if number:
            self.state.acd.close_callback(number, attempt.agent_id)

    def _waiting_on(self, call: AcdCall) -> LiveAttempt | None:
        """The attempt whose customer is this call (connected before ``enqueue`` returned)."""
        if call.channel_id is None:
            return None
        return self.state.by_channel.get(call.channel_id)

    async def ended(self, call: AcdCall) -> None:
        attempt = self.state.by_call.pop(call.record_id, None)
        if attempt is None:
            return
        now = self.state.clock()
        runtime = self.state.campaigns[attempt.campaign]
        if attempt.state == "connected":
            talk = (now - call.answered_at.timestamp()) if call.answered_at else None
            if talk is not None:
                runtime.estimates.talk(talk)
                self.state.update(attempt, talk_seconds=round(talk, 2))
            if call.agent is not None:
                runtime.wrapping[call.agent.user_id] = now
            await self.state.finish(attempt, "human")
        elif attempt.mode == "preview":
            await self.state.finish(attempt, {"answered": "human"}.get(call.outcome, call.outcome or "failed"))
        elif attempt.state == "waiting":
            # The person hung up before an agent came: counted as abandoned, as the regulators would.
            runtime.ledger.abandoned(attempt.human or now)
            self.state.update(attempt, abandoned_at=utc(now))
            await self.state.finish(attempt, "abandoned")
