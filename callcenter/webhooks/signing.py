"""How a delivery is signed (docs/webhooks.md): ``X-Callcenter-Signature: v1=<hex>`` where ``<hex>`` is
HMAC-SHA256 with the endpoint's secret over ``f"{timestamp}.{body}"`` and ``timestamp`` the unix seconds
sent in ``X-Callcenter-Timestamp``. A receiver checks both, with a tolerance against replays."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SCHEME = "v1"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``b"<timestamp>." + body``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Callcenter-Signature``."""
    return f"{SCHEME}={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, timestamp: str, body: bytes, *, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """True when ``header`` (``v1=<hex>``, several comma-separated allowed) signs ``timestamp`` and ``body``
    with ``secret`` and the timestamp is within ``tolerance`` seconds of ``now``. Constant-time compare."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    moment = int(timestamp)
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    expected = signature(secret, moment, body)
    found = False
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected.encode()):
            found = True
    return found
