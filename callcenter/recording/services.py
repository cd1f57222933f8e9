"""Recording of connected calls: start by policy, pause and resume (silence, logged), MP3 at the end.

Asterisk records the call's bridge (both parties mixed) to a WAV file in its spool; when the call
ends the file is converted to MP3 by ffmpeg in a child process (the event loop never waits on it),
written under a temporary name and renamed into ``Recordings/<day>/`` (FTPS and the panel never
see half a file), and hard-linked into the agent's unit folder for that unit's admins.

A recording whose call ended while the controller was down is found by ``sweep`` (a row still
``recording``, its WAV no longer growing) and converted then: nothing Asterisk wrote is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.acd.events import CallConnected, CallEnding
from callcenter.acd.model import AcdCall, Direction
from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.db.models import Recording, RecordingPause
from callcenter.db.writer import RecordWriter
from callcenter.errors import AriError, AriNotFound
from callcenter.recording.events import RecordingDone
from callcenter.recording.naming import day_folder, recording_file_name
from callcenter.recording.policy import combined, should_record
from callcenter.recording.settings import RecordingSettings
from callcenter.users.units import unit_files_dir, unit_of_user

log = logging.getLogger(__name__)

RECORDINGS_FOLDER = "Recordings"
# A WAV left by a call that ended while we were away is converted once it stopped growing this long.
STALE_AFTER = 15.0
# At most this many recordings share one ffmpeg run.
BATCH_MAX = 10
# How long a stopped recording may take to close its file before it is converted anyway.
STOP_WAIT = 3.0


class RecordingControl(Protocol):
    async def record_bridge(self, bridge_id: str, name: str, audio_format: str = "wav") -> None: ...
    async def mute_recording(self, name: str, muted: bool) -> None: ...
    async def stop_recording(self, name: str) -> None: ...


@dataclass
class LiveRecording:
    id: str  # also the name Asterisk records under
    call_id: str  # the ACD call's record id
    bridge_id: str
    user_id: int | None
    unit_id: int | None
    sip_username: str
    caller: str
    called: str
    unique_id: str
    started_at: datetime
    paused: bool = False
    finishing: bool = False
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return recording_file_name(self.started_at, self.sip_username, self.caller, self.called, self.unique_id)

    @property
    def relative_path(self) -> str:
        return f"{RECORDINGS_FOLDER}/{day_folder(self.started_at)}/{self.file_name}"


@dataclass(frozen=True)
class _Job:
    recording_id: str
    relative_path: str
    unit_id: int | None
    ended_at: datetime | None
    done: asyncio.Future[None]


@dataclass(frozen=True)
class Converted:
    seconds: float
    size: int


class RecordingService:
    def __init__(self, control: RecordingControl, writer: RecordWriter, db: Database, settings: RecordingSettings,
                 *, bus: Bus, files_dir: Path, spool_dir: Path, agent_policies: dict[str, str],
                 queue_policies: Callable[[str], str], campaign_policies: Callable[[str], str] = lambda _campaign: "",
                 draw: Callable[[], float] | None = None) -> None:
        self.control = control
        self.writer = writer
        self.db = db
        self.bus = bus
        self.settings = settings
        self.files_dir = files_dir
        self.spool_dir = spool_dir
        self.agent_policies = agent_policies
        self.queue_policies = queue_policies
        self.campaign_policies = campaign_policies  # the dialer's campaigns: name -> policy
        self.draw = draw
        self.live: dict[str, LiveRecording] = {}  # by recording id
        # Recordings told to stop, until Asterisk says the file is closed (RecordingFinished).
        self._stopping: dict[str, asyncio.Event] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.by_call: dict[str, str] = {}  # ACD call record id -> live recording id
        self._queue: list[_Job] = []
        self._workers: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()  # set after every conversion: tests and bench wait on it
        # The ACD's calls: one put through is recorded if its policy says so; one ending stops its recording.
        bus.subscribe(CallConnected, lambda event: self.connected(event.call) if event.bridged else None)
        bus.subscribe(CallEnding, lambda event: self.ended(event.call))

    # -- the ACD's calls (bus events) -----------------------------------------------------------------

    def policy_for(self, call: AcdCall) -> str:
        agent = call.agent
        # A campaign's call follows the campaign's policy instead of its queue's (the queue names its agents).
        if call.campaign:
            own = self.campaign_policies(call.campaign)
        else:
            own = self.queue_policies(call.queue) if call.queue else ""
        policies = [own, self.agent_policies.get(agent.extension, "") if agent else ""]
        return combined(policies, self.settings.policy)

    async def connected(self, call: AcdCall) -> None:
        """The call's customer and agent are bridged: record it if its policy says so."""
        if call.bridge_id is None or call.agent is None:
            return
        current = self.live.get(self.by_call.get(call.record_id, ""))
        if current is not None and current.bridge_id == call.bridge_id and not current.finishing:
            return
        if not should_record(self.policy_for(call), self.draw or random.random):
            return
        agent = call.agent
        outbound = call.direction is not Direction.INBOUND
        # The agent's unit now, read from the database (no cache that a unit change could leave stale):
        # the recording belongs to it for good, whatever unit the agent is in later.
        unit_id = await asyncio.to_thread(self._unit_of, agent.user_id)
        recording = LiveRecording(
            id=uuid.uuid4().hex, call_id=call.record_id, bridge_id=call.bridge_id, user_id=agent.user_id,
            unit_id=unit_id, sip_username=agent.extension,
            caller=agent.extension if outbound else call.number,
            called=call.number if outbound else (call.did or call.queue or ""),
            unique_id=call.channel_id or call.record_id, started_at=datetime.now(UTC))
        try:
            await self.control.record_bridge(call.bridge_id, recording.id)
        except AriError as exc:
            log.error("recording call %s could not start: %s", call.record_id, exc)
            return
        self.live[recording.id] = recording
        self.by_call[call.record_id] = recording.id
        row = {"id": recording.id, "linkedid": recording.unique_id, "channel_id": call.channel_id or "",
               "acd_call_id": call.record_id, "user_id": recording.user_id, "unit_id": recording.unit_id,
               "queue": call.queue, "sip_username": recording.sip_username, "caller": recording.caller[:80],
               "called": recording.called[:80], "started_at": recording.started_at, "status": "recording",
               "path": recording.relative_path}
        self.writer.add(lambda session: session.add(Recording(**row)))
        log.info("recording call %s (%s)", call.record_id, recording.file_name)

    def _unit_of(self, user_id: int) -> int | None:
        with self.db.session() as session:
            return unit_of_user(session, user_id)

    async def ended(self, call: AcdCall) -> None:
        """The call is ending: stop its recording and turn it into an MP3 once Asterisk has closed the
        file (it finishes the WAV header after answering the stop; converting earlier reads a bad header)."""
        recording = self.live.get(self.by_call.pop(call.record_id, ""))
        if recording is None or recording.finishing or recording.id in self._stopping:
            return
        closed = self._stopping[recording.id] = asyncio.Event()
        try:
            await self.control.stop_recording(recording.id)
        except AriError:
            closed.set()  # gone already (the bridge went first): nothing more will come

        async def finish_when_closed() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), STOP_WAIT)
            self._stopping.pop(recording.id, None)
            self._finish(recording)
        task = asyncio.get_running_loop().create_task(finish_when_closed())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def on_recording_ended(self, name: str, failed: bool, cause: str) -> None:
        """Asterisk's RecordingFinished/Failed: the bridge went without us stopping it (a transfer)."""
        closed = self._stopping.get(name)
        if closed is not None:
            closed.set()
            return
        recording = self.live.get(name)
        if recording is None or recording.finishing:
            return
        if failed:
            log.error("recording %s failed in Asterisk: %s", name, cause)
        self._finish(recording)

    # -- pause and resume ---------------------------------------------------------------------------

    def state(self, call_id: str) -> dict[str, bool] | None:
        recording = self.live.get(self.by_call.get(call_id, ""))
        if recording is None or recording.finishing:
            return None
        return {"active": True, "paused": recording.paused}

    async def pause(self, call_id: str, by: str, reason: str = "") -> bool:
        """Silence in the file from now on (a card number is being read...). False: nothing to pause."""
        recording = self.live.get(self.by_call.get(call_id, ""))
        if recording is None or recording.finishing or recording.paused:
            return False
        try:
            await self.control.mute_recording(recording.id, True)
        except AriNotFound:
            return False
        now = datetime.now(UTC)
        recording.paused = True
        recording.pauses.append((now, None))
        row = {"recording_id": recording.id, "paused_at": now, "paused_by": by[:80], "reason": reason[:120]}
        self.writer.add(lambda session: session.add(RecordingPause(**row)))
        log.info("recording %s paused by %s%s", recording.id, by, f" ({reason})" if reason else "")
        return True

    async def resume(self, call_id: str, by: str) -> bool:
        recording = self.live.get(self.by_call.get(call_id, ""))
        if recording is None or recording.finishing or not recording.paused:
            return False
        try:
            await self.control.mute_recording(recording.id, False)
        except AriNotFound:
            return False
        now = datetime.now(UTC)
        recording.paused = False
        recording.pauses[-1] = (recording.pauses[-1][0], now)
        recording_id = recording.id

        def write(session: Session) -> None:
            session.execute(update(RecordingPause).where(
                RecordingPause.recording_id == recording_id, RecordingPause.resumed_at.is_(None))
                .values(resumed_at=now, resumed_by=by[:80]))
        self.writer.add(write)
        log.info("recording %s resumed by %s", recording.id, by)
        return True

    # -- to MP3 -------------------------------------------------------------------------------------

    def _finish(self, recording: LiveRecording) -> None:
        recording.finishing = True
        ended_at = datetime.now(UTC)
        if recording.paused:
            recording_id = recording.id

            def close_pause(session: Session) -> None:
                session.execute(update(RecordingPause).where(
                    RecordingPause.recording_id == recording_id, RecordingPause.resumed_at.is_(None))
                    .values(resumed_at=ended_at, resumed_by="call ended"))
            self.writer.add(close_pause)
        self._enqueue(recording.id, recording.relative_path, recording.unit_id, ended_at)

    def _enqueue(self, recording_id: str, relative_path: str, unit_id: int | None,
                 ended_at: datetime | None) -> asyncio.Future[None]:
        job = _Job(recording_id, relative_path, unit_id, ended_at, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if len(self._workers) < self.settings.workers:
            worker = asyncio.get_running_loop().create_task(self._work())
            self._workers.add(worker)
        return job.done

    async def _work(self) -> None:
        # Recordings that end together (a shift's last calls, a burst) share one ffmpeg: its start-up
        # costs more than encoding a call, so a batch drains the queue several times faster.
        try:
            while self._queue:
                batch, self._queue = self._queue[:BATCH_MAX], self._queue[BATCH_MAX:]
                try:
                    results = await self.convert_many([self._paths(job) for job in batch])
                except Exception as exc:  # ffmpeg missing: every recording of the batch says so
                    results = [exc] * len(batch)
                for job, result in zip(batch, results, strict=True):
                    await self._done(job, result)
        finally:
            # Left in the same step as the empty queue was seen: a job queued from now on starts a worker.
            task = asyncio.current_task()
            if task is not None:
                self._workers.discard(task)

    def _paths(self, job: _Job) -> tuple[Path, Path, Path | None]:
        link = unit_files_dir(self.files_dir, job.unit_id) / job.relative_path if job.unit_id is not None else None
        return self.spool_dir / f"{job.recording_id}.wav", self.files_dir / job.relative_path, link

    async def _done(self, job: _Job, result: Converted | BaseException) -> None:
        wav = self.spool_dir / f"{job.recording_id}.wav"
        with self.writer.together():
            if isinstance(result, Converted):
                with contextlib.suppress(OSError):
                    wav.unlink()
                log.info("recording %s ready: %s (%.1f s, %d bytes)", job.recording_id, job.relative_path,
                         result.seconds, result.size)
                self._store_result(job.recording_id, job.ended_at, "ready", "", result)
            else:  # ffmpeg missing, disk full, empty file: say so, keep the WAV
                log.error("recording %s: converting %s failed: %s", job.recording_id, wav, result)
                self._store_result(job.recording_id, job.ended_at, "failed", str(result)[:300], None)
            seconds = round(result.seconds, 2) if isinstance(result, Converted) else None
            await self.bus.publish(RecordingDone(job.recording_id, "ready" if seconds is not None else "failed",
                                                 seconds, job.ended_at or datetime.now(UTC)))
        self.live.pop(job.recording_id, None)
        if not job.done.done():
            job.done.set_result(None)
        self.finished.set()

    def _store_result(self, recording_id: str, ended_at: datetime | None, status: str, error: str,
                      converted: Converted | None) -> None:
        values: dict[str, object] = {"status": status, "error": error}
        if ended_at is not None:
            values["ended_at"] = ended_at
        if converted is not None:
            values["seconds"] = round(converted.seconds, 2)
            values["size"] = converted.size
        self.writer.add(lambda session: session.execute(
            update(Recording).where(Recording.id == recording_id).values(**values)))

    async def convert_many(self, items: list[tuple[Path, Path, Path | None]]) -> list[Converted | BaseException]:
        """Converts (wav, mp3 target, unit link or None) items with one ffmpeg; a batch that fails is
        retried one by one, so one bad file cannot cost the others."""
        results: list[Converted | BaseException] = []
        readable: list[tuple[int, Path, Path, Path | None, float]] = []
        for index, (wav, target, link) in enumerate(items):
            try:
                seconds = await asyncio.to_thread(_wav_seconds, wav)
            except Exception as exc:
                results.append(RuntimeError(f"{wav.name}: {exc}"))
                continue
            results.append(RuntimeError("not converted"))
            readable.append((index, wav, target, link, seconds))
        if not readable:
            return results
        partials = [target.with_name(f".{target.name}.part") for _, _, target, _, _ in readable]
        for _, _, target, _, _ in readable:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        for _, wav, _, _, _ in readable:
            argv += ["-i", str(wav)]
        for number, partial in enumerate(partials):
            argv += ["-map", f"{number}:a", "-ac", "1", "-codec:a", "libmp3lame", "-b:a", f"{self.settings.bitrate}k",
                     "-f", "mp3", str(partial)]
        process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                       stderr=asyncio.subprocess.PIPE)
        _, stderr = await process.communicate()
        if process.returncode != 0:
            for partial in partials:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(partial.unlink)
            if len(readable) > 1:
                for index, wav, target, link, _ in readable:
                    results[index] = (await self.convert_many([(wav, target, link)]))[0]
                return results
            index = readable[0][0]
            results[index] = RuntimeError(
                f"ffmpeg exited with {process.returncode}: {stderr.decode(errors='replace')[-200:]}")
            return results
        for (index, _, target, link, seconds), partial in zip(readable, partials, strict=True):
            try:
                results[index] = Converted(seconds, await asyncio.to_thread(_place, partial, target, link))
            except OSError as exc:
                results[index] = exc
        return results

    # -- recovery -----------------------------------------------------------------------------------

    def _orphans(self) -> list[tuple[str, str, int | None, datetime]]:
        with self.db.session() as session:
            rows = session.execute(select(Recording.id, Recording.path, Recording.unit_id, Recording.started_at)
                                   .where(Recording.status == "recording")).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows if r[0] not in self.live]

    async def sweep(self) -> int:
        """Converts recordings of calls that ended while no controller was watching; returns how many."""
        done = 0
        for recording_id, path, unit_id, started_at in await asyncio.to_thread(self._orphans):
            wav = self.spool_dir / f"{recording_id}.wav"
            try:
                age = time.time() - wav.stat().st_mtime
            except FileNotFoundError:
                if datetime.now(UTC) - started_at > timedelta(minutes=5):
                    self._store_result(recording_id, None, "failed", "the recorded file was not found", None)
                continue
            if age < STALE_AFTER:
                continue  # still being written: a call that goes on
            log.info("recording %s: its call ended while the controller was away; converting it", recording_id)
            await self._enqueue(recording_id, path, unit_id, None)
            done += 1
        return done

    async def run_sweeper(self, every: float = 30.0) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database is away: try again later
                log.warning("looking for unconverted recordings failed: %s", exc)
            await asyncio.sleep(every)

    async def drain(self) -> None:
        """Waits until every recording handed over for conversion is converted (shutdown, tests)."""
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        while self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        rate = audio.getframerate()
        return audio.getnframes() / rate if rate else 0.0


def _place(partial: Path, target: Path, unit_link: Path | None) -> int:
    """The finished MP3 appears at once under its name (and in the unit's folder); returns its size."""
    os.replace(partial, target)
    if unit_link is not None:
        unit_link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.link(target, unit_link)
    return target.stat().st_size
