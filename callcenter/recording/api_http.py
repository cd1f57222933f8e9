"""/api/v1/recordings: the recordings a token's user may hear (an admin: by the unit stored on each
recording, the same queries as the Recordings page, recording/queries.py) and the MP3 of one (docs/api.md)."""

from __future__ import annotations

import logging

from aiohttp import web

from callcenter.recording.http import RECORDING_ID
from callcenter.recording.queries import RecordingFilters, RecordingQueries, RecordingRow
from callcenter.users.tokens import TokenUser
from callcenter.web.admin_pages import content_disposition
from callcenter.web.api import (
    DAY_RANGE_PARAMS,
    Operation,
    Param,
    add_route,
    api_error,
    day_param,
    paged,
    pagination,
    text_param,
)

log = logging.getLogger(__name__)

RECORDING_QUERIES: web.AppKey[RecordingQueries] = web.AppKey("api_recording_queries", RecordingQueries)
NO_RECORDING = "No such recording (missing, not ready or out of the token's scope)"

RECORDING_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "string"}, "started_at": {"type": "string", "format": "date-time"},
    "agent": {"type": "string"}, "caller": {"type": "string"}, "called": {"type": "string"},
    "queue": {"type": "string"}, "seconds": {"type": ["number", "null"]}, "size": {"type": ["integer", "null"]},
    "status": {"type": "string", "enum": ["recording", "ready", "failed"]},
    "download": {"type": ["string", "null"]}}}


def install(app: web.Application, queries: RecordingQueries) -> None:
    app[RECORDING_QUERIES] = queries
    add_route(app, "GET", "/api/v1/recordings", list_recordings, Operation(
        "Recordings in the token user's scope, newest first", roles=("admin",), paged=True,
        response=RECORDING_SCHEMA, params=(
            *DAY_RANGE_PARAMS,
            Param("agent", "An extension or login, or part of a name"),
            Param("number", "Part of the caller or called number"),
            Param("queue", "A queue's name"))))
    add_route(app, "GET", "/api/v1/recordings/{id}/audio", recording_audio, Operation(
        "The MP3 of a ready recording in the token user's scope", roles=("admin",),
        params=(Param("id", "The recording's id", where="path"),), content_type="audio/mpeg"))


def recording_item(row: RecordingRow) -> dict[str, object]:
    return {"id": row.id, "started_at": row.started_at.isoformat(), "agent": row.agent, "caller": row.caller,
            "called": row.called, "queue": row.queue, "seconds": row.seconds, "size": row.size,
            "status": row.status,
            "download": f"/api/v1/recordings/{row.id}/audio" if row.status == "ready" else None}


async def list_recordings(request: web.Request, who: TokenUser) -> web.StreamResponse:
    values = request.query
    page, per_page = pagination(request)
    filters = RecordingFilters(day_param(values, "from"), day_param(values, "to"), text_param(values, "agent", 100),
                               text_param(values, "number", 80), text_param(values, "queue", 40))
    result = await request.app[RECORDING_QUERIES].search_recordings(who.user_id, filters, page, per_page)
    return paged([recording_item(row) for row in result.rows], page, per_page, result.pages, result.total)


async def recording_audio(request: web.Request, who: TokenUser) -> web.StreamResponse:
    """404 whether the recording is missing, not ready or out of scope."""
    recording_id = request.match_info["id"]
    found = None
    if RECORDING_ID.fullmatch(recording_id):
        found = await request.app[RECORDING_QUERIES].recording_file(who.user_id, recording_id)
    if found is None:
        return api_error(404, NO_RECORDING, "not-found")
    path, name = found
    log.info("api: token %d (%s) downloads recording %s", who.token_id, who.login, recording_id)
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg",
                                           "Content-Disposition": content_disposition(name)})
