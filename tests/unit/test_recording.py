"""Recording: policy, file names from hostile caller IDs, and the service over a fake Asterisk with a
real database, real ffmpeg and real files (the end-to-end test with Asterisk is in test_records.py)."""

from __future__ import annotations

import asyncio
import os
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.acd.model import AcdCall, Agent, Direction
from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.db.models import Recording, RecordingPause
from callcenter.db.writer import RecordWriter
from callcenter.errors import AriNotFound
from callcenter.recording.naming import recording_file_name, safe_field
from callcenter.recording.policy import combined, should_record
from callcenter.recording.services import RecordingService
from callcenter.recording.settings import RecordingSettings
from callcenter.users import services as users
from callcenter.users import units


def test_policies_combine_always_then_never_then_the_highest_share() -> None:
    assert combined(["", ""], "never") == "never"
    assert combined(["", ""], "25%") == "25%"
    assert combined(["never", "always"], "never") == "always"
    assert combined(["never", "50%"], "always") == "never"
    assert combined(["10%", "30%"], "never") == "30%"
    with pytest.raises(ValueError, match="recording policy"):
        combined(["sometimes"], "never")
    assert should_record("30%", lambda: 0.29) and not should_record("30%", lambda: 0.30)
    assert should_record("always", lambda: 0.99) and not should_record("never", lambda: 0.0)
    assert not should_record("0%", lambda: 0.0) and should_record("100%", lambda: 0.999)


def test_file_name_keeps_only_safe_characters_of_caller_values() -> None:
    started = datetime(2026, 11, 30, 8, 5, 9, tzinfo=UTC)
    name = recording_file_name(started, "2003", '+49 (30) "x"/../1-2;rm', "1205", "1764489909.42")
    assert name == "2026_11_30_08_05_09-2003-+4930x12rm-1205-1764489909.42.mp3"
    assert recording_file_name(started, "2003", "\x00\n", "", "acd-1/../x") == \
        "2026_11_30_08_05_09-2003-unknown-unknown-acd_1_.._x.mp3"
    assert safe_field("Ünïcødé") == "ncd" and len(safe_field("9" * 200)) == 40


class FakeAsterisk:
    """Records what the service asks; writes the WAV Asterisk would (a second of tone)."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.calls: list[tuple[str, ...]] = []

    async def record_bridge(self, bridge_id: str, name: str, audio_format: str = "wav") -> None:
        self.calls.append(("record", bridge_id, name))
        write_wav(self.spool / f"{name}.wav", seconds=1.0)

    async def mute_recording(self, name: str, muted: bool) -> None:
        self.calls.append(("mute" if muted else "unmute", name))

    async def stop_recording(self, name: str) -> None:
        self.calls.append(("stop", name))
        raise AriNotFound("POST", f"/recordings/live/{name}/stop", 404, "gone with its bridge")


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        frames = int(8000 * seconds)
        out.writeframes(b"".join(((i * 37) % 2000 - 1000).to_bytes(2, "little", signed=True) for i in range(frames)))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'r.db'}")
    database.migrate()
    return database


def queue_call(user_id: int, channel_id: str = "1764489909.42") -> AcdCall:
    call = AcdCall(channel_id, Direction.INBOUND, "sales", "+49 30 \"evil\"", did="1205")
    call.agent = Agent(user_id, "2003", "Agent Carol")
    call.bridge_id = f"acd-call-{call.record_id}"
    return call


async def test_recorded_call_is_converted_placed_and_linked_into_the_unit(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        carol = users.add_user(session, name="Carol", extension="2003", org_unit="Team").user
        user_id, unit_id = carol.id, carol.org_unit_id
    spool, files = tmp_path / "spool", tmp_path / "files"
    fake = FakeAsterisk(spool)
    writer = RecordWriter(db, "test records")
    service = RecordingService(fake, writer, db, RecordingSettings(policy="never", bitrate=24), bus=Bus(),
                               files_dir=files, spool_dir=spool, agent_policies={"2003": "always"},
                               queue_policies=lambda q: "")
    call = queue_call(user_id)
    await service.connected(call)
    assert fake.calls[0][0] == "record" and service.state(call.record_id) == {"active": True, "paused": False}
    assert await service.pause(call.record_id, "carol", "card number")
    assert not await service.pause(call.record_id, "carol")  # already paused
    await service.ended(call)  # stop finds the recording gone with its bridge: still converted
    await service.drain()
    await writer.flush()
    with db.session() as session:
        row = session.scalar(select(Recording))
        pause = session.scalar(select(RecordingPause))
    assert row is not None and row.status == "ready" and row.unit_id == unit_id
    assert row.caller == '+49 30 "evil"' and row.called == "1205" and row.path.endswith(
        "-2003-+4930evil-1205-1764489909.42.mp3")
    mp3 = files / row.path
    assert mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3") and abs(float(row.seconds or 0) - 1.0) < 0.01
    # The unit admin's copy is a hard link.
    assert mp3.stat().st_ino == (files / "units" / str(unit_id) / row.path).stat().st_ino
    assert pause is not None and (pause.paused_by, pause.reason, pause.resumed_by) == ("carol", "card number",
                                                                                       "call ended")
    assert not list(spool.glob("*.wav"))  # the WAV goes once the MP3 is in place
    assert [c[0] for c in fake.calls] == ["record", "mute", "stop"]


async def test_a_unit_change_applies_to_the_next_recording_at_once_and_not_to_earlier_ones(
        db: Database, tmp_path: Path) -> None:
    """Before: the controller cached users' units until a SIGHUP, so after a move on the web page new
    recordings still went to the old unit's folder."""
    with db.session() as session:
        carol = users.add_user(session, name="Carol", extension="2003", org_unit="Sales").user
        user_id, sales = carol.id, carol.org_unit_id
        support = units.save_unit(session, "Support").id
    spool, files = tmp_path / "spool", tmp_path / "files"
    fake = FakeAsterisk(spool)
    writer = RecordWriter(db, "test records")
    service = RecordingService(fake, writer, db, RecordingSettings(policy="always", bitrate=24), bus=Bus(),
                               files_dir=files, spool_dir=spool, agent_policies={}, queue_policies=lambda q: "")
    first = queue_call(user_id, "1764489909.1")
    await service.connected(first)
    with db.session() as session:  # moved while the service runs, as the units page does
        units.save_unit(session, "Support", members=["2003"])
    second = queue_call(user_id, "1764489909.2")
    await service.connected(second)
    await service.ended(first)
    await service.ended(second)
    await service.drain()
    await writer.flush()
    with db.session() as session:
        placed = {row.linkedid: row.unit_id for row in session.scalars(select(Recording))}
    assert placed == {"1764489909.1": sales, "1764489909.2": support}
    for linkedid, unit in placed.items():
        assert list((files / "units" / str(unit)).rglob(f"*{linkedid}.mp3"))


