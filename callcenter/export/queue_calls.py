"""The queue-call CSVs (CDR-3): ``queue_call`` has one row per queued call (an ``acd_calls`` row with
a queue), ``queue_user_call`` one row per place that call rang, in time order: each agent it was
offered to (``acd_attempts``) and each voicemail, IVR or other queue it was sent on to
(``acd_destinations`` of kind V, R, or Q other than its own first queue). docs/export.md says how
every column is computed.

Three streams in the same order (calls; their attempts; their destinations) are merged call by
call, so memory holds one call at a time whatever the number of rows.

A call belongs to the units stored on its records at call time (``acd_calls.agent_unit_id``,
``acd_attempts.unit_id``), not to its agents' units now. The texts that come from outside (numbers,
queue and target names) are neutralised against spreadsheet formulas by the writer every row passes
(``export.cdr.csv_writer``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, select

from callcenter.db.models import AcdAttempt, AcdCall, AcdDestination, CallLeg, Cdr, User
from callcenter.export.cdr import YIELD_PER, RowWriter, format_timestamp

QUEUE_HEADER: tuple[str, ...] = (
    "id", "user_id", "location_id", "call_id", "queue_id", "ddi", "cli", "callers", "agents", "start_time",
    "hold_time", "ring_time", "conn_time", "final_dst_type", "final_dst_id", "disposition", "t_cause")
# Destinations that count as a place the call rang (U duplicates an attempt, C is the callback list).
FORWARD_KINDS = frozenset({"V", "Q", "R"})


class QueueCallLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def agent_id(self) -> int | None: ...
    @property
    def agent_unit_id(self) -> int | None: ...
    @property
    def cdr_id(self) -> int | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def did(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def callers(self) -> int | None: ...
    @property
    def agents(self) -> int | None: ...
    @property
    def entered_at(self) -> datetime: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def wait_seconds(self) -> Decimal | None: ...
    @property
    def talk_seconds(self) -> Decimal | None: ...


class AttemptLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def user_id(self) -> int | None: ...
    @property
    def unit_id(self) -> int | None: ...
    @property
    def extension(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def ring_seconds(self) -> Decimal | None: ...
    @property
    def outcome(self) -> str: ...


class DestinationLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...


@dataclass(frozen=True)
class UserInfo:
    """What the export needs of a user: their extension (a record's unit is stored on the record)."""

    extension: str | None


@dataclass(frozen=True)
class QueueCallRows:
    """One call's rows of both files, and the units it belongs to."""

    call: list[str]
    places: list[list[str]]
    units: frozenset[int]


@dataclass(frozen=True)
class QueueWriters:
    calls: RowWriter
    user_calls: RowWriter


def _seconds(value: Decimal | None) -> int:
    return 0 if value is None else round(value)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _forwards(destinations: Sequence[DestinationLike]) -> list[DestinationLike]:
    """The destinations the call was sent on to, in order: V, R, and Q except the call's own queue
    (its first Q)."""
    forwards = []
    own_queue_seen = False
    for destination in sorted(destinations, key=lambda d: d.seq):
        if destination.kind == "Q" and not own_queue_seen:
            own_queue_seen = True
            continue
        if destination.kind in FORWARD_KINDS:
            forwards.append(destination)
    return forwards


def queue_call_rows(call: QueueCallLike, attempts: Sequence[AttemptLike], destinations: Sequence[DestinationLike],
                    users: Mapping[int, UserInfo]) -> QueueCallRows:
    """The ``queue_call`` row and the ``queue_user_call`` rows of one call. Pure."""
    answered = call.answered_at is not None
    talk = _seconds(call.talk_seconds)
    forwards = _forwards(destinations)
    # Every place the call rang, in time order (an offer before a forward at the same instant).
    places: list[tuple[datetime, int, int, AttemptLike | None, DestinationLike | None]] = [
        *((a.started_at, 0, a.seq, a, None) for a in attempts), *((d.at, 1, d.seq, None, d) for d in forwards)]
    places.sort(key=lambda place: place[:3])

    common = [call.id, "", "", _text(call.cdr_id), _text(call.queue), _text(call.did), _text(call.number),
              _text(call.callers), _text(call.agents), format_timestamp(call.entered_at),
              str(_seconds(call.wait_seconds))]
    # The offer that connected the caller to the answering agent gets the talk time. After a
    # transfer more than one offer was answered: the answering agent's (the last) one.
    taken = [place[3] for place in places if place[3] is not None and place[3].outcome == "answered"]
    answering: AttemptLike | None = ([a for a in taken if a.user_id == call.agent_id] or taken)[-1] if taken else None
    place_rows: list[list[str]] = []
    for n, (_at, _order, _seq, attempt, destination) in enumerate(places, start=1):
        row = list(common)
        row[0] = f"{call.id}-{n}"
        if attempt is not None:
            row[1], row[2] = _text(attempt.user_id), _text(attempt.unit_id)
            row += [str(_seconds(attempt.ring_seconds)), str(talk if attempt is answering else 0), "U",
                    attempt.extension, str(n), "C" if attempt.outcome == "answered" else "H"]
        elif destination is not None:
            row += ["0", "0", destination.kind, destination.target, str(n), "C"]
        place_rows.append(row)

    if answered:
        agent = users.get(call.agent_id) if call.agent_id is not None else None
        final = ("U", answering.extension if answering is not None else (agent.extension if agent else None) or "")
    elif forwards:
        final = (forwards[-1].kind, forwards[-1].target)
    else:
        final = ("", "")
    ring = _seconds(sum((a.ring_seconds for a in attempts if a.ring_seconds is not None), Decimal(0)))
    call_row = list(common)
    call_row[1], call_row[2] = _text(call.agent_id), _text(call.agent_unit_id)
    call_row += [str(ring), str(talk), final[0], final[1], str(len(place_rows)),
                 "C" if answered or final[0] else "H"]
    units = {call.agent_unit_id, *(a.unit_id for a in attempts)}
    return QueueCallRows(call_row, place_rows, frozenset(u for u in units if u is not None))


def load_users(connection: Connection) -> dict[int, UserInfo]:
    """Every user's extension (small: one entry per user)."""
    return {row.id: UserInfo(row.extension) for row in connection.execute(select(User.id, User.extension))}


def _call_order(connection: Connection) -> tuple[ColumnElement[Any], ...]:
    # Python compares the ids while merging: on PostgreSQL sort them by code point as Python does
    # (SQLite's default BINARY collation already does).
    call_id: ColumnElement[Any] = AcdCall.id.expression
    if connection.dialect.name == "postgresql":
        call_id = AcdCall.id.collate("C")
    return AcdCall.entered_at.expression, call_id


def _streams(connection: Connection, start: datetime,
             end: datetime) -> tuple[Iterator[Any], Iterator[Any], Iterator[Any]]:
    in_day = (AcdCall.queue.is_not(None), AcdCall.entered_at >= start, AcdCall.entered_at < end)
    order = _call_order(connection)
    calls = connection.execute(
        select(AcdCall.id, AcdCall.agent_id, AcdCall.agent_unit_id, Cdr.id.label("cdr_id"), AcdCall.queue,
               AcdCall.did, AcdCall.number, AcdCall.callers, AcdCall.agents, AcdCall.entered_at,
               AcdCall.answered_at, AcdCall.wait_seconds, AcdCall.talk_seconds)
        .outerjoin(CallLeg, CallLeg.uniqueid == AcdCall.channel_id)
        .outerjoin(Cdr, Cdr.call_id == CallLeg.call_id)
        .where(*in_day).order_by(*order).execution_options(yield_per=YIELD_PER))
    attempts = connection.execute(
        select(AcdAttempt.call_id, AcdCall.entered_at.label("call_entered_at"), AcdAttempt.seq, AcdAttempt.user_id,
               AcdAttempt.unit_id, AcdAttempt.extension, AcdAttempt.started_at, AcdAttempt.ring_seconds,
               AcdAttempt.outcome)
        .join(AcdCall, AcdCall.id == AcdAttempt.call_id)
        .where(*in_day).order_by(*order, AcdAttempt.seq).execution_options(yield_per=YIELD_PER))
    destinations = connection.execute(
        select(AcdDestination.call_id, AcdCall.entered_at.label("call_entered_at"), AcdDestination.seq,
               AcdDestination.at, AcdDestination.kind, AcdDestination.target)
        .join(AcdCall, AcdCall.id == AcdDestination.call_id)
        .where(*in_day).order_by(*order, AcdDestination.seq).execution_options(yield_per=YIELD_PER))
    return iter(calls), iter(attempts), iter(destinations)


class _Group:
    """Takes, from a stream in call order, the rows of one call after another."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self.rows = rows
        self.pending = next(rows, None)

    def take(self, entered_at: datetime, call_id: str) -> list[Any]:
        taken = []
        # Rows of a call the calls stream did not see (written between the queries) are skipped.
        while (row := self.pending) is not None:
            if row.call_id == call_id:
                taken.append(row)
            elif (row.call_entered_at, row.call_id) > (entered_at, call_id):
                break  # a later call's
            self.pending = next(self.rows, None)
        return taken


def write_queue_calls(connection: Connection, start: datetime, end: datetime,
                      sinks: Mapping[int | None, QueueWriters]) -> dict[int | None, tuple[int, int]]:
    """Writes the headers and the queue calls that entered their queue in [start, end) to each
    sink in one pass: key ``None`` gets every call, a unit id the calls answered or offered in that
    unit (the units stored on the call and its attempts at the time). Returns (queue_call rows,
    queue_user_call rows) per key."""
    for sink in sinks.values():
        sink.calls.writerow(QUEUE_HEADER)
        sink.user_calls.writerow(QUEUE_HEADER)
    counts = {key: [0, 0] for key in sinks}
    users = load_users(connection)
    calls, attempts, destinations = _streams(connection, start, end)
    attempt_groups, destination_groups = _Group(attempts), _Group(destinations)
    everyone = sinks.get(None)
    for call in calls:
        rows = queue_call_rows(call, attempt_groups.take(call.entered_at, call.id),
                               destination_groups.take(call.entered_at, call.id), users)
        keys: list[int | None] = [None] if everyone is not None else []
        keys += sorted(unit for unit in rows.units if unit in sinks)
        for key in keys:
            sink = sinks[key]
            sink.calls.writerow(rows.call)
            for place in rows.places:
                sink.user_calls.writerow(place)
            counts[key][0] += 1
            counts[key][1] += len(rows.places)
    return {key: (n[0], n[1]) for key, n in counts.items()}
