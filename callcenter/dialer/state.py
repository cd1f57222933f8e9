"""What every part of the dialer shares (DIA-1..5): the campaigns it runs and the calls it has placed,
found by attempt, channel, ACD call and playback, and how an attempt is recorded and ended. The campaign
loop (loop.py), placement and AMD (placement.py) and previews (previews.py) each hold this one object;
services.py builds them and is the dialer's face.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from callcenter.acd.model import Agent, CustomerCard
from callcenter.acd.services import AcdService
from callcenter.bus import ChannelClaims
from callcenter.db.engine import Database
from callcenter.db.models import DialerAttempt
from callcenter.db.writer import RecordWriter
from callcenter.dialer import store
from callcenter.dialer.estimates import Estimates
from callcenter.dialer.pacing import AbandonLedger, ProgressivePacer, Window
from callcenter.dialer.predictive import PredictivePacer
from callcenter.dialer.rules import DEFAULT_RETRIES, after_attempt
from callcenter.dialer.settings import ABANDON_WINDOWS, CampaignSpec
from callcenter.timers import Timers

log = logging.getLogger(__name__)

# Channels of finished attempts whose ChannelDestroyed (with the hang-up cause) may still come.
CAUSES_AWAITED = 2000


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


class DialerState:
    """The dialer's shared state and its bookkeeping of attempts: every collaborator reads and changes
    the same campaigns and lookups through this object, so what one part records the others see."""

    def __init__(self, acd: AcdService, db: Database, writer: RecordWriter, timers: Timers,
                 campaigns: Mapping[str, CampaignSpec], claims: ChannelClaims) -> None:
        self.acd = acd
        self.claims = claims
        self.db = db
        self.writer = writer
        self.timers = timers
        self.campaigns: dict[str, CampaignRuntime] = {}
        for name, spec in campaigns.items():
            ledger = AbandonLedger(spec.abandon_target / 100, windows_of(spec),
                                   amd_false_positive_rate=spec.amd_false_positive_rate / 100)
            self.campaigns[name] = CampaignRuntime(spec, Estimates(), ledger)
        self.live: dict[str, LiveAttempt] = {}  # by attempt id
        self.by_channel: dict[str, LiveAttempt] = {}
        self.by_call: dict[str, LiveAttempt] = {}  # by ACD record id
        self.playbacks: dict[str, LiveAttempt] = {}
        # A connected call is finished by the ACD before Asterisk says how it was hung up: channel -> attempt.
        self.cause_awaited: dict[str, str] = {}

    def clock(self) -> float:
        """Seconds since the epoch, as the pacer and the abandon windows count them."""
        return self.timers.now().timestamp()

    def agents_of(self, runtime: CampaignRuntime) -> list[Agent]:
        return [a for a in self.acd.agents.values() if runtime.spec.queue in a.skills and a.logged_in]

    def take(self, runtime: CampaignRuntime, count: int, agent_id: int | None) -> list[store.ContactRef]:
        with self.db.session() as session:
            return store.take_due(session, runtime.spec.name, runtime.spec.hours, self.timers.now(), count,
                                  agent_id=agent_id)

    def track(self, attempt: LiveAttempt) -> None:
        self.live[attempt.id] = attempt
        if attempt.channel_id:
            self.by_channel[attempt.channel_id] = attempt
            self.claims.take(attempt.channel_id)  # before it rings: a call nobody answers ends here too

    def timer(self, attempt: LiveAttempt, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()

        async def guarded() -> None:
            attempt.cancel_timer = None  # it runs: a new timer set from here must not cancel this one
            try:
                await action()
            except Exception:
                log.exception("dialer: a timer of %s failed", attempt.contact.number)
        attempt.cancel_timer = self.timers.later(delay, guarded)

    # -- ending an attempt ------------------------------------------------------------------------------

    async def finish(self, attempt: LiveAttempt, outcome: str, cause: int | None = None) -> None:
        if self.live.pop(attempt.id, None) is None:
            return
        if attempt.cancel_timer is not None:
            attempt.cancel_timer()
        if attempt.channel_id:
            self.by_channel.pop(attempt.channel_id, None)
        if attempt.playback_id:
            self.playbacks.pop(attempt.playback_id, None)
        attempt.state = "ended"
        if attempt.channel_id and cause is None:
            self.cause_awaited[attempt.channel_id] = attempt.id
            if len(self.cause_awaited) > CAUSES_AWAITED:
                self.cause_awaited.pop(next(iter(self.cause_awaited)))
        runtime = self.campaigns[attempt.campaign]
        now = self.clock()
        if outcome in ("busy", "no_answer", "failed") and attempt.mode != "preview":
            runtime.estimates.call_result(outcome, now - attempt.placed)
        values: dict[str, Any] = {"ended_at": utc(now), "outcome": outcome}
        if cause is not None:
            values["hangup_cause"] = cause
        self.update(attempt, **values)
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

    def update(self, attempt: LiveAttempt, **values: Any) -> None:
        self.update_id(attempt.id, **values)

    def update_id(self, attempt_id: str, **values: Any) -> None:
        self.writer.add(lambda session: session.execute(
            update(DialerAttempt).where(DialerAttempt.id == attempt_id).values(**values)))


def customer_card(spec: CampaignSpec, contact: store.ContactRef) -> CustomerCard:
    """What the agent sees of a contact: its name and the columns of its list."""
    return CustomerCard(contact.name, f"Campaign {spec.name}", [], dict(contact.fields))


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
