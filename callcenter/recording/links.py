"""Signed, expiring download links of recordings (the ``call_record_file_info.file_link`` of the webhooks,
docs/webhooks.md): ``<base>/recordings/<id>/signed?expires=<unix seconds>&sig=<hex>`` where ``sig`` is
HMAC-SHA256 over ``"<id>\\n<expires>"``. Whoever holds the link may download that recording until it
expires, without a login; changing the id or the expiry breaks the signature.

The key is derived from the controller's ``session_key`` (callcenter/secrets.py) with HMAC and a fixed
label, so no new secret is stored and the derived key cannot sign panel sessions."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import Recording
from callcenter.db.queries import in_thread

LABEL = b"callcenter/recording-links/v1"
EXPIRED = "This download link has expired: ask for a new one"
INVALID = "This download link is not valid (it was changed or cut short)"


def link_key(session_key: str) -> bytes:
    """The links' key, derived from the controller's session key."""
    return hmac.new(session_key.encode(), LABEL, hashlib.sha256).digest()


def _signature(key: bytes, recording_id: str, expires: int) -> str:
    return hmac.new(key, f"{recording_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_link(base_url: str, recording_id: str, key: bytes, ttl: timedelta, *,
                now: float | None = None) -> str:
    """A link that downloads the recording without a login until ``ttl`` from now."""
    expires = int((time.time() if now is None else now) + ttl.total_seconds())
    query = urlencode({"expires": expires, "sig": _signature(key, recording_id, expires)})
    return f"{base_url.rstrip('/')}/recordings/{quote(recording_id, safe='')}/signed?{query}"


def link_problem(key: bytes, recording_id: str, expires: str, sig: str, *, now: float | None = None) -> str:
    """"" when the link's signature is right and it has not expired, else what is wrong (for a 403)."""
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12 or len(sig) != 64:
        return INVALID
    if not hmac.compare_digest(sig.encode(), _signature(key, recording_id, int(expires)).encode()):
        return INVALID
    if int(expires) <= (time.time() if now is None else now):
        return EXPIRED
    return ""


@dataclass(frozen=True)
class SignedRecordings:
    """What the signed route needs: the key and where the files are."""

    db: Database
    files_dir: Path
    key: bytes

    async def recording_file(self, recording_id: str) -> tuple[Path, str] | None:
        """(the MP3's path, its file name) of a ready recording whose file exists, else None. No scope: the
        signature is the permission."""
        def find(session: Session) -> tuple[Path, str] | None:
            recording = session.get(Recording, recording_id)
            if recording is None or recording.status != "ready" or not recording.path:
                return None
            root = self.files_dir.resolve()
            path = (root / recording.path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                return None
            return path, path.name

        return await in_thread(self.db, find)
