"""The CDR feature's pages: search the call detail records and download them as CSV (cdr/http.py).
The records themselves come from the call ledger (calls/plugin.py)."""

from __future__ import annotations

from callcenter.cdr import api_http, http
from callcenter.cdr.queries import CdrQueries
from callcenter.features import Core


def load(core: Core) -> None:
    core.pages(lambda app: http.install(app, CdrQueries(core.db)))
    core.pages(lambda app: api_http.install(app, CdrQueries(core.db)))
