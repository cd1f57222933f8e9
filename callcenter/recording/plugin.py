"""The recording feature: connected calls recorded by policy (recording/services.py), the files'
sweeper, and the admin pages to search and hear them (recording/http.py)."""

from __future__ import annotations

from callcenter.features import Core
from callcenter.recording import api_http, http, stasis
from callcenter.recording.links import SignedRecordings, link_key
from callcenter.recording.queries import RecordingQueries
from callcenter.recording.services import RecordingService
from callcenter.secrets import load_or_create


def load(core: Core) -> RecordingService:
    settings = core.settings
    recording = RecordingService(
        core.ari, core.records, core.db, settings.recording, bus=core.bus, files_dir=settings.files_dir,
        spool_dir=core.layout.host("spool", "recording"), agent_policies=dict(settings.recording_agents),
        queue_policies=lambda queue: settings.queues[queue].record if queue in settings.queues else "",
        campaign_policies=lambda name: settings.campaigns[name].record if name in settings.campaigns else "")
    stasis.register(core.router, recording)
    core.task("recording-sweeper", recording.run_sweeper)
    core.drain(recording.drain)
    # The webhooks' signed download links: a key derived from the session key, no new secret.
    signed = SignedRecordings(core.db, settings.files_dir, link_key(load_or_create(settings.var_dir).session_key))
    core.pages(lambda app: http.install(app, RecordingQueries(core.db, settings.files_dir), signed))
    core.pages(lambda app: api_http.install(app, RecordingQueries(core.db, settings.files_dir)))
    return recording
