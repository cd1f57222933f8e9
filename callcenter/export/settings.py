"""The daily export's settings: the ``[export]`` section (when the export and the retention purge run)."""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.settings_file import opt


@dataclass(frozen=True)
class ExportSettings:
    # When the daily CDR and queue-call files of the previous day are written (UTC, HH:MM:SS).
    at: str = opt("01:00:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
    # When the retention purge runs (UTC).
    purge_at: str = opt("02:00:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
