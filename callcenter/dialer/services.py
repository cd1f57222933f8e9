"""The outbound dialer (DIA-1..5): runs campaigns over ARI and hands the people it reaches to the ACD.

Every second each running campaign is paced: its pacer (progressive, or predictive from live estimates
and the abandon budget of every window) says how many numbers to dial; due contacts inside their calling
window are taken from the database and originated through the campaign's trunk. An answered call runs
Asterisk's AMD() in the dialplan when the campaign asks for it and comes back to the app with the verdict.
A person is queued (silently) for the campaign's agents; if no agent is connected within 2 seconds the
call is abandoned: the campaign's message is played and the call hung up, with the timestamps kept as
proof. Outcomes and the agents' wrap-up codes decide when each contact is called again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update

from callcenter.acd.model import AcdCall, Agent, AgentState, CallState, CustomerCard, Direction
from callcenter.acd.services import AcdService, LoopTimers, Timers
from callcenter.db.engine import Database
from callcenter.db.models import DialerAttempt
from callcenter.db.writer import RecordWriter
from callcenter.dialer import store
from callcenter.dialer.contacts import zones_for_number
from callcenter.dialer.estimates import Estimates
from callcenter.dialer.pacing import AbandonLedger, BusyAgent, ProgressivePacer, Snapshot, Window
from callcenter.dialer.predictive import PredictivePacer
from callcenter.dialer.rules import DEFAULT_RETRIES, after_attempt, after_disposition
from callcenter.dialer.settings import ABANDON_WINDOWS, CampaignSpec
from callcenter.errors import ActionRefused, AriError, AriNotFound

log = logging.getLogger(__name__)

DIALER_ARG = "dialer"
AMD_ARG = "dialer-amd"
AMD_CONTEXT = "dialer-amd"
# A person who answered must have an agent within this many seconds, or the call is abandoned.
CONNECT_WITHIN = 2.0
# Q.850 causes of a call that was not answered.
UNANSWERED = {17: "busy", 21: "busy", 18: "no_answer", 19: "no_answer", 0: "no_answer", 16: "no_answer"}
# Calls of one campaign placed in one second at most: the trunk is not flooded after a pause.
MAX_BURST = 50
# Channels of finished attempts whose ChannelDestroyed (with the hang-up cause) may still come.
CAUSES_AWAITED = 2000


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


@dataclass
class LiveAttempt:
    """A call the dialer placed, while it lasts."""

    id: str
    campaign: str
    contact: store.ContactRef
    mode: str
    channel_id: str | None
    placed: float
    state: str = "ringing"  # ringing, amd, waiting, connected, message, ended
    answered: float | None = None
    human: float | None = None
    acd_call_id: str | None = None
    outcome: str = ""
    playback_id: str | None = None
    agent_id: int | None = None
    cancel_timer: Callable[[], None] | None = None


@dataclass
class CampaignRuntime:
    spec: CampaignSpec
    estimates: Estimates
    ledger: AbandonLedger
    running: bool = False
    # Agents in wrap-up after one of this campaign's calls, since when (to measure wrap-up times).
    wrapping: dict[int, float] = field(default_factory=dict)
    # Preview mode (and agents' own callbacks): the contact each agent is shown, not yet dialled.
    previews: dict[int, store.ContactRef] = field(default_factory=dict)
    next_feed: float = 0.0
    placed: int = 0
    # Why the pacer dials below one call per free agent (the wallboard's row); "" when it does not.
    brake: str = ""

    @property
    def pacer(self) -> ProgressivePacer | PredictivePacer:
        if self.spec.mode == "predictive":
            return self._predictive
        return self._progressive

    def __post_init__(self) -> None:
        self._progressive = ProgressivePacer(self.ledger)
        self._predictive = PredictivePacer(self.estimates, self.ledger, min_agents=self.spec.min_agents)


def windows_of(spec: CampaignSpec) -> list[Window]:
    return [Window(name, ABANDON_WINDOWS[name], count_amd_false_positives=name == "24h")
            for name in spec.abandon_windows]


class DialerService:
    def __init__(self, control: DialerControl, acd: AcdService, db: Database, writer: RecordWriter,
                 campaigns: Mapping[str, CampaignSpec], prompts: PromptMedia, *, default_trunk: str,
                 timers: Timers | None = None, tick: float = 1.0) -> None:
        self.control = control
        self.acd = acd
        self.db = db
        self.writer = writer
        self.prompts = prompts
        self.default_trunk = default_trunk
        self.timers: Timers = timers or LoopTimers()
        self.tick = tick
        self.campaigns: dict[str, CampaignRuntime] = {}
        for name, spec in campaigns.items():
            ledger = AbandonLedger(spec.abandon_target / 100, windows_of(spec),
                                   amd_false_positive_rate=spec.amd_false_positive_rate / 100)
            self.campaigns[name] = CampaignRuntime(spec, Estimates(), ledger)
        self.live: dict[str, LiveAttempt] = {}  # by attempt id
        self.by_channel: dict[str, LiveAttempt] = {}
        self.by_call: dict[str, LiveAttempt] = {}  # by ACD record id
        self._playbacks: dict[str, LiveAttempt] = {}
        # A connected call is finished by the ACD before Asterisk says how it was hung up: channel -> attempt.
        self._cause_awaited: dict[str, str] = {}

    # -- set-up ---------------------------------------------------------------------------------------

    def load(self) -> None:
        """Run state, crash recovery and 30 days of history for the estimates and abandon windows (sync)."""
        now = self.timers.now()
        with self.db.session() as session:
            lost = store.recover(session, now)
            running = store.running_campaigns(session)
        if lost:
            log.warning("dialer: %d call(s) were open when the controller stopped; marked lost", lost)
        for name, runtime in self.campaigns.items():
            runtime.running = name in running
            with self.db.session() as session:
                past = store.history(session, name, now)
            for attempt in past:
                self._replay(runtime, attempt)
        unknown = running - set(self.campaigns)
        for name in sorted(unknown):
            log.warning("dialer: campaign %s is marked running but is not in the configuration", name)

    @staticmethod
    def _replay(runtime: CampaignRuntime, attempt: store.PastAttempt) -> None:
        placed = attempt.placed_at.timestamp()
        end = attempt.answered_at.timestamp() if attempt.answered_at else placed
        if attempt.amd_status == "MACHINE":
            runtime.estimates.call_result("machine", max(0.0, end - placed))
            runtime.ledger.machine_detected(end)
        elif attempt.outcome == "machine" and attempt.human_at is not None:  # an agent found a machine
            runtime.estimates.call_result("machine", max(0.0, end - placed))
            runtime.ledger.human_answered(attempt.human_at.timestamp())
            runtime.ledger.machine_answered(attempt.human_at.timestamp())
        elif attempt.human_at is not None:
            runtime.estimates.call_result("human", max(0.0, end - placed))
            if attempt.abandoned_at is not None:
                runtime.ledger.abandoned(attempt.human_at.timestamp())
            else:
                runtime.ledger.human_answered(attempt.human_at.timestamp())
            if attempt.talk_seconds:
                runtime.estimates.talk(attempt.talk_seconds)
        elif attempt.outcome in ("busy", "no_answer", "failed"):
            runtime.estimates.call_result(attempt.outcome, 0.0)

    # -- control ----------------------------------------------------------------------------------------

    def _campaign(self, name: str) -> CampaignRuntime:
        runtime = self.campaigns.get(name)
        if runtime is None:
            raise ActionRefused(f"No campaign {name!r} is configured.", 404)
        return runtime

    async def start_campaign(self, name: str, by: str) -> None:
        runtime = self._campaign(name)
        other = next((c.spec.name for c in self.campaigns.values()
                      if c.running and c is not runtime and c.spec.queue == runtime.spec.queue), None)
        if other is not None:
            raise ActionRefused(
                f"Campaign {other} already runs with queue {runtime.spec.queue}'s agents; stop it first.")
        await asyncio.to_thread(self._save_running, name, True, by)
        runtime.running = True
        log.info("dialer: campaign %s started by %s (%s)", name, by, runtime.spec.mode)
        self.acd.notify()

    async def stop_campaign(self, name: str, by: str) -> None:
        runtime = self._campaign(name)
        await asyncio.to_thread(self._save_running, name, False, by)
        runtime.running = False
        for agent_id in list(runtime.previews):
            await self._release_preview(runtime, agent_id, "campaign stopped")
        log.info("dialer: campaign %s stopped by %s; calls in progress go on", name, by)
        self.acd.notify()

    def _save_running(self, name: str, running: bool, by: str) -> None:
        with self.db.session() as session:
            store.set_running(session, name, running, by, self.timers.now())

    # -- pacing ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        next_sync = 0.0
        while True:
            started = time.monotonic()
            if started >= next_sync:
                next_sync = started + 2.0
                await self._sync_running()
            try:
                await self._keep_sessions()
            except Exception:
                log.exception("dialer: keeping the agents' session lines failed; trying again")
            for runtime in list(self.campaigns.values()):
                if not runtime.running:
                    continue
                try:
                    await self._pace(runtime)
                except Exception:
                    log.exception("dialer: pacing campaign %s failed; trying again", runtime.spec.name)
            await asyncio.sleep(max(0.05, self.tick - (time.monotonic() - started)))

    async def _sync_running(self) -> None:
        """Follows starts and stops made elsewhere (the CLI, another panel) through the database."""
        try:
            running = await asyncio.to_thread(self._read_running)
        except Exception as exc:  # the database is away: campaigns keep their state until it is back
            log.warning("dialer: reading the campaigns' run state failed: %s", exc)
            return
        for name, runtime in self.campaigns.items():
            if runtime.running != (name in running):
                runtime.running = name in running
                log.info("dialer: campaign %s %s", name, "started" if runtime.running else "stopped")
                if not runtime.running:
                    for agent_id in list(runtime.previews):
                        await self._release_preview(runtime, agent_id, "campaign stopped")
                self.acd.notify()

    def _read_running(self) -> set[str]:
        with self.db.session() as session:
            return store.running_campaigns(session)

    def agents_of(self, runtime: CampaignRuntime) -> list[Agent]:
        return [a for a in self.acd.agents.values() if runtime.spec.queue in a.skills and a.logged_in]

    async def _keep_sessions(self) -> None:
        """Session-mode campaigns (DIA-6): each of their ready agents gets a kept line, called once; an
        agent no running session campaign needs any more has theirs hung up after their call."""
        wanted: dict[int, CampaignRuntime] = {}
        for _name, runtime in sorted(self.campaigns.items()):
            if runtime.running and runtime.spec.agent_line == "session":
                for agent in self.agents_of(runtime):
                    wanted.setdefault(agent.user_id, runtime)
        for session in self.acd.sessions.all():
            if session.agent.user_id not in wanted:
                await self.acd.close_session(session.agent.user_id)
        for user_id, runtime in wanted.items():
            agent = self.acd.agents[user_id]
            if (self.acd.sessions.of(agent) is None and agent.state is AgentState.READY and not agent.calls
                    and user_id not in runtime.previews):
                await self.acd.open_session(user_id, f"campaign {runtime.spec.name}", runtime.spec.session_music)

    def _ready_for(self, runtime: CampaignRuntime, agent: Agent) -> bool:
        """Free for this campaign's next person now: in session mode only through an open session line."""
        if runtime.spec.agent_line == "session" and not self.acd.sessions.up(agent):
            return False
        return self.acd.available(agent)

    def _being_offered(self, attempt: LiveAttempt) -> bool:
        call = self.acd.calls.get(attempt.acd_call_id) if attempt.acd_call_id else None
        return call is not None and bool(call.ringing)

    def snapshot(self, runtime: CampaignRuntime, now: float) -> Snapshot:
        ready = 0
        busy: list[BusyAgent] = []
        for agent in self.agents_of(runtime):
            since = agent.since.timestamp() if agent.since else now
            if agent.state is AgentState.PAUSED:
                continue
            if agent.state is AgentState.WRAP_UP:
                left = (agent.wrapup_deadline.timestamp() - now) if agent.wrapup_deadline else None
                busy.append(BusyAgent("wrapup", max(0.0, now - since), max(0.0, left) if left is not None else None))
            elif agent.state in (AgentState.ON_CALL, AgentState.RINGING) or agent.calls:
                busy.append(BusyAgent("talk", max(0.0, now - since)))
            elif agent.user_id in runtime.previews:
                busy.append(BusyAgent("talk", 0.0))
            elif self._ready_for(runtime, agent):
                ready += 1
        dialing = tuple(now - a.placed for a in self.live.values()
                        if a.campaign == runtime.spec.name and a.state in ("ringing", "amd") and a.mode != "preview")
        # A person an agent's phone rings for is counted once: as that busy agent, not also as waiting.
        waiting = sum(1 for a in self.live.values() if a.campaign == runtime.spec.name and a.state == "waiting"
                      and not self._being_offered(a))
        waiting += sum(1 for c in self.acd.calls.values()
                       if c.queue == runtime.spec.queue and c.direction is Direction.INBOUND and c.waiting
                       and not c.ringing)
        return Snapshot(now=now, ready=ready, busy=tuple(busy), dialing=dialing, waiting=waiting)

    def _note_wrapups(self, runtime: CampaignRuntime, now: float) -> None:
        for agent in self.agents_of(runtime):
            started = runtime.wrapping.get(agent.user_id)
            if started is not None and agent.state is not AgentState.WRAP_UP:
                runtime.estimates.wrapup(max(0.0, now - started))
                del runtime.wrapping[agent.user_id]

    async def _pace(self, runtime: CampaignRuntime) -> None:
        now = self.clock()
        self._note_wrapups(runtime, now)
        if runtime.spec.callback_list and now >= runtime.next_feed:
            runtime.next_feed = now + 30
            await asyncio.to_thread(self._feed_callbacks, runtime)
        await self._offer_agent_callbacks(runtime)
        if runtime.spec.mode == "preview":
            await self._fill_previews(runtime)
            return
        decision = runtime.pacer.decision(self.snapshot(runtime, now))
        if decision.reason != runtime.brake:
            log.warning("dialer: campaign %s: %s", runtime.spec.name,
                        decision.reason or "every abandon window is back within the target")
            runtime.brake = decision.reason
            self.acd.notify()  # the wallboard's campaign row
        wanted = min(MAX_BURST, decision.calls)
        if wanted <= 0:
            return
        contacts = await asyncio.to_thread(self._take, runtime, wanted, None)
        for contact in contacts:
            await self._place(runtime, contact)

    def _take(self, runtime: CampaignRuntime, count: int, agent_id: int | None) -> list[store.ContactRef]:
        with self.db.session() as session:
            return store.take_due(session, runtime.spec.name, runtime.spec.hours, self.timers.now(), count,
                                  agent_id=agent_id)

    def _feed_callbacks(self, runtime: CampaignRuntime) -> None:
        """The ACD's open callbacks become contacts of this campaign (once per number)."""
        spec = runtime.spec
        added = 0
        with self.db.session() as session:
            for entry in list(self.acd.callbacks.values()):
                number = store.normalise_or_none(str(entry.get("number", "")), spec.region)
                if number is None:
                    continue
                zones = store.bounding_zones(zones_for_number(number), self.timers.now()) or (
                    (spec.timezone,) if spec.timezone else ())
                if not zones:
                    continue
                fields = {"callback_number": str(entry["number"]), "reason": str(entry.get("reason", "")),
                          "queue": str(entry.get("queue") or "")}
                if store.add_contact(session, spec.name, number, str(entry.get("name", "")), zones, fields):
                    added += 1
        if added:
            log.info("dialer: %d callback(s) from the ACD's list added to campaign %s", added, spec.name)

    # -- placing calls -------------------------------------------------------------------------------------

    async def _place(self, runtime: CampaignRuntime, contact: store.ContactRef) -> None:
        spec = runtime.spec
        attempt = LiveAttempt(uuid.uuid4().hex, spec.name, contact, spec.mode, f"dialer-{uuid.uuid4().hex[:24]}",
                              self.clock())
        self._track(attempt)
        runtime.placed += 1
        self.acd.notify()
        placed_at = datetime.fromtimestamp(attempt.placed, UTC)
        row = {"id": attempt.id, "campaign": spec.name, "contact_id": contact.id, "number": contact.number,
               "mode": spec.mode, "channel_id": attempt.channel_id, "placed_at": placed_at,
               "amd_status": "" if spec.amd else "off", "outcome": ""}
        self.writer.add(lambda session: session.add(DialerAttempt(**row)))
        assert attempt.channel_id is not None
        try:
            trunk = spec.trunk or self.default_trunk
            await self.control.originate(attempt.channel_id, f"PJSIP/{contact.number}@{trunk}", spec.caller_id,
                                         spec.ring_seconds, [DIALER_ARG])
        except AriError as exc:
            log.warning("dialer: calling %s failed: %s", contact.number, exc)
            await self._finish(attempt, "failed")
            return
        # Asterisk ends an unanswered originate itself; this only catches a lost event.
        self._timer(attempt, spec.ring_seconds + 20, lambda: self._ring_lost(attempt))

    def _track(self, attempt: LiveAttempt) -> None:
        self.live[attempt.id] = attempt
        if attempt.channel_id:
            self.by_channel[attempt.channel_id] = attempt

    def clock(self) -> float:
        """Seconds since the epoch, as the pacer and the abandon windows count them."""
        return self.timers.now().timestamp()

    def _timer(self, attempt: LiveAttempt, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()

        async def guarded() -> None:
            attempt.cancel_timer = None  # it runs: a new timer set from here must not cancel this one
            try:
                await action()
            except Exception:
                log.exception("dialer: a timer of %s failed", attempt.contact.number)
        attempt.cancel_timer = self.timers.later(delay, guarded)

    async def _ring_lost(self, attempt: LiveAttempt) -> None:
        if attempt.state == "ringing" and attempt.id in self.live:
            if attempt.channel_id:
                with contextlib.suppress(AriError):
                    await self.control.hangup(attempt.channel_id)
            await self._finish(attempt, "no_answer")

    # -- events from Asterisk ---------------------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.by_channel

    async def stasis_start(self, channel_id: str, args: tuple[str, ...]) -> bool:
        """A dialled number answered (``dialer``) or AMD has its verdict (``dialer-amd``); False if not ours."""
        if not args or args[0] not in (DIALER_ARG, AMD_ARG):
            return False
        attempt = self.by_channel.get(channel_id)
        if attempt is None or attempt.id not in self.live:
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
            return True
        runtime = self.campaigns[attempt.campaign]
        now = self.clock()
        if args[0] == DIALER_ARG:
            attempt.answered = now
            self._update(attempt, answered_at=_utc(now))
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
                    self._timer(attempt, 15, lambda: self._amd_lost(attempt))
            else:
                await self._person(runtime, attempt, "", "")
            return True
        status = args[1] if len(args) > 1 else "NOTSURE"
        cause = args[2] if len(args) > 2 else ""
        if status == "MACHINE":
            await self._machine(runtime, attempt, cause)
        elif status == "HANGUP":
            self._update(attempt, amd_status=status, amd_cause=cause[:40])
            with contextlib.suppress(AriError):
                await self.control.hangup(channel_id)
        else:  # HUMAN, and NOTSURE: it may be a person, so they get the 2-second promise
            await self._person(runtime, attempt, status, cause)
        return True

    async def _amd_lost(self, attempt: LiveAttempt) -> None:
        if attempt.state == "amd" and attempt.id in self.live:
            log.warning("dialer: no AMD verdict for %s; hanging up", attempt.channel_id)
            if attempt.channel_id:
                with contextlib.suppress(AriError):
                    await self.control.hangup(attempt.channel_id)
            await self._finish(attempt, "failed")

    async def _machine(self, runtime: CampaignRuntime, attempt: LiveAttempt, cause: str) -> None:
        now = self.clock()
        ring = (attempt.answered or now) - attempt.placed
        runtime.estimates.call_result("machine", ring)
        if attempt.answered is not None:
            runtime.estimates.amd(now - attempt.answered)
        runtime.ledger.machine_detected(now)
        attempt.state, attempt.outcome = "message", "machine"
        self._update(attempt, amd_status="MACHINE", amd_cause=cause[:40], outcome="machine")
        assert attempt.channel_id is not None
        if runtime.spec.machine_action == "message":
            await self._play_then_hang_up(attempt, runtime.spec.machine_message)
        else:
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)

    async def _person(self, runtime: CampaignRuntime, attempt: LiveAttempt, amd_status: str, cause: str) -> None:
        """A person is on the line: an agent of the campaign must be talking to them within 2 s."""
        now = self.clock()
        attempt.human = now
        attempt.state = "waiting"
        runtime.estimates.call_result("human", (attempt.answered or now) - attempt.placed)
        if amd_status and attempt.answered is not None:
            runtime.estimates.amd(now - attempt.answered)
        values: dict[str, Any] = {"human_at": _utc(now)}
        if amd_status:
            values.update(amd_status=amd_status, amd_cause=cause[:40])
        self._update(attempt, **values)
        contact = attempt.contact
        card = _card(runtime.spec, contact)
        assert attempt.channel_id is not None
        self._timer(attempt, CONNECT_WITHIN, lambda: self._deadline(attempt))
        call = await self.acd.enqueue(attempt.channel_id, runtime.spec.queue, contact.number, contact.name,
                                      priority=100, answered=True, campaign=runtime.spec.name, card=card,
                                      connect_by=_utc(now + CONNECT_WITHIN),
                                      session_only=runtime.spec.agent_line == "session")
        if call is None:
            log.error("dialer: campaign %s's queue %s is gone", runtime.spec.name, runtime.spec.queue)
            return
        call.extra.update(contact_id=contact.id, attempt_id=attempt.id, human=now)
        if call.state is not CallState.ENDED:
            attempt.acd_call_id = call.record_id
            self.by_call[call.record_id] = attempt

    async def _deadline(self, attempt: LiveAttempt) -> None:
        """2 seconds after the person answered: no agent yet, so the call is abandoned (DIA-3)."""
        if attempt.state != "waiting" or attempt.acd_call_id is None:
            return
        call = await self.acd.withdraw(attempt.acd_call_id)
        if call is None:
            return  # an agent took it in the meantime
        self.by_call.pop(attempt.acd_call_id, None)
        runtime = self.campaigns[attempt.campaign]
        now = self.clock()
        runtime.ledger.abandoned(attempt.human or now)
        attempt.state, attempt.outcome = "message", "abandoned"
        self._update(attempt, abandoned_at=_utc(now), outcome="abandoned")
        log.info("dialer: %s abandoned (no agent within %.0f s); playing %s", attempt.contact.number, CONNECT_WITHIN,
                 runtime.spec.abandon_message)
        await self._play_then_hang_up(attempt, runtime.spec.abandon_message)

    async def _play_then_hang_up(self, attempt: LiveAttempt, prompt: str) -> None:
        assert attempt.channel_id is not None
        playback_id = f"dialer-{uuid.uuid4().hex[:20]}"
        attempt.playback_id = playback_id
        self._playbacks[playback_id] = attempt
        try:
            await self.control.play(attempt.channel_id, self.prompts.media(prompt), playback_id)
        except AriError as exc:
            if not isinstance(exc, AriNotFound):
                log.warning("dialer: playing %s to %s failed: %s", prompt, attempt.contact.number, exc)
            self._playbacks.pop(playback_id, None)
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)
            return
        self._update(attempt, message_at=_utc(self.clock()))
        self._timer(attempt, 60, lambda: self._hang_up(attempt))

    async def _hang_up(self, attempt: LiveAttempt) -> None:
        if attempt.channel_id and attempt.id in self.live:
            with contextlib.suppress(AriError):
                await self.control.hangup(attempt.channel_id)

    async def playback_finished(self, playback_id: str) -> bool:
        attempt = self._playbacks.pop(playback_id, None)
        if attempt is None:
            return False
        await self._hang_up(attempt)
        return True

    async def channel_destroyed(self, channel_id: str, cause: int) -> None:
        attempt = self.by_channel.get(channel_id)
        if attempt is None:
            finished = self._cause_awaited.pop(channel_id, None)
            if finished is not None:
                self._update_id(finished, hangup_cause=cause)
            return
        if attempt.state == "ringing":
            await self._finish(attempt, UNANSWERED.get(cause, "failed"), cause)
        elif attempt.state == "amd":
            await self._finish(attempt, "hung_up", cause)
        elif attempt.state == "message":
            await self._finish(attempt, attempt.outcome, cause)
        elif attempt.state == "waiting" and attempt.acd_call_id is None:
            await self._finish(attempt, "hung_up", cause)
        else:
            # Queued or connected: the ACD ends the call and tells us (``ended``); keep the cause.
            self._update(attempt, hangup_cause=cause)

    # -- what the ACD tells us ---------------------------------------------------------------------------------

    async def connected(self, call: AcdCall) -> None:
        attempt = self.by_call.get(call.record_id) or self._waiting_on(call)
        if attempt is None:
            return
        now = self.clock()
        attempt.state = "connected"
        attempt.agent_id = call.agent.user_id if call.agent else None
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()
            attempt.cancel_timer = None
        attempt.acd_call_id = call.record_id
        self.by_call[call.record_id] = attempt
        runtime = self.campaigns[attempt.campaign]
        if attempt.mode == "preview":
            attempt.human = now
            runtime.ledger.human_answered(now)
            self._update(attempt, answered_at=_utc(now), human_at=_utc(now))
        elif attempt.human is not None:
            runtime.ledger.human_answered(attempt.human)
        self._update(attempt, connected_at=_utc(now), agent_id=attempt.agent_id, acd_call_id=call.record_id,
                     outcome="human")
        attempt.outcome = "human"
        number = attempt.contact.fields.get("callback_number")
        if number:
            self.acd.close_callback(number, attempt.agent_id)

    def _waiting_on(self, call: AcdCall) -> LiveAttempt | None:
        """The attempt whose customer is this call (connected before ``enqueue`` returned)."""
        if call.channel_id is None:
            return None
        return self.by_channel.get(call.channel_id)

    async def ended(self, call: AcdCall) -> None:
        attempt = self.by_call.pop(call.record_id, None)
        if attempt is None:
            return
        now = self.clock()
        runtime = self.campaigns[attempt.campaign]
        if attempt.state == "connected":
            talk = (now - call.answered_at.timestamp()) if call.answered_at else None
            if talk is not None:
                runtime.estimates.talk(talk)
                self._update(attempt, talk_seconds=round(talk, 2))
            if call.agent is not None:
                runtime.wrapping[call.agent.user_id] = now
            await self._finish(attempt, "human")
        elif attempt.mode == "preview":
            await self._finish(attempt, {"answered": "human"}.get(call.outcome, call.outcome or "failed"))
        elif attempt.state == "waiting":
            # The person hung up before an agent came: counted as abandoned, as the regulators would.
            runtime.ledger.abandoned(attempt.human or now)
            self._update(attempt, abandoned_at=_utc(now))
            await self._finish(attempt, "abandoned")

    async def wrapped_up(self, call: AcdCall) -> None:
        """The agent's wrap-up code decides what becomes of the contact (a callback, do-not-call...)."""
        contact_id = call.extra.get("contact_id")
        runtime = self.campaigns.get(call.campaign or "")
        code, record_id = call.wrapup_code, call.record_id
        self.writer.add(lambda session: session.execute(
            update(DialerAttempt).where(DialerAttempt.acd_call_id == record_id).values(wrapup_code=code)))
        if runtime is None or contact_id is None:
            return
        if code not in runtime.spec.dispositions:
            return
        if runtime.spec.dispositions[code].action == "machine":
            self._machine_after_all(runtime, call, int(contact_id))
            return
        callback_at = call.extra.get("callback_at")
        try:
            step = after_disposition(code, runtime.spec.dispositions, self.timers.now(), callback_at)
        except ValueError as exc:  # a callback code without a time (the panel asks for one)
            log.warning("dialer: wrap-up %s of call %s: %s; the contact stays as it is", code, call.record_id, exc)
            return
        mine = bool(call.extra.get("callback_mine")) and call.agent is not None
        agent_id = call.agent.user_id if mine and call.agent is not None else None
        status = "callback" if step.status == "pending" and callback_at is not None else step.status
        number, spec_name = call.number, runtime.spec.name

        def write(session: Any) -> None:
            store.contact_done(session, int(contact_id), status, step.not_before, step.reason, "",
                               callback_agent_id=agent_id if status == "callback" else None)
            if step.status == "dnc":
                store.add_dnc(session, [number], spec_name, f"agent wrap-up {code}", self.timers.now())
        self.writer.add(write)

    def _machine_after_all(self, runtime: CampaignRuntime, call: AcdCall, contact_id: int) -> None:
        """The agent found an answering machine AMD had let through: it stops counting as a person in the
        abandon windows, and the contact follows the machine retry rule."""
        human = call.extra.get("human")
        if isinstance(human, float):
            runtime.ledger.machine_answered(human)
        attempt_id = call.extra.get("attempt_id")
        if isinstance(attempt_id, str):
            self._update_id(attempt_id, outcome="machine")
        rules = runtime.spec.retries or DEFAULT_RETRIES
        now = self.timers.now()

        def write(session: Any) -> None:
            counts = store.counts_of(session, contact_id)
            counts["machine"] = counts.get("machine", 0) + 1
            step = after_attempt("machine", counts, rules, now)
            store.contact_done(session, contact_id, step.status, step.not_before, step.reason, "machine")
        self.writer.add(write)

    # -- ending an attempt ------------------------------------------------------------------------------

    async def _finish(self, attempt: LiveAttempt, outcome: str, cause: int | None = None) -> None:
        if self.live.pop(attempt.id, None) is None:
            return
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()
        if attempt.channel_id:
            self.by_channel.pop(attempt.channel_id, None)
        if attempt.playback_id:
            self._playbacks.pop(attempt.playback_id, None)
        attempt.state = "ended"
        if attempt.channel_id and cause is None:
            self._cause_awaited[attempt.channel_id] = attempt.id
            if len(self._cause_awaited) > CAUSES_AWAITED:
                self._cause_awaited.pop(next(iter(self._cause_awaited)))
        runtime = self.campaigns[attempt.campaign]
        now = self.clock()
        if outcome in ("busy", "no_answer", "failed") and attempt.mode != "preview":
            runtime.estimates.call_result(outcome, now - attempt.placed)
        values: dict[str, Any] = {"ended_at": _utc(now), "outcome": outcome}
        if cause is not None:
            values["hangup_cause"] = cause
        self._update(attempt, **values)
        self.acd.notify()  # the wallboard's campaign figures
        retry_as = {"hung_up": "abandoned"}.get(outcome, outcome)
        contact = attempt.contact
        if outcome == "human":
            step_status, not_before, reason = "done", None, "reached"
        else:
            counts = dict(contact.outcome_counts)
            counts[retry_as] = counts.get(retry_as, 0) + 1
            rules = runtime.spec.retries or DEFAULT_RETRIES
            step = after_attempt(retry_as, counts, rules, self.timers.now())
            step_status, not_before, reason = step.status, step.not_before, step.reason
        self.writer.add(lambda session: store.contact_done(session, contact.id, step_status, not_before, reason,
                                                           outcome))
        log.info("dialer: %s %s -> %s (%s)", attempt.campaign, contact.number, outcome, step_status)

    def _update(self, attempt: LiveAttempt, **values: Any) -> None:
        self._update_id(attempt.id, **values)

    def _update_id(self, attempt_id: str, **values: Any) -> None:
        self.writer.add(lambda session: session.execute(
            update(DialerAttempt).where(DialerAttempt.id == attempt_id).values(**values)))

    # -- preview mode and agents' own callbacks -----------------------------------------------------------

    def _free_without_preview(self, runtime: CampaignRuntime) -> list[int]:
        return [a.user_id for a in self.agents_of(runtime)
                if a.user_id not in runtime.previews and self.acd.available(a)]

    def _show_previews(self, runtime: CampaignRuntime, shown: Mapping[int, store.ContactRef]) -> None:
        if shown:
            runtime.previews.update(shown)
            self.acd.notify()

    async def _fill_previews(self, runtime: CampaignRuntime) -> None:
        free = self._free_without_preview(runtime)
        if free:
            contacts = await asyncio.to_thread(self._take, runtime, len(free), None)
            self._show_previews(runtime, dict(zip(free, contacts, strict=False)))

    async def _offer_agent_callbacks(self, runtime: CampaignRuntime) -> None:
        """A callback an agent promised for themself is shown to them (as a preview) when it is due."""
        free = self._free_without_preview(runtime)
        if free:
            self._show_previews(runtime, await asyncio.to_thread(self._take_agent_callbacks, runtime, free))

    def _take_agent_callbacks(self, runtime: CampaignRuntime, agent_ids: list[int]) -> dict[int, store.ContactRef]:
        """Each agent's next due callback: one query finds the agents who have one (every second, so a
        floor of free agents costs one query, not one each)."""
        name, now = runtime.spec.name, self.timers.now()
        taken: dict[int, store.ContactRef] = {}
        with self.db.session() as session:
            for agent_id in store.agents_with_due_callbacks(session, name, agent_ids, now):
                contacts = store.take_due(session, name, runtime.spec.hours, now, 1, agent_id=agent_id)
                if contacts:
                    taken[agent_id] = contacts[0]
        return taken

    def preview_for(self, user_id: int) -> dict[str, Any] | None:
        for runtime in self.campaigns.values():
            contact = runtime.previews.get(user_id)
            if contact is not None:
                return {"campaign": runtime.spec.name, "number": contact.number, "name": contact.name,
                        "fields": contact.fields, "attempts": contact.attempts - 1,
                        "callback": contact.callback_agent_id is not None}
        return None

    def dispositions_for(self, call: AcdCall | None) -> list[dict[str, str]]:
        runtime = self.campaigns.get(call.campaign or "") if call is not None else None
        if runtime is None:
            return []
        return [{"code": code, "action": d.action} for code, d in runtime.spec.dispositions.items()]

    async def preview_dial(self, user_id: int) -> None:
        runtime, contact = self._preview_of(user_id)
        spec = runtime.spec
        del runtime.previews[user_id]
        card = _card(spec, contact)
        attempt = LiveAttempt(uuid.uuid4().hex, spec.name, contact, "preview", None, self.clock())
        self.live[attempt.id] = attempt
        row = {"id": attempt.id, "campaign": spec.name, "contact_id": contact.id, "number": contact.number,
               "mode": "preview", "channel_id": "", "placed_at": _utc(attempt.placed), "amd_status": "off",
               "outcome": ""}
        self.writer.add(lambda session: session.add(DialerAttempt(**row)))
        try:
            call = await self.acd.dial(user_id, contact.number, campaign=spec.name, card=card,
                                       caller_id=spec.caller_id, trunk=spec.trunk or self.default_trunk)
        except ActionRefused:
            await self._finish(attempt, "failed")
            raise
        call.extra["contact_id"] = contact.id
        attempt.acd_call_id = call.record_id
        self.by_call[call.record_id] = attempt
        self._update(attempt, acd_call_id=call.record_id, agent_id=user_id)

    async def preview_skip(self, user_id: int) -> None:
        runtime, _contact = self._preview_of(user_id)
        await self._release_preview(runtime, user_id, "skipped by the agent")
        self.acd.notify()

    async def _release_preview(self, runtime: CampaignRuntime, user_id: int, reason: str) -> None:
        contact = runtime.previews.pop(user_id)
        later = self.timers.now() + timedelta(hours=1) if reason.startswith("skipped") else None
        status = "callback" if contact.callback_agent_id is not None else "pending"
        self.writer.add(lambda session: store.put_back(session, contact.id, status, later, reason))

    def _preview_of(self, user_id: int) -> tuple[CampaignRuntime, store.ContactRef]:
        for runtime in self.campaigns.values():
            contact = runtime.previews.get(user_id)
            if contact is not None:
                return runtime, contact
        raise ActionRefused("You have no contact to preview.")

    # -- views ------------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self.clock()
        rows = []
        for name, runtime in sorted(self.campaigns.items()):
            rates = runtime.ledger.rates(now)
            snap = self.snapshot(runtime, now)
            rows.append({
                "name": name, "mode": runtime.spec.mode, "queue": runtime.spec.queue, "running": runtime.running,
                "agents": snap.ready + len(snap.busy), "ready": snap.ready, "dialing": len(snap.dialing),
                "waiting": snap.waiting, "placed_since_start": runtime.placed,
                "abandon": {w: {"answered": r.answered, "abandoned": r.abandoned, "rate": r.rate}
                            for w, r in rates.items()},
                "target": runtime.spec.abandon_target,
                "brake": runtime.brake if runtime.running else "",
            })
        return rows


def _card(spec: CampaignSpec, contact: store.ContactRef) -> CustomerCard:
    """What the agent sees of a contact: its name and the columns of its list."""
    return CustomerCard(contact.name, f"Campaign {spec.name}", [], dict(contact.fields))


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
