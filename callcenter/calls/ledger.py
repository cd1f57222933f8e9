"""The call ledger: Asterisk's channel event log (CEL) turned into calls, legs, events and CDRs.

Asterisk appends one JSON line per channel event to ``cel.jsonl`` as it happens (cel_custom). The
controller reads the file from a cursor it stores in the same transaction as the rows it writes, so
a crash of the controller, of the database or of Asterisk loses nothing and writes nothing twice:
after a restart it reads on from the last committed position.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from callcenter import metrics
from callcenter.calls.events import DirectCall, DirectCallHook
from callcenter.cdr.builder import CdrRow, build_cdr, direct_outbound, endpoint_of, hangup_cause
from callcenter.cdr.rates import RateTable
from callcenter.db.engine import Database
from callcenter.db.models import (
    AcdCall,
    Call,
    CallEvent,
    CallLeg,
    Cdr,
    CdrUser,
    DialerAttempt,
    IngestCursor,
    MonitorSession,
    User,
)
from callcenter.monitor.events import FEATURE_PREFIX, SUPERVISOR_ARG, is_monitor_code

log = logging.getLogger(__name__)
SNOOP_PREFIX = "Snoop/"

CURSOR = "cel"
LOST_CAUSE = "Asterisk stopped"
MAX_BATCH_BYTES = 1 << 20
DIRECTIONS = {"from-pstn": "inbound", "from-users": "internal"}


@dataclass(frozen=True)
class CelRecord:
    event: str
    time: datetime
    caller_name: str
    caller_num: str
    exten: str
    context: str
    channel: str
    app: str
    app_data: str
    uniqueid: str
    linkedid: str
    peer: str
    extra: dict[str, Any]
    extra_text: str

    @classmethod
    def from_json(cls, line: str) -> CelRecord:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for key in ("eventtype", "eventtime", "uniqueid", "linkedid"):
            if not data.get(key):
                raise ValueError(f"no {key}")
        extra_text = str(data.get("eventextra") or "")
        extra: dict[str, Any] = {}
        if extra_text.startswith("{"):
            try:
                extra = json.loads(extra_text)
            except ValueError:
                extra = {}
        return cls(
            event=str(data["eventtype"]),
            time=datetime.fromtimestamp(float(data["eventtime"]), tz=UTC),
            caller_name=str(data.get("name", "")),
            caller_num=str(data.get("num", "")),
            exten=str(data.get("exten", "")),
            context=str(data.get("context", "")),
            channel=str(data.get("channame", "")),
            app=str(data.get("appname", "")),
            app_data=str(data.get("appdata", "")),
            uniqueid=str(data["uniqueid"]),
            linkedid=str(data["linkedid"]),
            peer=str(data.get("peer", "")),
            extra=extra,
            extra_text=extra_text,
        )


class LedgerBatch:
    """Applies CEL records to the calls in one session (one transaction).

    The calls and channels a batch names are fetched in two queries up front and new rows are
    inserted together at commit: per-event round trips made the ledger the controller's main cost.
    """

    def __init__(self, session: Session, names: dict[str, str] | None = None, rates: RateTable | None = None,
                 trunk: str = "pstn", direct_call_hooks: Sequence[DirectCallHook] = ()) -> None:
        self.session = session
        self.direct_call_hooks = direct_call_hooks
        self.rates = rates
        self.trunk = trunk
        self._user_ids: dict[str, int] = {}
        self.calls: dict[str, Call] = {}
        self.legs: dict[str, CallLeg] = {}
        # Events are inserted in one statement at the end: (call, leg, columns) until ids exist.
        self.new_events: list[tuple[Call, CallLeg, dict[str, Any]]] = []
        self._names = names
        self._sip_users: frozenset[str] | None = None

    def prefetch(self, records: Sequence[CelRecord]) -> None:
        linkedids = list({r.linkedid for r in records} - self.calls.keys())
        uniqueids = list({r.uniqueid for r in records} - self.legs.keys())
        for chunk in _chunks(linkedids):
            self.calls.update((c.linkedid, c) for c in self.session.scalars(
                select(Call).where(Call.linkedid.in_(chunk))))
        for chunk in _chunks(uniqueids):
            self.legs.update((leg.uniqueid, leg) for leg in self.session.scalars(
                select(CallLeg).where(CallLeg.uniqueid.in_(chunk))))

    def _call(self, linkedid: str, when: datetime) -> Call:
        call = self.calls.get(linkedid)
        if call is None:
            call = Call(linkedid=linkedid, started_at=when, state="active", direction="", src="", dst="", legs=[])
            self.session.add(call)
            self.calls[linkedid] = call
        return call

    def _leg(self, record: CelRecord, call: Call, move: bool = True) -> CallLeg:
        leg = self.legs.get(record.uniqueid)
        if leg is None:
            leg = CallLeg(uniqueid=record.uniqueid, call=call, started_at=record.time,
                          channel=record.channel, caller_num=record.caller_num,
                          caller_name=record.caller_name, exten=record.exten, context=record.context,
                          dial_status="")
            self.session.add(leg)
            self.legs[record.uniqueid] = leg
        elif move and leg.call is not call:
            # Bridging gave this channel another linkedid: it now belongs to that call, events too.
            leg.call = call
            self.new_events = [(call if event_leg is leg else event_call, event_leg, columns)
                               for event_call, event_leg, columns in self.new_events]
            if leg.id is not None:
                self.session.execute(update(CallEvent).where(CallEvent.leg_id == leg.id)
                                     .values(call_id=call.id).execution_options(synchronize_session=False))
        return leg

    def apply(self, record: CelRecord) -> None:
        if record.channel.startswith(SNOOP_PREFIX):
            # A snoop is no party of a call, but it can be the last channel holding a call's linkedid (a
            # supervisor's, taken on when they shared a bridge): its LINKEDID_END ends that call.
            known = self.calls.get(record.linkedid)
            if record.event == "LINKEDID_END" and known is not None:
                self.finish(known, record.time)
            return
        known_leg = self.legs.get(record.uniqueid)
        if known_leg is not None and known_leg.uniqueid == known_leg.call.linkedid and record.event != "LINKEDID_END":
            # A channel that started a call stays its call's origin whatever linkedid a bridge gives it later:
            # Asterisk gives every channel in a bridge the oldest linkedid there, so a person put through to an
            # agent's kept line (DIA-6), older than any call, would otherwise become part of the agent's line.
            call, leg = known_leg.call, known_leg
        else:
            call = self._call(record.linkedid, record.time)
            # LINKEDID_END names the linkedid that ended, which its channel may have left already.
            leg = self._leg(record, call, move=record.event != "LINKEDID_END")
        is_origin = record.uniqueid == call.linkedid
        if record.event != "CHAN_START" and not leg.caller_num and record.caller_num:
            # A channel the controller originates (a dialer call on the trunk) is created before the caller
            # ID it presents is set: its CHAN_START shows none, the events after it do.
            leg.caller_num, leg.caller_name = record.caller_num, leg.caller_name or record.caller_name
            if is_origin and not call.src:
                call.src = record.caller_num
        if record.event == "CHAN_START":
            leg.started_at = record.time
            leg.channel, leg.exten, leg.context = record.channel, record.exten, record.context
            leg.caller_num, leg.caller_name = record.caller_num, record.caller_name
            if is_origin:
                call.started_at = record.time
                call.src, call.dst = record.caller_num, record.exten
                call.direction = DIRECTIONS.get(record.context, "")
        elif record.event == "ANSWER":
            if leg.answered_at is None:
                leg.answered_at = record.time
            if is_origin and call.answered_at is None:
                call.answered_at = record.time
        elif record.event == "HANGUP":
            leg.hangup_cause = hangup_cause(record.extra.get("hangupcause"),
                                            str(record.extra.get("hangupsource", "") or ""), record.channel)
            leg.dial_status = str(record.extra.get("dialstatus", "") or leg.dial_status)
        elif record.event == "CHAN_END":
            leg.ended_at = record.time
            if is_origin and record.linkedid != call.linkedid:
                # Its call's own linkedid ended when a bridge gave it another (below): it ends with it.
                self.finish(call, record.time)
        elif record.event == "LINKEDID_END":
            # Not while the channel that started the call is up with another linkedid (above).
            origin = next((other for other in call.legs if other.uniqueid == call.linkedid), None)
            if origin is None or origin.ended_at is not None:
                self.finish(call, record.time)
        self.new_events.append((call, leg, {
            "event_type": record.event, "event_time": record.time, "app": record.app,
            "app_data": record.app_data, "peer": record.peer, "extra": record.extra_text}))

    def store_events(self) -> None:
        """Flushes calls and legs (they get their ids), then inserts every event in one go."""
        self.session.flush()
        if self.new_events:
            self.session.execute(insert(CallEvent), [
                {"call_id": call.id, "leg_id": leg.id, **columns} for call, leg, columns in self.new_events])
            self.new_events = []

    def _directory(self) -> tuple[dict[str, str], frozenset[str]]:
        if self._sip_users is None:
            users = [(ext, name, user_id) for ext, name, user_id in
                     self.session.execute(select(User.extension, User.name, User.id)) if ext]
            self._sip_users = frozenset(ext for ext, _, _ in users)
            self._names = {**(self._names or {}), **{ext: name for ext, name, _ in users}}
            self._user_ids = {ext: user_id for ext, _, user_id in users}
        return self._names or {}, self._sip_users

    def _placed_for(self, uniqueid: str) -> str | None:
        """The number the ACD dialled on a channel it created (click-to-call, callbacks)."""
        number = self.session.scalar(select(AcdCall.number).where(AcdCall.channel_id == uniqueid).limit(1))
        return str(number) if number else None

    def _dialer_number(self, uniqueid: str) -> str | None:
        """The number the outbound dialer called on a trunk channel it created."""
        number = self.session.scalar(select(DialerAttempt.number).where(DialerAttempt.channel_id == uniqueid)
                                     .limit(1))
        return str(number) if number else None

    def _dialer_agent(self, uniqueid: str) -> str | None:
        """The extension of the agent the outbound dialer put the person on this trunk channel through to."""
        extension = self.session.scalar(select(User.extension).join(DialerAttempt, DialerAttempt.agent_id == User.id)
                                        .where(DialerAttempt.channel_id == uniqueid).limit(1))
        return str(extension) if extension else None

    def _monitored(self, origin: CallLeg) -> str | None:
        """The extension a supervisor's call was monitoring: the one after ``#44`` they dialled, or, for
        a call the panel rang them with, the agent of the monitoring session its Stasis arguments name."""
        if is_monitor_code(origin.exten):
            return origin.exten[len(FEATURE_PREFIX):]
        stasis_args = [columns["app_data"] for _call, leg, columns in self.new_events
                       if leg is origin and columns["event_type"] == "APP_START" and columns["app"] == "Stasis"]
        if origin.id is not None:
            stasis_args += self.session.scalars(select(CallEvent.app_data).where(
                CallEvent.call_id == origin.call_id, CallEvent.leg_id == origin.id,
                CallEvent.event_type == "APP_START", CallEvent.app == "Stasis"))
        for data in stasis_args:
            args = str(data).split(",")
            if len(args) > 2 and args[1] == SUPERVISOR_ARG:
                agent = self.session.scalar(select(MonitorSession.agent).where(MonitorSession.id == args[2]))
                return str(agent) if agent else None
        return None

    def finish(self, call: Call, when: datetime, lost: bool = False) -> None:
        """The call is over: its CDR is written (``lost``: Asterisk stopped under it)."""
        call.ended_at = when
        if call.state == "ended":
            return  # its CDR exists
        legs = list(call.legs)
        if not legs:
            call.state = "merged"  # every channel moved to another call
            return
        call.state = "ended"
        names, sip_users = self._directory()
        row = build_cdr(call, legs, names, sip_users, self.rates, self.trunk, self._placed_for, self._dialer_number,
                        self._monitored, self._dialer_agent)
        if lost:
            row = dataclasses.replace(row, t_cause=LOST_CAUSE)
        cdr = Cdr(call=call, linkedid=call.linkedid, **row.__dict__)
        # Whose call it was: every user whose phone took part (the unit admins' view, CDR-5).
        users_in_call = {self._user_ids[e] for e in (endpoint_of(leg.channel) for leg in legs) if e in self._user_ids}
        # Each with the unit they are in as the call ends, read now (not cached): the CDR stays with it.
        units: dict[int, int | None] = {}
        if users_in_call:
            units = {user_id: unit for user_id, unit in self.session.execute(
                select(User.id, User.org_unit_id).where(User.id.in_(sorted(users_in_call))))}
        cdr.user_links = [CdrUser(user_id=user_id, unit_id=units.get(user_id)) for user_id in sorted(users_in_call)]
        self.session.add(cdr)
        metrics.CDR_WRITTEN.labels(row.disposition).inc()
        if self.direct_call_hooks and not lost:
            self._direct_call(call, legs, sip_users, row)

    def _direct_call(self, call: Call, legs: list[CallLeg], sip_users: frozenset[str], row: CdrRow) -> None:
        found = direct_outbound(call, legs, sip_users, self.trunk)
        user_id = self._user_ids.get(found[0]) if found is not None else None
        if found is None or user_id is None:
            return
        answered = row.billsec > 0 or row.disposition == "ANSWERED"
        facts = DirectCall(call.linkedid, user_id, found[0], found[1], row.calldate,
                           row.calldate + timedelta(seconds=row.duration), answered, row.billsec)
        for hook in self.direct_call_hooks:
            hook(self.session, facts)


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _file_id(path: Path, stat: os.stat_result) -> str:
    """Identifies one incarnation of the log: a new file may get the old one's inode number."""
    with open(path, "rb") as source:
        head = source.read(256)
    return f"{stat.st_dev}:{stat.st_ino}:{zlib.crc32(head):08x}"


