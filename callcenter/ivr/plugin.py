"""The IVR feature: flows from ivr_flows/ (watched), run on the channels other features hand over."""

from __future__ import annotations

from pathlib import Path

from callcenter.features import Core
from callcenter.ivr import stasis
from callcenter.ivr.records import PathWriter
from callcenter.ivr.registry import FlowRegistry
from callcenter.ivr.services import IvrService


def load(core: Core) -> IvrService:
    settings = core.settings
    flows = FlowRegistry(Path(settings.paths.ivr_dir).resolve(), core.prompts.exists)
    ivr = IvrService(core.ari, flows, core.prompts, PathWriter(core.db), core.db,
                     panel_url=f"http://127.0.0.1:{settings.web.port}", bus=core.bus,
                     claims=core.router.claims_for(stasis.FEATURE))
    stasis.register(core.router, ivr)
    core.prepare(flows.reload)
    core.task("ivr-paths", ivr.writer.run)
    core.task("ivr-watch", flows.watch)
    core.drain(ivr.close)
    return ivr
