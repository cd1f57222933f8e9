"""The dialer feature: campaigns placed through the ACD (dialer/services.py), and the admin pages for
campaigns, contact lists and do-not-call numbers (dialer/http.py)."""

from __future__ import annotations

from callcenter.acd.services import AcdService
from callcenter.dialer import http, stasis
from callcenter.dialer.admin import DialerAdmin
from callcenter.dialer.services import DialerService
from callcenter.features import Core


def load(core: Core, acd: AcdService) -> DialerService:
    settings = core.settings
    dialer = DialerService(core.ari, acd, core.db, core.records, settings.campaigns, core.prompts,
                           default_trunk=settings.acd.trunk, bus=core.bus,
                           claims=core.router.claims_for(stasis.FEATURE))
    stasis.register(core.router, dialer)
    core.prepare(dialer.load)
    core.task("dialer", dialer.run)
    core.pages(lambda app: http.install(app, DialerAdmin(core.db, settings.files_dir, campaigns=settings.campaigns)))
    return dialer
