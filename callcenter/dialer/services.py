"""The outbound dialer (DIA-1..6): runs campaigns over ARI and hands the people it reaches to the ACD.

`DialerService` is the dialer's one face (the composition root, the panel, the ARI router, the CLI and
the tests use it); the work is done by three collaborators over one shared state:

- `DialerState` (state.py): the campaigns and the calls placed (by attempt, channel, ACD call and
  playback), and how an attempt is recorded and ended;
- `CampaignLoop` (loop.py): run state, the pacing tick, session lines, the wallboard's rows;
- `Placement` (placement.py): originating, the answer and AMD, the 2-second hand-over to the ACD,
  abandon and machine messages, how each call ends;
- `Previews` (previews.py): preview mode, the agents' own callbacks, the wrap-up codes' dispositions.

Outcomes and the agents' wrap-up codes decide when each contact is called again (rules.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcenter.acd.events import CallConnected, CallEnded, CallWrappedUp, campaign_calls
from callcenter.acd.model import AcdCall, Agent
from callcenter.acd.services import AcdService
from callcenter.bus import Bus, ChannelClaims
from callcenter.db.engine import Database
from callcenter.db.writer import RecordWriter
from callcenter.dialer.loop import CampaignLoop
from callcenter.dialer.pacing import Snapshot
from callcenter.dialer.placement import DialerControl, Placement, PromptMedia
from callcenter.dialer.previews import Previews
from callcenter.dialer.settings import CampaignSpec
from callcenter.dialer.state import CampaignRuntime, DialerState
from callcenter.timers import LoopTimers, Timers


class DialerService:
    def __init__(self, control: DialerControl, acd: AcdService, db: Database, writer: RecordWriter,
                 campaigns: Mapping[str, CampaignSpec], prompts: PromptMedia, *, default_trunk: str, bus: Bus,
                 claims: ChannelClaims, timers: Timers | None = None, tick: float = 1.0) -> None:
        self.control = control
        self.acd = acd
        self.db = db
        self.writer = writer
        self.prompts = prompts
        self.default_trunk = default_trunk
        self.timers: Timers = timers or LoopTimers()
        self.tick = tick
        self.state = DialerState(acd, db, writer, self.timers, campaigns, claims)
        self.campaigns: dict[str, CampaignRuntime] = self.state.campaigns
        self.placement = Placement(self.state, control, prompts, default_trunk=default_trunk)
        self.previews = Previews(self.state, default_trunk=default_trunk)
        self.campaign_loop = CampaignLoop(self.state, self.placement, self.previews, tick=tick)
        # What the ACD tells the dialer about the calls of its campaigns.
        bus.subscribe(CallConnected, campaign_calls(self.connected))
        bus.subscribe(CallEnded, campaign_calls(self.ended))
        bus.subscribe(CallWrappedUp, campaign_calls(self.wrapped_up))

    # -- campaigns (loop.py) ------------------------------------------------------------------------------

    def load(self) -> None:
        """Run state, crash recovery and 30 days of history for the estimates and abandon windows (sync)."""
        self.campaign_loop.load()

    async def start_campaign(self, name: str, by: str) -> None:
        await self.campaign_loop.start_campaign(name, by)

    async def stop_campaign(self, name: str, by: str) -> None:
        await self.campaign_loop.stop_campaign(name, by)

    async def run(self) -> None:
        await self.campaign_loop.run()

    def agents_of(self, runtime: CampaignRuntime) -> list[Agent]:
        return self.state.agents_of(runtime)

    def snapshot(self, runtime: CampaignRuntime, now: float) -> Snapshot:
        return self.campaign_loop.snapshot(runtime, now)

    def clock(self) -> float:
        """Seconds since the epoch, as the pacer and the abandon windows count them."""
        return self.state.clock()

    def status(self) -> list[dict[str, Any]]:
        return self.campaign_loop.status()

    # -- the calls it placed (placement.py) ------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return self.placement.owns(channel_id)

    async def stasis_start(self, channel_id: str, args: tuple[str, ...]) -> bool:
        """A dialled number answered (``dialer``) or AMD has its verdict (``dialer-amd``); False if not ours."""
        return await self.placement.stasis_start(channel_id, args)

    async def playback_finished(self, playback_id: str) -> bool:
        return await self.placement.playback_finished(playback_id)

    async def channel_destroyed(self, channel_id: str, cause: int) -> None:
        await self.placement.channel_destroyed(channel_id, cause)

    # -- what the ACD tells us --------------------------------------------------------------------------------

    async def connected(self, call: AcdCall) -> None:
        await self.placement.connected(call)

    async def ended(self, call: AcdCall) -> None:
        await self.placement.ended(call)

    async def wrapped_up(self, call: AcdCall) -> None:
        """The agent's wrap-up code decides what becomes of the contact (a callback, do-not-call...)."""
        await self.previews.wrapped_up(call)

    # -- previews and dispositions (previews.py) -----------------------------------------------------------

    def preview_for(self, user_id: int) -> dict[str, Any] | None:
        return self.previews.preview_for(user_id)

    def dispositions_for(self, call: AcdCall | None) -> list[dict[str, str]]:
        return self.previews.dispositions_for(call)

    async def preview_dial(self, user_id: int) -> None:
        await self.previews.preview_dial(user_id)

    async def preview_skip(self, user_id: int) -> None:
        await self.previews.preview_skip(user_id)
