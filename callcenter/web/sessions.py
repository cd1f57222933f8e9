"""Panel sessions: a signed cookie that names the user and their session epoch.

The cookie is ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload))``; the payload holds the
user id, the user's session epoch when it was issued, when it was issued, when it expires, the session's
CSRF token and a session id. The epoch is the server-side state: it lives in the database
(``User.session_epoch``), and raising it (logout, a password or role change, disabling the user) ends
every session issued before, in every controller process and across restarts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_TTL = 12 * 3600

Clock = Callable[[], float]


@dataclass(frozen=True)
class Session:
    user_id: int
    epoch: int
    issued_at: int
    expires_at: int
    csrf: str
    sid: str


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookies with one HMAC key (the install's ``session_key``)."""

    def __init__(self, key: bytes, ttl: int = SESSION_TTL, clock: Clock = time.time) -> None:
        if len(key) < 16:
            raise ValueError("the panel's session key must be at least 16 bytes")
        self._key = key
        self.ttl = ttl
        self.clock = clock

    def issue(self, user_id: int, epoch: int) -> tuple[Session, str]:
        now = int(self.clock())
        session = Session(user_id=user_id, epoch=epoch, issued_at=now, expires_at=now + self.ttl,
                          csrf=secrets.token_urlsafe(24), sid=secrets.token_urlsafe(16))
        payload = json.dumps({"u": session.user_id, "e": session.epoch, "iat": session.issued_at,
                              "exp": session.expires_at, "csrf": session.csrf, "sid": session.sid},
                             separators=(",", ":")).encode()
        body = _b64encode(payload)
        return session, f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Session | None:
        """The session behind a cookie value, or None when it is malformed, forged or expired."""
        body, dot, signature = token.partition(".")
        if not dot or not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            data = json.loads(_b64decode(body))
            session = Session(user_id=int(data["u"]), epoch=int(data["e"]), issued_at=int(data["iat"]),
                              expires_at=int(data["exp"]), csrf=str(data["csrf"]), sid=str(data["sid"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        now = self.clock()
        if now >= session.expires_at or session.issued_at > now + 60:
            return None
        return session

    def _sign(self, body: str) -> str:
        return _b64encode(hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest())