def read_lines(path: Path, offset: int, limit: int = MAX_BATCH_BYTES) -> tuple[list[tuple[int, str]], int]:
    """Complete lines from ``offset`` on (each with its offset) and the offset after the last one."""
    with open(path, "rb") as source:
        source.seek(offset)
        chunk = source.read(limit)
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    lines: list[tuple[int, str]] = []
    position = offset
    for raw in chunk[: end + 1].splitlines(keepends=True):
        lines.append((position, raw.decode("utf-8", errors="replace").strip()))
        position += len(raw)
    return lines, offset + end + 1


class CelIngestor:
    """Tails Asterisk's CEL file into the database. ``poll`` is blocking: run it in a thread."""

    def __init__(self, path: Path, db: Database, did_names: dict[str, str], rates: RateTable | None = None,
                 trunk: str = "pstn") -> None:
        self.path = path
        self.db = db
        self.did_names = did_names
        self.rates = rates
        self.trunk = trunk
        self.bad_lines = 0
        # Told of each call a user dialled out from their phone, in the transaction of its CDR.
        self.direct_call_hooks: list[DirectCallHook] = []
        self._committed: tuple[int, int, int] | None = None  # (device, inode, offset) last stored
        self.error = ""  # why storing failed last, until it works again (the health check shows it)

    async def run(self, poll_interval: float) -> None:
        """Reads the log for ever. When the database is away nothing is lost: the file stays where it is
        and is read on from the last stored offset once the database is back."""
        delay = poll_interval
        failing = False
        while True:
            try:
                count = await asyncio.to_thread(self.poll)
                if failing:
                    log.info("database back: call events are stored again")
                    failing = False
                self.error = ""
                delay = poll_interval
            except Exception as exc:  # the database went away: we read on later
                self.error = f"{type(exc).__name__}: {exc}"
                metrics.LEDGER_ERRORS.inc()
                if not failing:
                    log.error("storing call events failed (%s); retrying", self.error)
                    failing = True
                count = 0
                delay = min(5.0, max(delay * 2, 0.5))
            if count == 0:
                await asyncio.sleep(delay)

    def settle_after_restart(self, stopped_at: datetime | None) -> None:
        """Asterisk started afresh: every call still open died with the previous one. Its events are read
        to the end, then each such call is closed (at ``stopped_at``, else its last event) with its CDR."""
        self.read_to_the_end()
        closed = self.close_lost_calls(stopped_at)
        if closed:
            log.warning("closed %d call(s) lost when Asterisk stopped, with their CDRs", closed)

    def read_to_the_end(self) -> None:
        """Everything the log holds now (blocking): at a restart, and when the controller stops."""
        while self.poll():
            pass

    def _unchanged(self, stat: os.stat_result) -> bool:
        return self._committed == (stat.st_dev, stat.st_ino, stat.st_size)

    def poll(self) -> int:
        """Reads what is new and stores it in one transaction; returns the number of records."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        if self._unchanged(stat):
            return 0  # the common idle case: no database round trip
        with self.db.session() as session:
            cursor = session.get(IngestCursor, CURSOR)
            file_id = _file_id(self.path, stat)
            if cursor is None:
                cursor = IngestCursor(name=CURSOR, file_id=file_id, offset=0)
                session.add(cursor)
            if cursor.file_id != file_id or stat.st_size < cursor.offset:
                log.warning("CEL file %s was replaced or truncated; reading it from the start", self.path)
                cursor.file_id, cursor.offset = file_id, 0
            if stat.st_size == cursor.offset:
                self._committed = (stat.st_dev, stat.st_ino, cursor.offset)
                return 0
            lines, new_offset = read_lines(self.path, cursor.offset)
            records = list(self._records(lines))
            batch = LedgerBatch(session, dict(self.did_names), self.rates, self.trunk, self.direct_call_hooks)
            with session.no_autoflush:
                batch.prefetch(records)
                for record in records:
                    batch.apply(record)
            batch.store_events()
            count = len(records)
            cursor.offset = new_offset
        self._committed = (stat.st_dev, stat.st_ino, new_offset)
        metrics.CEL_EVENTS.inc(count)
        return count

    def close_lost_calls(self, stopped_at: datetime | None = None) -> int:
        """Closes the calls still open after their Asterisk stopped (it logs no LINKEDID_END for
        them): they end when it stopped (else at their last event), with a CDR that says so.
        Returns how many."""
        with self.db.session() as session:
            open_calls = list(session.scalars(select(Call).where(Call.state == "active")))
            batch = LedgerBatch(session, dict(self.did_names), self.rates, self.trunk, self.direct_call_hooks)
            for call in open_calls:
                last = session.scalar(select(func.max(CallEvent.event_time)).where(CallEvent.call_id == call.id))
                end = max(last or call.started_at, stopped_at or call.started_at)
                for leg in call.legs:
                    leg.ended_at = leg.ended_at or end
                batch.finish(call, end, lost=True)
        return len(open_calls)

    def _records(self, lines: Iterable[tuple[int, str]]) -> Iterator[CelRecord]:
        for offset, line in lines:
            if not line:
                continue
            try:
                record = CelRecord.from_json(line)
            except (ValueError, KeyError, TypeError) as exc:
                # Reported and skipped: one bad line must not hold back every call after it.
                self.bad_lines += 1
                log.error("%s at byte %d: bad CEL record skipped (%s): %.200s", self.path, offset, exc, line)
                continue
            # A snoop channel (monitoring, a test's recorder) listens to a call; it is no party of one.
            # Only its LINKEDID_END counts (``LedgerBatch.apply``).
            if not record.channel.startswith(SNOOP_PREFIX) or record.event == "LINKEDID_END":
                yield record
