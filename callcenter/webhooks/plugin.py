"""The webhooks feature (docs/webhooks.md): the service the bus subscribers call to queue an event
(``Webhooks.enqueue``, inside their RecordWriter operation's session), the background sender, and the
admin pages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.features import Core
from callcenter.recording.links import link_key, signed_link
from callcenter.secrets import load_or_create
from callcenter.webhooks import http, outbox
from callcenter.webhooks.admin import WebhookAdmin
from callcenter.webhooks.call_events import CallNotifications
from callcenter.webhooks.sender import Sender
from callcenter.webhooks.settings import WebhooksSettings


class Webhooks:
    """What the rest of the controller uses: ``enqueue`` (in the caller's transaction), ``recording_link``
    (the payloads' ``call_record_file_info.file_link``) and ``sender.run`` (the background task); ``calls``
    queues the call events (call_events.py) and takes the ledger's calls dialled from a phone."""

    calls: CallNotifications

    def __init__(self, db: Database, settings: WebhooksSettings, public_url: str, link_key: bytes) -> None:
        self.db = db
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self._link_key = link_key
        self.sender = Sender(db, settings)
        self.admin = WebhookAdmin(db)

    def enqueue(self, session: Session, event: str, payload: Mapping[str, Any], *, at: datetime) -> int:
        """Queues ``event`` for every active endpoint subscribed to it in ``session``'s transaction (it neither
        commits nor opens a session); answers how many deliveries were queued. Raises ValueError for an event
        not in webhooks/catalog.py or a payload setting ``event``/``event_id``."""
        return outbox.enqueue(session, event, payload, at=at)

    def announce(self, session: Session, event: str, build: Callable[[], Mapping[str, Any]], *,
                 at: datetime) -> int:
        """As ``enqueue``, building the payload only when an endpoint takes the event (the call and ticket
        events are queued for every call: nobody listening should cost one indexed query, not the payload)."""
        return outbox.enqueue_built(session, event, build, at=at)

    def recording_link(self, recording_id: str) -> str:
        """A signed download link of the recording, valid ``[webhooks] recording_link_hours``."""
        return signed_link(self.public_url, recording_id, self._link_key,
                           timedelta(hours=self.settings.recording_link_hours))


def load(core: Core) -> Webhooks:
    settings = core.settings
    public_url = settings.webhooks.public_url or f"http://127.0.0.1:{settings.web.port}"
    key = link_key(load_or_create(settings.var_dir).session_key)
    webhooks = Webhooks(core.db, settings.webhooks, public_url, key)
    # The call events, queued from the bus in the transaction of the records they report.
    webhooks.calls = CallNotifications(webhooks, core.records, core.bus, settings.customers.default_region)
    core.task("webhooks", webhooks.sender.run)
    core.pages(lambda app: http.install(app, webhooks.admin))
    return webhooks
