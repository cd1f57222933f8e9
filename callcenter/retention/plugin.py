"""The retention feature's pages: how long each kind of record is kept, and deleting a whole kind
(retention/http.py). The daily purge runs with the export schedule (export/plugin.py)."""

from __future__ import annotations

from callcenter.features import Core
from callcenter.retention import http
from callcenter.retention.admin import RetentionAdmin


def load(core: Core) -> None:
    core.pages(lambda app: http.install(app, RetentionAdmin(core.db, core.settings.files_dir)))
