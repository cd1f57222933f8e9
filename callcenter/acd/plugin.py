"""The ACD feature: queues, agents and their calls (acd/services.py), and the agent and supervisor panel
over them (acd/panel.py, acd/http.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from callcenter.acd import api_http, http, records, stasis
from callcenter.acd.panel import AcdPanel, PanelDialer
from callcenter.acd.records import AcdRecorder
from callcenter.acd.services import AcdService
from callcenter.features import Core
from callcenter.monitor.services import MonitorService
from callcenter.recording.services import RecordingService
from callcenter.users.accounts import UserAccounts
from callcenter.users.events import UnitsChanged


def load(core: Core, card_tickets: records.CardTickets | None = None) -> AcdService:
    """``card_tickets``: the caller's open tickets for the screen pop (the tickets feature's)."""
    settings = core.settings
    acd = AcdService(core.ari, AcdRecorder(core.records), settings.acd, settings.pause_reasons,
                     settings.wrapup_codes, core.prompts, bus=core.bus, claims=core.router.claims_for(stasis.FEATURE),
                     dial_timeout=settings.asterisk.dial_timeout, extensions=core.directory.extensions,
                     card_lookup=records.card_lookup(core.db, core.settings.customers.default_region,
                                                     card_tickets),
                     phone_state=lambda extension: core.presence.states.get(extension, ""))
    stasis.register(core.router, acd)

    def load_state() -> None:
        state = records.load_state(core.db, settings.queues, settings.acd.estimate_calls, datetime.now(UTC))
        acd.load(state.queues, state.agents, state.figures, state.handle_times, state.callbacks)

    core.prepare(load_state)
    return acd


def load_panel(core: Core, acd: AcdService, accounts: UserAccounts, recording: RecordingService,
               monitor: MonitorService, dialer: PanelDialer, ivr_flows: Callable[[], list[str]]) -> AcdPanel:
    """The agent page, the wallboard and their APIs: what an agent or a supervisor does goes to the ACD,
    recording, monitoring or the dialer."""
    panel = AcdPanel(acd, core.db, ivr_flows, accounts=accounts, recording=recording, monitor=monitor,
                     dialer=dialer, phone_states=lambda: core.presence.states,
                     user_names=lambda: core.directory.names, user_ids=lambda: core.directory.ids,
                     unit_of=core.directory.unit_of)
    def install(app: web.Application) -> None:
        http.install(app, panel)
        api_http.install(app, panel)
        core.bus.subscribe(UnitsChanged, lambda _event: http.units_changed(app))

    core.pages(install)
    return panel
