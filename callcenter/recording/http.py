"""The Recordings admin page: search the recordings in the admin's scope, listen to one, download it
(queries: recording/queries.py). Shared admin bits (scope check, form helpers, pager) are
web/admin_pages.py's; docs/recording.md describes the page."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.recording.links import SignedRecordings, link_problem
from callcenter.recording.queries import RecordingFilters, RecordingQueries, RecordingRow
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import (
    ADMIN,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    content_disposition,
    days,
    kept,
    length_text,
    page,
    page_number,
    query,
    refusal,
    size_text,
    text,
    utc_text,
)
from callcenter.web.guards import Login
from callcenter.web.pages import add_templates, pager

log = logging.getLogger(__name__)

RECORDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NO_RECORDING = "No such recording"
# (query field, label, longest value) of the search
RECORDING_FIELDS = (("from", "From", 10), ("to", "To", 10), ("agent", "Agent", 100), ("number", "Number", 80),
                    ("queue", "Queue", 40))

RECORDINGS: web.AppKey[RecordingQueries] = web.AppKey("recordings", RecordingQueries)
SIGNED: web.AppKey[SignedRecordings] = web.AppKey("signed_recordings", SignedRecordings)
routes = web.RouteTableDef()


def install(app: web.Application, queries: RecordingQueries, signed: SignedRecordings | None = None) -> None:
    """/admin/recordings and the audio of each; the shared admin pages (web/admin_pages.py) first. With
    ``signed``, also the signed download links of the webhooks (/recordings/{id}/signed, recording/links.py)."""
    app[RECORDINGS] = queries
    if signed is not None:
        app[SIGNED] = signed
        app.router.add_get("/recordings/{id}/signed", signed_download)
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/recordings", "Recordings", "nav-recordings", order=10))
    app.router.add_routes(routes)


def recording_filters(values: Mapping[str, str]) -> RecordingFilters:
    day_from, day_to = days(values)
    return RecordingFilters(day_from, day_to, text(values, "agent", "Agent", 100),
                            text(values, "number", "Number", 80), text(values, "queue", "Queue", 40))


@dataclass(frozen=True)
class RecordingLine:
    id: str
    started: str
    agent: str
    caller: str
    called: str
    queue: str
    length: str
    size: str
    status: str
    audio: str  # the player's URL, "" unless ready

    @classmethod
    def of(cls, row: RecordingRow) -> RecordingLine:
        audio = f"/admin/recordings/{quote(row.id, safe='')}/audio" if row.status == "ready" else ""
        return cls(row.id, utc_text(row.started_at), row.agent, row.caller, row.called, row.queue,
                   length_text(row.seconds), size_text(row.size), row.status, audio)


@routes.get("/admin/recordings")
@admin_page()
async def recordings_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    values = query(request.query)
    form = kept(values, RECORDING_FIELDS)
    try:
        filters, number = recording_filters(values), page_number(values)
        result = await request.app[RECORDINGS].search_recordings(login.user.id, filters, number,
                                                                 request.app[ADMIN].per_page)
    except BadInput as error:
        return page(request, login, access, "admin_recordings.html", 400, error=str(error), form=form,
                    lines=None, pager=None)
    except CallcenterError as error:
        status, message = refusal(error)
        return page(request, login, access, "admin_recordings.html", status, error=message, form=form,
                    lines=None, pager=None)
    return page(request, login, access, "admin_recordings.html", error="", form=form,
                lines=[RecordingLine.of(row) for row in result.rows],
                pager=pager("/admin/recordings", form, result))


@routes.get("/admin/recordings/{id}/audio")
@admin_page()
async def recording_audio(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The MP3 (``Range`` requests answered by ``FileResponse``: the player seeks); 404 whether the
    recording is missing, not ready or out of the admin's scope."""
    recording_id = request.match_info["id"]
    found = None
    if RECORDING_ID.fullmatch(recording_id):
        found = await request.app[RECORDINGS].recording_file(login.user.id, recording_id)
    if found is None:
        return page(request, login, access, "refused.html", 404, message=NO_RECORDING)
    path, name = found
    download = request.query.get("download") == "1"
    headers = {"Content-Type": "audio/mpeg"}
    if download:
        headers["Content-Disposition"] = content_disposition(name)
        log.info("admin: %s downloads recording %s", login.user.login, recording_id)
    elif request.headers.get("Range", "bytes=0-").startswith("bytes=0-"):
        log.info("admin: %s plays recording %s", login.user.login, recording_id)
    return web.FileResponse(path, headers=headers)


async def signed_download(request: web.Request) -> web.StreamResponse:
    """The MP3 behind a signed, unexpired link, without a login (recording/links.py); 403 with the reason
    when the signature is wrong or the link expired, 404 when the recording is gone."""
    recording_id = request.match_info["id"]
    signed = request.app[SIGNED]
    problem = link_problem(signed.key, recording_id, request.query.get("expires", ""),
                           request.query.get("sig", "")) if RECORDING_ID.fullmatch(recording_id) else NO_RECORDING
    if problem:
        return web.Response(status=403, text=problem + "\n", headers={"Cache-Control": "no-store"})
    found = await signed.recording_file(recording_id)
    if found is None:
        return web.Response(status=404, text=NO_RECORDING + "\n", headers={"Cache-Control": "no-store"})
    path, name = found
    log.info("recording %s downloaded with a signed link", recording_id)
    return web.FileResponse(path, headers={"Content-Type": "audio/mpeg", "Cache-Control": "private, no-store",
                                           "Content-Disposition": content_disposition(name)})
