"""The dialer's campaign loop (DIA-1, DIA-2, DIA-6): which campaigns run, and every second for each one
how many numbers to dial.

Every second each running campaign is paced: its pacer (progressive, or predictive from live estimates
and the abandon budget of every window) says how many numbers to dial; due contacts inside their calling
window are taken from the database and handed to placement (placement.py), or shown to agents in preview
mode (previews.py). Starts and stops made elsewhere (the CLI, another panel) are followed through the
database; session-mode campaigns keep a line open to each of their ready agents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from callcenter.acd.model import Agent, AgentState, Direction
from callcenter.dialer import store
from callcenter.dialer.contacts import zones_for_number
from callcenter.dialer.pacing import BusyAgent, Snapshot
from callcenter.dialer.placement import Placement
from callcenter.dialer.previews import Previews
from callcenter.dialer.state import CampaignRuntime, DialerState, LiveAttempt
from callcenter.errors import ActionRefused

log = logging.getLogger(__name__)

# Calls of one campaign placed in one second at most: the trunk is not flooded after a pause.
MAX_BURST = 50


class CampaignLoop:
    """Runs the campaigns: their run state, the pacing tick, session lines, and the wallboard's rows."""

    def __init__(self, state: DialerState, placement: Placement, previews: Previews, *, tick: float = 1.0) -> None:
        self.state = state
        self.placement = placement
        self.previews = previews
        self.tick = tick

    # -- set-up ---------------------------------------------------------------------------------------

    def load(self) -> None:
        """Run state, crash recovery and 30 days of history for the estimates and abandon windows (sync)."""
        now = self.state.timers.now()
        with self.state.db.session() as session:
            lost = store.recover(session, now)
            running = store.running_campaigns(session)
        if lost:
            log.warning("dialer: %d call(s) were open when the controller stopped; marked lost", lost)
        for name, runtime in self.state.campaigns.items():
            runtime.running = name in running
            with self.state.db.session() as session:
                past = store.history(session, name, now)
            for attempt in past:
                replay(runtime, attempt)
        unknown = running - set(self.state.campaigns)
        for name in sorted(unknown):
            log.warning("dialer: campaign %s is marked running but is not in the configuration", name)

    # -- control ----------------------------------------------------------------------------------------

    def _campaign(self, name: str) -> CampaignRuntime:
        runtime = self.state.campaigns.get(name)
        if runtime is None:
            raise ActionRefused(f"No campaign {name!r} is configured.", 404)
        return runtime

    async def start_campaign(self, name: str, by: str) -> None:
        runtime = self._campaign(name)
        other = next((c.spec.name for c in self.state.campaigns.values()
                      if c.running and c is not runtime and c.spec.queue == runtime.spec.queue), None)
        if other is not None:
            raise ActionRefused(
                f"Campaign {other} already runs with queue {runtime.spec.queue}'s agents; stop it first.")
        await asyncio.to_thread(self._save_running, name, True, by)
        runtime.running = True
        log.info("dialer: campaign %s started by %s (%s)", name, by, runtime.spec.mode)
        self.state.acd.notify()

    async def stop_campaign(self, name: str, by: str) -> None:
        runtime = self._campaign(name)
        await asyncio.to_thread(self._save_running, name, False, by)
        runtime.running = False
        for agent_id in list(runtime.previews):
            await self.previews.release(runtime, agent_id, "campaign stopped")
        log.info("dialer: campaign %s stopped by %s; calls in progress go on", name, by)
        self.state.acd.notify()

    def _save_running(self, name: str, running: bool, by: str) -> None:
        with self.state.db.session() as session:
            store.set_running(session, name, running, by, self.state.timers.now())

    # -- pacing ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        next_sync = 0.0
        while True:
            started = time.monotonic()
            if started >= next_sync:
                next_sync = started + 2.0
                await self._sync_running()
            try:
                await self.keep_sessions()
            except Exception:
                log.exception("dialer: keeping the agents' session lines failed; trying again")
            for runtime in list(self.state.campaigns.values()):
                if not runtime.running:
                    continue
                try:
                    await self.pace(runtime)
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
        for name, runtime in self.state.campaigns.items():
            if runtime.running != (name in running):
                runtime.running = name in running
                log.info("dialer: campaign %s %s", name, "started" if runtime.running else "stopped")
                if not runtime.running:
                    for agent_id in list(runtime.previews):
                        await self.previews.release(runtime, agent_id, "campaign stopped")
                self.state.acd.notify()

    def _read_running(self) -> set[str]:
        with self.state.db.session() as session:
            return store.running_campaigns(session)

    async def keep_sessions(self) -> None:
        """Session-mode campaigns (DIA-6): each of their ready agents gets a kept line, called once; an
        agent no running session campaign needs any more has theirs hung up after their call."""
        wanted: dict[int, CampaignRuntime] = {}
        for _name, runtime in sorted(self.state.campaigns.items()):
            if runtime.running and runtime.spec.agent_line == "session":
                for agent in self.state.agents_of(runtime):
                    wanted.setdefault(agent.user_id, runtime)
        for session in self.state.acd.sessions.all():
            if session.agent.user_id not in wanted:
                await self.state.acd.close_session(session.agent.user_id)
        for user_id, runtime in wanted.items():
            agent = self.state.acd.agents[user_id]
            if (self.state.acd.sessions.of(agent) is None and agent.state is AgentState.READY and not agent.calls
                    and user_id not in runtime.previews):
                await self.state.acd.open_session(user_id, f"campaign {runtime.spec.name}", runtime.spec.session_music)

    def _ready_for(self, runtime: CampaignRuntime, agent: Agent) -> bool:
        """Free for this campaign's next person now: in session mode only through an open session line."""
        if runtime.spec.agent_line == "session" and not self.state.acd.sessions.up(agent):
            return False
        return self.state.acd.available(agent)

    def _being_offered(self, attempt: LiveAttempt) -> bool:
        call = self.state.acd.calls.get(attempt.acd_call_id) if attempt.acd_call_id else None
        return call is not None and bool(call.ringing)

    def snapshot(self, runtime: CampaignRuntime, now: float) -> Snapshot:
        ready = 0
        busy: list[BusyAgent] = []
        for agent in self.state.agents_of(runtime):
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
        dialing = tuple(now - a.placed for a in self.state.live.values()
                        if a.campaign == runtime.spec.name and a.state in ("ringing", "amd") and a.mode != "preview")
        # A person an agent's phone rings for is counted once: as that busy agent, not also as waiting.
        waiting = sum(1 for a in self.state.live.values() if a.campaign == runtime.spec.name and a.state == "waiting"
                      and not self._being_offered(a))
        waiting += sum(1 for c in self.state.acd.calls.values()
                       if c.queue == runtime.spec.queue and c.direction is Direction.INBOUND and c.waiting
                       and not c.ringing)
        return Snapshot(now=now, ready=ready, busy=tuple(busy), dialing=dialing, waiting=waiting)

    def _note_wrapups(self, runtime: CampaignRuntime, now: float) -> None:
        for agent in self.state.agents_of(runtime):
            started = runtime.wrapping.get(agent.user_id)
            if started is not None and agent.state is not AgentState.WRAP_UP:
                runtime.estimates.wrapup(max(0.0, now - started))
                del runtime.wrapping[agent.user_id]

    async def pace(self, runtime: CampaignRuntime) -> None:
        now = self.state.clock()
        self._note_wrapups(runtime, now)
        if runtime.spec.callback_list and now >= runtime.next_feed:
            runtime.next_feed = now + 30
            await asyncio.to_thread(self.feed_callbacks, runtime)
        await self.previews.offer_agent_callbacks(runtime)
        if runtime.spec.mode == "preview":
            await self.previews.fill(runtime)
            return
        decision = runtime.pacer.decision(self.snapshot(runtime, now))
        if decision.reason != runtime.brake:
            log.warning("dialer: campaign %s: %s", runtime.spec.name,
                        decision.reason or "every abandon window is back within the target")
            runtime.brake = decision.reason
            self.state.acd.notify()  # the wallboard's campaign row
        wanted = min(MAX_BURST, decision.calls)
        if wanted <= 0:
            return
        contacts = await asyncio.to_thread(self.state.take, runtime, wanted, None)
        for contact in contacts:
            await self.placement.place(runtime, contact)

    def feed_callbacks(self, runtime: CampaignRuntime) -> None:
        """The ACD's open callbacks become contacts of this campaign (once per number)."""
        spec = runtime.spec
        added = 0
        with self.state.db.session() as session:
            for entry in list(self.state.acd.callbacks.values()):
                number = store.normalise_or_none(str(entry.get("number", "")), spec.region)
                if number is None:
                    continue
                zones = store.bounding_zones(zones_for_number(number), self.state.timers.now()) or (
                    (spec.timezone,) if spec.timezone else ())
                if not zones:
                    continue
                fields = {"callback_number": str(entry["number"]), "reason": str(entry.get("reason", "")),
                          "queue": str(entry.get("queue") or "")}
                if store.add_contact(session, spec.name, number, str(entry.get("name", "")), zones, fields):
                    added += 1
        if added:
            log.info("dialer: %d callback(s) from the ACD's list added to campaign %s", added, spec.name)

    # -- views ------------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        now = self.state.clock()
        rows = []
        for name, runtime in sorted(self.state.campaigns.items()):
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


def replay(runtime: CampaignRuntime, attempt: store.PastAttempt) -> None:
    """One past attempt into the campaign's estimates and abandon windows, as it was counted live."""
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
