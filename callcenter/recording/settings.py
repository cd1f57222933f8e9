"""The recording feature's settings: the ``[recording]`` section and the ``[recording_agents]`` table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from callcenter.settings_file import SettingsFile, opt

#: A recording policy: always, never or a percentage of calls ("25%"); queues and campaigns also allow "".
RECORDING_POLICY_PATTERN = r"^(always|never|(100|[1-9]?[0-9])%)$"


@dataclass(frozen=True)
class RecordingSettings:
    # Calls that no queue, campaign or agent policy covers: always, never or a percentage ("25%").
    policy: str = opt("never", pattern=RECORDING_POLICY_PATTERN)
    # MP3 bitrate in kbit/s (ffmpeg is always given it: its default for 8 kHz voice is far lower).
    bitrate: int = opt(32, lo=8, hi=320)
    # Conversions to MP3 running at once.
    workers: int = opt(2, lo=1, hi=32)


def parse_recording_agents(source: SettingsFile) -> dict[str, str]:
    """``[recording_agents]``: extension -> recording policy of that agent's calls."""
    raw = source.table("recording_agents", {})
    if not isinstance(raw, dict):
        raise source.error("[recording_agents]", 'must be a table of extension = "always" | "never" | "NN%"',
                           source.line_of("recording_agents"))
    for ext, policy in raw.items():
        if not re.fullmatch(r"[1-9][0-9]{1,9}", ext) or not isinstance(policy, str) or not re.fullmatch(
                RECORDING_POLICY_PATTERN, policy):
            raise source.error(f"[recording_agents] {ext}",
                               'must be extension = "always", "never" or a percentage like "25%"',
                               source.line_of("recording_agents", ext))
    return dict(raw)
