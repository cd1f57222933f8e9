"""What admins pull out of the system: recordings (MP3 on disk, on FTPS, paused parts silent), CDRs with
rates for trunk calls, the daily CSV files. Real Asterisk, sipp callers, agents and a sipp "PSTN"."""

from __future__ import annotations

import array
import asyncio
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.models import Recording, RecordingPause
from tests.integration.conftest import AgentFactory
from tests.support import sipp
from tests.support.system import System

pytestmark = pytest.mark.integration

NAME_RE = re.compile(r"^(\d{4})_(\d\d)_(\d\d)_(\d\d)_(\d\d)_(\d\d)-2003-0305550101-1205-([A-Za-z0-9._]+)\.mp3$")


def now() -> datetime:
    return datetime.now(UTC)


def wait_recording(system: System, since: datetime, timeout: float = 20) -> Recording:
    deadline = time.monotonic() + timeout
    while True:
        with system.db.session() as session:
            row = session.scalar(select(Recording).where(Recording.started_at >= since)
                                 .order_by(Recording.started_at))
        if row is not None and row.status != "recording" or time.monotonic() > deadline:
            assert row is not None and row.status == "ready", \
                f"recording: {row and (row.status, row.error)}\n{system.log_tail()}"
            return row
        time.sleep(0.05)


def pcm_levels(mp3: Path, window: float = 0.25) -> list[float]:
    """RMS level of each ``window`` seconds of the decoded file (8 kHz, 16-bit mono)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(mp3), "-ac", "1", "-ar", "8000", "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    samples = array.array("h", raw)
    size = int(8000 * window)
    levels = []
    for start in range(0, len(samples) - size + 1, size):
        chunk = samples[start:start + size]
        levels.append((sum(s * s for s in chunk) / size) ** 0.5)
    return levels


def probe(mp3: Path) -> dict[str, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration,bit_rate:stream=codec_name",
                          "-of", "default=noprint_wrappers=1", str(mp3)], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


async def test_recorded_call_is_an_mp3_with_a_gap_where_it_was_paused(fresh_system: System,
                                                                     agent: AgentFactory) -> None:
    client = await agent("2003")
    since = now()
    call = sipp.caller(fresh_system.sip_port, "1205", caller="0305550101", caller_name="Rec Caller",
                       hangup_after_ms=6500)
    await call.start()
    deadline = time.monotonic() + 10
    while True:
        view = await client.view()
        if view["call"] and (view["call"].get("recording") or {}).get("active"):
            break
        if time.monotonic() > deadline:
            await call.stop()
            raise AssertionError(f"no recording shown: {view['call']} {(await call.wait(5)).output}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)
    await client.act("record_pause")
    assert (await client.view())["call"]["recording"] == {"active": True, "paused": True}
    await asyncio.sleep(2.0)
    await client.act("record_resume")
    result = await call.wait(30)
    hung_up = time.monotonic()
    assert result.ok, result.output
    row = wait_recording(fresh_system, since)
    mp3 = fresh_system.settings.files_dir / row.path
    assert mp3.exists()
    # On disk (where FTPS serves it) within the limit of 5 s after the hang-up.
    assert time.monotonic() - hung_up < 5

    match = NAME_RE.match(mp3.name)
    assert match, mp3.name
    assert row.path == f"Recordings/{row.started_at:%Y-%m-%d}/{mp3.name}"
    assert (row.sip_username, row.caller, row.called, row.queue) == ("2003", "0305550101", "1205", "recorded")
    info = probe(mp3)
    assert info["codec_name"] == "mp3" and abs(int(info["bit_rate"]) - 32000) < 2000, info
    # About as long as the conversation (6.5 s after the caller was answered and bridged).
    assert 5.0 < float(info["duration"]) < 7.5, info
    assert abs(float(row.seconds or 0) - float(info["duration"])) < 0.3

    levels = pcm_levels(mp3)
    loud = max(levels)
    assert loud > 300, "no audio in the recording"
    # Paused from about 1.5 s to 3.5 s: silence there, audio before and after.
    assert max(levels[int(2.0 / 0.25):int(3.0 / 0.25)]) < loud / 50, levels
    assert max(levels[int(0.25 / 0.25):int(1.25 / 0.25)]) > loud / 10, levels
    assert max(levels[int(4.0 / 0.25):int(5.5 / 0.25)]) > loud / 10, levels

    with fresh_system.db.session() as session:
        pauses = list(session.scalars(select(RecordingPause).where(RecordingPause.recording_id == row.id)))
    assert len(pauses) == 1 and pauses[0].paused_by == "2003" and pauses[0].resumed_by == "2003"
    assert pauses[0].resumed_at is not None and 1.5 < (pauses[0].resumed_at - pauses[0].paused_at).total_seconds() < 3
    # Nothing left in Asterisk's spool: the WAV went once the MP3 was there.
    assert not list(fresh_system.layout.host("spool", "recording").glob(f"{row.id}*"))
