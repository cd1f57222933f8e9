"""The monitoring feature: supervisors listen, whisper or barge into agents' calls (monitor/services.py)
by ``#44`` or from the panel, within their permission groups (monitor/groups.py, monitor/http.py)."""

from __future__ import annotations

import logging

from callcenter.acd.services import AcdService
from callcenter.features import Core
from callcenter.monitor import http, stasis
from callcenter.monitor.admin import MonitorAdmin
from callcenter.monitor.groups import Permissions, sync_groups
from callcenter.monitor.services import LiveLeg, MonitorService, UserRef

log = logging.getLogger(__name__)


def load(core: Core, acd: AcdService) -> MonitorService:
    settings, directory = core.settings, core.directory

    def user_by_extension(extension: str) -> UserRef | None:
        user_id = directory.ids.get(extension)
        return UserRef(user_id, extension, directory.names.get(extension, extension)) if user_id else None

    def acd_leg(extension: str) -> LiveLeg | None:
        leg = acd.live_leg(extension)
        return LiveLeg(*leg) if leg is not None else None

    monitor = MonitorService(core.ari, core.records, Permissions({}), user_by_extension=user_by_extension,
                             acd_leg=acd_leg, bus=core.bus, claims=core.router.claims_for(stasis.FEATURE),
                             dial_timeout=settings.asterisk.dial_timeout, notify=acd.notify)
    stasis.register(core.router, monitor)

    def sync_and_load_groups() -> None:
        with core.db.session() as session:
            for problem in sync_groups(session, settings.monitor_groups):
                log.warning("%s", problem)
        monitor.reload_permissions(core.db)

    core.prepare(sync_and_load_groups)
    core.pages(lambda app: http.install(app, MonitorAdmin(
        core.db, on_groups_changed=lambda: monitor.reload_permissions(core.db))))
    return monitor
