"""Calls: every channel that enters the app on a DID or a feature code (calls/services.py), and the call
ledger that turns Asterisk's CEL log into calls, legs and CDRs (calls/ledger.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from callcenter.calls import stasis
from callcenter.calls.journeys import Journeys
from callcenter.calls.ledger import CelIngestor
from callcenter.calls.services import CallService
from callcenter.calls.settings import DidRoute
from callcenter.cdr.rates import load_rate_table
from callcenter.features import Core

log = logging.getLogger(__name__)


def load(core: Core, has_flow: Callable[[str], bool]) -> CallService:
    """``has_flow``: whether an IVR flow of that name is loaded (a DID may route to one)."""
    journeys = Journeys(core.bus, core.records.together)
    calls = CallService(core.ari, core.settings.dids, core.prompts, core.bus, journeys)
    stasis.register(core.router, calls, core.ari)
    core.prepare(lambda: check_dids(core.settings.dids, has_flow))
    return calls


def load_ledger(core: Core) -> CelIngestor:
    settings = core.settings
    ledger = CelIngestor(core.layout.cel_log, core.db, {did: route.name for did, route in settings.dids.items()},
                         load_rate_table(settings.cdr), settings.acd.trunk)
    core.task("cel-ingest", lambda: ledger.run(settings.cdr.poll_interval))
    core.after_asterisk(ledger.read_to_the_end)
    return ledger


def check_dids(dids: Mapping[str, DidRoute], has_flow: Callable[[str], bool]) -> None:
    for did, route in dids.items():
        kind, _, target = route.route.partition(":")
        if kind == "ivr" and not has_flow(target):
            log.error("DID %s routes to IVR flow %r, which is not loaded: callers hear "
                      "'not in service' until it is", did, target)
