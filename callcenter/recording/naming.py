"""The MP3 file name of a recording (REC-1):
``YYYY_mm_dd_HH_mm_ss-SIP_USERNAME-CALLER_ID-CALLED_NO-UNIQUEID.mp3``.

The fields come partly from callers (their caller ID), so each is reduced to characters that are
safe in a file name, an FTP path and a URL, with ``-`` reserved as the separator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[^0-9A-Za-z+]")
_UNSAFE_ID = re.compile(r"[^0-9A-Za-z.]")
FIELD_MAX = 40


def safe_field(value: str, fallback: str = "unknown") -> str:
    """Keeps letters, digits and a leading-style ``+``; drops everything else (quotes, slashes,
    spaces, control characters, ``-``). Empty after cleaning: ``fallback``."""
    cleaned = _UNSAFE.sub("", value)[:FIELD_MAX]
    return cleaned or fallback


def recording_file_name(started_at: datetime, sip_username: str, caller_id: str, called_no: str,
                        unique_id: str) -> str:
    stamp = started_at.astimezone(UTC).strftime("%Y_%m_%d_%H_%M_%S")
    unique = _UNSAFE_ID.sub("_", unique_id)[:64] or "unknown"
    return (f"{stamp}-{safe_field(sip_username)}-{safe_field(caller_id)}-{safe_field(called_no)}"
            f"-{unique}.mp3")


def day_folder(started_at: datetime) -> str:
    """Recordings/<YYYY-MM-DD>/: one folder a day keeps FTP listings short."""
    return started_at.astimezone(UTC).strftime("%Y-%m-%d")