async def test_policy_never_records_nothing_and_a_lost_wav_is_converted_by_the_sweep(
        db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        user_id = users.add_user(session, name="Carol", extension="2003").user.id
    spool, files = tmp_path / "spool", tmp_path / "files"
    fake = FakeAsterisk(spool)
    writer = RecordWriter(db, "test records")
    service = RecordingService(fake, writer, db, RecordingSettings(policy="always"), bus=Bus(), files_dir=files,
                               spool_dir=spool, agent_policies={}, queue_policies=lambda q: "never")
    await service.connected(queue_call(user_id))
    assert fake.calls == []
    # A recording whose call ended while the controller was down: a row, a WAV nobody converted.
    recording = RecordingService(fake, writer, db, RecordingSettings(policy="always"), bus=Bus(), files_dir=files,
                                 spool_dir=spool, agent_policies={}, queue_policies=lambda q: "")
    await recording.connected(queue_call(user_id))
    await writer.flush()
    restarted = RecordingService(fake, writer, db, RecordingSettings(), bus=Bus(), files_dir=files, spool_dir=spool,
                                 agent_policies={}, queue_policies=lambda q: "")
    assert await restarted.sweep() == 0  # the WAV is still fresh: maybe a call going on
    for wav in spool.glob("*.wav"):
        os.utime(wav, (0, 0))
    assert await restarted.sweep() == 1
    await writer.flush()
    with db.session() as session:
        row = session.scalar(select(Recording))
    assert row is not None and row.status == "ready" and (files / row.path).exists()


async def test_recordings_ending_together_share_ffmpeg_runs_and_a_bad_file_fails_alone(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.session() as session:
        user_id = users.add_user(session, name="Carol", extension="2003").user.id
    spool, files = tmp_path / "spool", tmp_path / "files"
    fake = FakeAsterisk(spool)
    writer = RecordWriter(db, "test records")
    service = RecordingService(fake, writer, db, RecordingSettings(policy="always", workers=2), bus=Bus(),
                               files_dir=files, spool_dir=spool, agent_policies={}, queue_policies=lambda q: "")
    runs: list[int] = []
    real_exec = asyncio.create_subprocess_exec

    async def counting_exec(*argv: str, **kwargs: object) -> asyncio.subprocess.Process:
        runs.append(argv.count("-i"))
        return await real_exec(*argv, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(asyncio, "create_subprocess_exec", counting_exec)
    calls = [queue_call(user_id, f"1764489909.{n}") for n in range(23)]
    for call in calls:
        await service.connected(call)
    broken = spool / f"{fake.calls[5][2]}.wav"
    broken.write_bytes(b"RIFF" + b"\x00" * 40 + b"not audio at all" * 10)
    for call in calls:
        await service.ended(call)
    await service.drain()
    await writer.flush()
    with db.session() as session:
        statuses = sorted(session.scalars(select(Recording.status)))
    assert statuses == ["failed"] + ["ready"] * 22
    # 23 recordings in far fewer ffmpeg runs than 23 (batches of up to 10; the failed batch retried alone).
    assert max(runs) > 1 and sum(1 for n in runs if n > 1) <= 3, runs
