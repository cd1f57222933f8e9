"""What admins pull out of the system: recordings (MP3 on disk, on FTPS, paused parts silent), CDRs with
rates for trunk calls, the daily CSV files. Real Asterisk, sipp callers, agents and a sipp "PSTN"."""

from __future__ import annotations

import array
import asyncio
import csv
import ftplib
import io
import re
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db.models import AcdCall, Cdr, OrgUnit, Recording, RecordingPause, User
from tests.integration.conftest import AgentFactory, PhoneFactory
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
        if (row is not None and row.status != "recording") or time.monotonic() > deadline:
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


def ftps(system: System, login: str, password: str) -> ftplib.FTP_TLS:
    client = ftplib.FTP_TLS(timeout=10)
    client.connect("127.0.0.1", system.settings.ftps.port)
    client.login(login, password)
    client.prot_p()
    return client


def admin_password(system: System) -> str:
    return system.panel_password("admin")


def download(client: ftplib.FTP_TLS, path: str) -> bytes:
    chunks: list[bytes] = []
    client.retrbinary(f"RETR {path}", chunks.append)
    return b"".join(chunks)


@pytest.fixture
def units_restored(fresh_system: System) -> Iterator[None]:
    """The test moves agents into units of their own: they go back after it, so later tests (the
    wallboard's, scoped by unit) find the demo units they expect."""
    with fresh_system.db.session() as session:
        before = {user_id: unit_id for user_id, unit_id in session.execute(select(User.id, User.org_unit_id))}
    yield
    with fresh_system.db.session() as session:
        for user in session.scalars(select(User).where(User.id.in_(before))):
            user.org_unit_id = before[user.id]


@pytest.mark.usefixtures("units_restored")
async def test_recorded_call_is_an_mp3_with_a_gap_where_it_was_paused(fresh_system: System,
                                                                     agent: AgentFactory) -> None:
    for login, unit, member in (("unitadm", "Team Carol", "2003"), ("otheradm", "Team Alice", "2001")):
        added = fresh_system.cli("users", "add", "--name", login, "--login", login, "--roles", "admin",
                                 "--password", "Unit-admin-pw-1")
        assert added.returncode == 0, added.stderr
        saved = fresh_system.cli("units", "save", unit, "--members", member, "--admins", login)
        assert saved.returncode == 0, saved.stderr
    # A recording takes the agent's unit from the database as it starts (no controller cache to
    # reload): the membership the CLI committed is all it needs.
    with fresh_system.db.session() as session:
        carol_unit = session.scalar(select(OrgUnit.id).join(User, User.org_unit_id == OrgUnit.id)
                                    .where(User.extension == "2003", OrgUnit.name == "Team Carol"))
    assert carol_unit is not None
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
    assert row.unit_id == carol_unit
    mp3 = fresh_system.settings.files_dir / row.path
    # Downloaded over FTPS by the top admin within 5 s of the hang-up.
    top = await asyncio.to_thread(ftps, fresh_system, "admin", admin_password(fresh_system))
    served = await asyncio.to_thread(download, top, row.path)
    assert time.monotonic() - hung_up < 5
    assert served == mp3.read_bytes()
    top.quit()
    # The admin of Carol's unit finds it in the same place of their own tree; Alice's unit admin does not.
    mine = await asyncio.to_thread(ftps, fresh_system, "unitadm", "Unit-admin-pw-1")
    assert await asyncio.to_thread(download, mine, row.path) == served
    mine.quit()
    other = await asyncio.to_thread(ftps, fresh_system, "otheradm", "Unit-admin-pw-1")
    with pytest.raises(ftplib.error_perm):
        await asyncio.to_thread(download, other, row.path)
    other.quit()

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


CDR_HEADER = "id,calldate,src_id,src,clid,dst,dst_name,duration,billsec,disposition,destination,rate,charge,t_cause"


