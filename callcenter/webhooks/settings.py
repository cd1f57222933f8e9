"""The webhooks' settings: the ``[webhooks]`` section (docs/webhooks.md)."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class WebhooksSettings:
    # Seconds a receiver has to answer one delivery; longer is a failed attempt.
    timeout: float = opt(10.0, lo=0.1, hi=120)
    # The wait after the first failed attempt, doubled after each further one up to max_retry_seconds (with
    # +-20 % jitter).
    first_retry_seconds: float = opt(5.0, lo=0.01, hi=3600)
    max_retry_seconds: float = opt(3600.0, lo=0.01, hi=86400)
    # A delivery is retried this long after its first attempt, then marked failed (at least a day).
    give_up_hours: float = opt(24.0, lo=24, hi=24 * 30)
    # How many endpoints are sent to at once (each endpoint is always in order, one delivery at a time).
    parallel: int = opt(8, lo=1, hi=256)
    # How often the sender looks for new deliveries in the outbox (one indexed query).
    poll_seconds: float = opt(0.3, lo=0.05, hi=10)
    # Base URL of links in payloads (signed recording downloads); empty: http://127.0.0.1:<[web] port>.
    public_url: str = opt("", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")
    # How long a recording's signed download link works.
    recording_link_hours: float = opt(168.0, lo=0.1, hi=24 * 365)
