"""The admin pages of every feature on one application, as the composition root (callcenter/app.py) installs
them: ``install_admin(app, admin_features(db, files_dir))``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from callcenter.bus import Bus
from callcenter.cdr import http as cdr_http
from callcenter.cdr.queries import CdrQueries
from callcenter.db.engine import Database
from callcenter.dialer import http as dialer_http
from callcenter.dialer.admin import DialerAdmin
from callcenter.dialer.settings import CampaignSpec
from callcenter.monitor import http as monitor_http
from callcenter.monitor.admin import MonitorAdmin
from callcenter.recording import http as recording_http
from callcenter.recording.queries import RecordingQueries
from callcenter.retention import http as retention_http
from callcenter.retention.admin import RetentionAdmin
from callcenter.users import units_http
from callcenter.users.access import AdminScopes
from callcenter.users.units_admin import UnitsAdmin
from callcenter.web import admin_pages


@dataclass(frozen=True)
class AdminFeatures:
    scopes: AdminScopes
    recordings: RecordingQueries
    cdrs: CdrQueries
    retention: RetentionAdmin
    units: UnitsAdmin
    monitoring: MonitorAdmin
    dialer: DialerAdmin


def admin_features(db: Database, files_dir: Path, *, campaigns: Mapping[str, CampaignSpec] | None = None,
                   on_monitor_groups_changed: Callable[[], None] | None = None) -> AdminFeatures:
    return AdminFeatures(AdminScopes(db), RecordingQueries(db, files_dir), CdrQueries(db),
                         RetentionAdmin(db, files_dir), UnitsAdmin(db, Bus()),
                         MonitorAdmin(db, on_groups_changed=on_monitor_groups_changed),
                         DialerAdmin(db, files_dir, campaigns=campaigns))


def install_admin(app: web.Application, features: AdminFeatures) -> web.Application:
    admin_pages.install(app, features.scopes)
    recording_http.install(app, features.recordings)
    cdr_http.install(app, features.cdrs)
    retention_http.install(app, features.retention)
    units_http.install(app, features.units)
    monitor_http.install(app, features.monitoring)
    dialer_http.install(app, features.dialer)
    return app