async def test_cdr_csv_rows_for_answered_busy_unanswered_failed_and_trunk_calls(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    await phone("2003", "busy")
    await phone("2004", "ring")
    pstn = sipp.pstn(fresh_system.sip_port, fresh_system.settings.sip.trunk_port)
    await pstn.start()
    before = fresh_system.cdr_count()
    password = fresh_system.password("2001")

    def call(number: str, **kwargs: object) -> sipp.Sipp:
        return sipp.caller(fresh_system.sip_port, number, user="2001", password=password, **kwargs)
    try:
        # Five calls at once, each from its own sipp (one process would reuse a Via branch).
        results = await asyncio.gather(call("2002", hangup_after_ms=2000).run(30),
                                       call("2003", reject_code=486).run(30),
                                       call("2004", reject_code=480).run(30),
                                       call("2005", reject_code=480).run(30),
                                       call("004915112345678", hangup_after_ms=3000).run(30))
    finally:
        await pstn.stop()
    assert all(r.ok for r in results), [r.output for r in results if not r.ok]
    cdrs = sorted(fresh_system.wait_cdrs(before, 5), key=lambda c: ["2002", "2003", "2004", "2005",
                                                                     "004915112345678"].index(c.dst))
    days = sorted({c.calldate.date().isoformat() for c in cdrs})
    rows: dict[str, list[str]] = {}
    for day in days:
        done = fresh_system.cli("export", "--date", day)
        assert done.returncode == 0, done.stderr
        text = (fresh_system.settings.files_dir / "CDRs" / f"{day}.csv").read_bytes().decode()
        lines = text.split("\r\n")
        assert lines[0] == CDR_HEADER and lines[-1] == ""
        rows.update((line.split(",", 1)[0], line) for line in lines[1:-1])

    def expected(cdr: Any, rest: str) -> str:
        return (f"{cdr.id},{cdr.calldate:%Y-%m-%d %H:%M:%S},2001,2001,\"\"\"Agent Alice\"\" <2001>\","
                f"{rest.format(d=cdr.duration, b=cdr.billsec)}")
    answered, busy, unanswered, failed, trunk = cdrs
    assert rows[str(answered.id)] == expected(answered, "2002,Agent Bob,{d},{b},ANSWERED,,,,Normal Clearing")
    assert rows[str(busy.id)] == expected(busy, "2003,Agent Carol,{d},0,BUSY,,,,User busy")
    # RFC 4180: a field with a comma is quoted.
    assert rows[str(unanswered.id)] == expected(
        unanswered, '2004,Agent Dave,{d},0,NO ANSWER,,,,"User alerting, no answer"')
    assert rows[str(failed.id)] == expected(failed, "2005,Supervisor Sam,{d},0,FAILED,,,,Subscriber absent")
    # 0.12 per minute, per second billing: charge = billsec * 0.12 / 60, 4 decimals.
    charge = f"{trunk.billsec * 0.12 / 60:.4f}"
    assert 2 <= trunk.billsec <= 4
    assert rows[str(trunk.id)] == expected(
        trunk, f"004915112345678,,{{d}},{{b}},ANSWERED,Germany Mobile,0.1200,{charge},Normal Clearing")


async def test_controller_killed_between_hang_up_and_cdr_write_still_gets_the_row(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2002", "answer")
    before = fresh_system.cdr_count()
    call = sipp.caller(fresh_system.sip_port, "2002", user="2001", password=fresh_system.password("2001"),
                       hangup_after_ms=2500)
    await call.start()
    await asyncio.sleep(1.0)
    fresh_system.stop(signal.SIGKILL)
    result = await call.wait(30)  # the call ends while no controller runs
    assert result.ok, result.output
    await asyncio.sleep(0.5)
    assert fresh_system.cdr_count() == before
    await asyncio.to_thread(fresh_system.start)
    [cdr] = fresh_system.wait_cdrs(before)
    assert (cdr.src_id, cdr.dst, cdr.disposition) == ("2001", "2002", "ANSWERED") and 2 <= cdr.billsec <= 3


QUEUE_HEADER = ("id,user_id,location_id,call_id,queue_id,ddi,cli,callers,agents,start_time,hold_time,ring_time,"
                "conn_time,final_dst_type,final_dst_id,disposition,t_cause")


def queue_files(system: System, day: str) -> dict[str, list[list[str]]]:
    done = system.cli("export", "--date", day)
    assert done.returncode == 0, done.stderr
    files: dict[str, list[list[str]]] = {}
    with zipfile.ZipFile(system.settings.files_dir / "QueueCalls" / f"{day}-queue-calls.zip") as archive:
        assert archive.namelist() == [f"{day}-queue_call.csv", f"{day}-queue_user_call.csv"]
        for name in archive.namelist():
            text = archive.read(name).decode()
            assert text.startswith(QUEUE_HEADER + "\r\n")
            files[name.split("-")[-1]] = list(csv.reader(io.StringIO(text)))[1:]
    return files


async def test_queue_call_csvs_for_answered_after_two_agents_voicemail_overflow_and_abandoned(
        fresh_system: System, agent: AgentFactory) -> None:
    since = now()
    # Nobody logged in: a caller to "idle" waits, then gives up.
    # "tovoicemail" has nobody logged in either: its caller goes to voicemail 2004 at once.
    abandoned, voicemail = await asyncio.gather(
        sipp.caller(fresh_system.sip_port, "1200", caller="0401000001", hangup_after_ms=1500).run(30),
        sipp.caller(fresh_system.sip_port, "1206", caller="0401000002", hangup_after_ms=4000).run(30))
    alice = await agent("2001", "ring")  # logs in first: idle longest, offered first, never answers
    await alice.wait_view(lambda v: v["agent"]["state"] == "ready", 10, "2001 ready before 2002 logs in")
    await agent("2002")
    answered = await sipp.caller(fresh_system.sip_port, "1200", caller="0401000003", hangup_after_ms=9000).run(40)
    assert abandoned.ok and voicemail.ok and answered.ok, (abandoned.output, voicemail.output, answered.output)
    deadline = time.monotonic() + 15
    while True:
        with fresh_system.db.session() as session:
            ended = session.scalars(select(AcdCall).where(AcdCall.entered_at >= since,
                                                          AcdCall.ended_at.is_not(None))).all()
        if len(ended) >= 3:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    with fresh_system.db.session() as session:
        calls = {c.number: c for c in session.scalars(select(AcdCall).where(AcdCall.entered_at >= since))}
        ids = {extension: user_id for extension, user_id in session.execute(select(User.extension, User.id))}
    files = queue_files(fresh_system, since.date().isoformat())
    by_call = {row[0]: row for row in files["queue_call.csv"]}
    users_rows: dict[str, list[list[str]]] = {}
    for row in files["queue_user_call.csv"]:
        users_rows.setdefault(row[0].rsplit("-", 1)[0], []).append(row)

    gone = by_call[calls["0401000001"].id]
    assert gone[4:9] == ["idle", "1200", "0401000001", "1", "0"]  # queue, ddi, cli, callers, agents
    assert (gone[1], gone[11], gone[12], gone[13:]) == ("", "0", "0", ["", "", "0", "H"])
    assert 1 <= int(gone[10]) <= 2 and calls["0401000001"].id not in users_rows

    to_mailbox = by_call[calls["0401000002"].id]
    assert to_mailbox[4:7] == ["tovoicemail", "1206", "0401000002"]
    assert to_mailbox[13:] == ["V", "2004", "1", "C"] and int(to_mailbox[10]) <= 1
    [mailbox_row] = users_rows[calls["0401000002"].id]
    assert mailbox_row[13:] == ["V", "2004", "1", "C"] and mailbox_row[1] == ""

    taken = by_call[calls["0401000003"].id]
    assert taken[1] == str(ids["2002"]) and taken[4:9] == ["idle", "1200", "0401000003", "1", "2"]
    assert taken[13:] == ["U", "2002", "2", "C"]
    # Waited while 2001 rang (5 s) and 2002 answered; talked for the rest of the caller's 9 s.
    assert 5 <= int(taken[10]) <= 8 and 5 <= int(taken[11]) <= 7 and abs(int(taken[10]) + int(taken[12]) - 9) <= 1
    first, second = users_rows[calls["0401000003"].id]
    assert (first[1], first[13:]) == (str(ids["2001"]), ["U", "2001", "1", "H"]) and 4 <= int(first[11]) <= 6
    assert (second[1], second[13:]) == (str(ids["2002"]), ["U", "2002", "2", "C"]) and second[12] == taken[12]
    # The queue call points at the caller's CDR.
    with fresh_system.db.session() as session:
        cdr_ids = {str(i) for i in session.scalars(select(Cdr.id))}
    assert taken[3] in cdr_ids
    # A rerun writes the same bytes.
    zip_path = fresh_system.settings.files_dir / "QueueCalls" / f"{since.date().isoformat()}-queue-calls.zip"
    first_bytes = zip_path.read_bytes()
    queue_files(fresh_system, since.date().isoformat())
    assert zip_path.read_bytes() == first_bytes
