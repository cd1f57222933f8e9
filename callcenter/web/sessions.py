"""Panel sessions: a stateless signed cookie, the logouts still to honour, and the login throttle.

The cookie is ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload))``; the payload holds the
user id, when it was issued, when it expires, the session's CSRF token and a session id. Nothing is kept
per session on the server except the ids of sessions logged out before their expiry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

SESSION_TTL = 12 * 3600
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = 300.0
THROTTLE_LOCK = 300.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class Session:
    user_id: int
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

    def issue(self, user_id: int) -> tuple[Session, str]:
        now = int(self.clock())
        session = Session(user_id=user_id, issued_at=now, expires_at=now + self.ttl,
                          csrf=secrets.token_urlsafe(24), sid=secrets.token_urlsafe(16))
        payload = json.dumps({"u": session.user_id, "iat": session.issued_at, "exp": session.expires_at,
                              "csrf": session.csrf, "sid": session.sid}, separators=(",", ":")).encode()
        body = _b64encode(payload)
        return session, f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Session | None:
        """The session behind a cookie value, or None when it is malformed, forged or expired."""
        body, dot, signature = token.partition(".")
        if not dot or not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            data = json.loads(_b64decode(body))
            session = Session(user_id=int(data["u"]), issued_at=int(data["iat"]), expires_at=int(data["exp"]),
                              csrf=str(data["csrf"]), sid=str(data["sid"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        now = self.clock()
        if now >= session.expires_at or session.issued_at > now + 60:
            return None
        return session

    def _sign(self, body: str) -> str:
        return _b64encode(hmac.new(self._key, body.encode("ascii", "replace"), hashlib.sha256).digest())


class RevokedSessions:
    """Session ids logged out before they expired; each is forgotten once its cookie would have expired."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._expiry: dict[str, int] = {}
        self.clock = clock

    def revoke(self, session: Session) -> None:
        self._prune()
        self._expiry[session.sid] = session.expires_at

    def __contains__(self, sid: object) -> bool:
        return sid in self._expiry

    def _prune(self) -> None:
        now = self.clock()
        for sid in [sid for sid, expires in self._expiry.items() if expires <= now]:
            del self._expiry[sid]


class LoginThrottle:
    """After ``failures`` wrong passwords for one login within ``window`` seconds, that login is refused
    for ``lock`` seconds, whatever the password. Kept in memory: a restart forgets it."""

    MAX_TRACKED = 10_000

    def __init__(self, failures: int = THROTTLE_FAILURES, window: float = THROTTLE_WINDOW,
                 lock: float = THROTTLE_LOCK, clock: Clock = time.monotonic) -> None:
        self.failures = failures
        self.window = window
        self.lock = lock
        self.clock = clock
        self._failed: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def locked_for(self, login: str) -> float:
        """Seconds this login is still refused (0 when it may try)."""
        key = login.casefold()
        until = self._locked_until.get(key)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._locked_until[key]
            return 0.0
        return left

    def failed(self, login: str) -> None:
        key = login.casefold()
        now = self.clock()
        if key not in self._failed and len(self._failed) >= self.MAX_TRACKED:
            self._forget_stale(now)
        times = self._failed.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.failures:
            self._locked_until[key] = now + self.lock
            del self._failed[key]

    def succeeded(self, login: str) -> None:
        self._failed.pop(login.casefold(), None)

    def _forget_stale(self, now: float) -> None:
        for key in [k for k, times in self._failed.items() if not times or times[-1] <= now - self.window]:
            del self._failed[key]
        while len(self._failed) >= self.MAX_TRACKED:  # still full: drop the oldest entries
            del self._failed[next(iter(self._failed))]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]
