"""Building the 15-minute interval tables (models.py) from the ACD's own records (docs/kpis.md).

`rebuild(session, first, last)` deletes the intervals of the UTC days ``first``..``last`` and builds them
again, in the caller's transaction (the CLI commits once, so a failed rebuild leaves the old rows). It works
one day at a time and streams that day's rows, so memory holds one day's intervals, whatever the range.

- a queue call (an `acd_calls` record with a queue, not an agent's outbound call) counts in the interval it
  entered, whatever its wait and talk;
- an agent's state (from one `agent_work_log` row to the next) gives its seconds to every interval it spans;
  the state at the start of the range is the agent's last row before it; a state still going at the rebuild
  counts up to ``now``;
- an offer (`acd_attempts`) counts in the interval it started, with the talk of the call it connected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from callcenter.db.models import AcdAttempt, AcdCall, AgentWorkLog, Queue, User
from callcenter.reports.kpis import (
    SHORT_ABANDON_SECONDS,
    UNANSWERED_OFFERS,
    AgentTimes,
    QueueCall,
    QueueCounts,
)
from callcenter.reports.models import AgentInterval, QueueInterval

INTERVAL = timedelta(minutes=15)
DAY = timedelta(days=1)
DEFAULT_SL_THRESHOLD = 20  # seconds, the ACD's default for a queue
BATCH = 5000
OVERFLOW_OUTCOMES = frozenset({"overflow", "callback_requested", "transferred"})


@dataclass(frozen=True)
class Rebuilt:
    days: int
    calls: int
    queue_rows: int
    agent_rows: int


def interval_start(at: datetime) -> datetime:
    """The UTC quarter hour ``at`` falls in."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def split(start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
    """(interval start, seconds) of every interval the span [start, end) touches."""
    at = start
    while at < end:
        boundary = interval_start(at) + INTERVAL
        stop = min(boundary, end)
        yield interval_start(at), (stop - at).total_seconds()
        at = stop


CALL_COLUMNS = (AcdCall.queue, AcdCall.entered_at, AcdCall.answered_at, AcdCall.outcome, AcdCall.direction,
                AcdCall.wait_seconds, AcdCall.talk_seconds)


def queue_call(row: Any) -> QueueCall:
    """A call of the KPI formulas from an `acd_calls` row (CALL_COLUMNS at least)."""
    answered = row.answered_at is not None
    return QueueCall(wait_seconds=float(row.wait_seconds or 0), answered=answered,
                     abandoned=row.outcome == "abandoned",
                     overflowed=not answered and row.outcome in OVERFLOW_OUTCOMES,
                     talk_seconds=None if row.talk_seconds is None else float(row.talk_seconds),
                     transferred=row.outcome == "transferred", callback_requested=row.direction == "callback")


def rebuild(session: Session, first: date, last: date, short_abandon: float = SHORT_ABANDON_SECONDS,
            now: datetime | None = None) -> Rebuilt:
    """Delete and build again the intervals of the UTC days first..last (inclusive), in ``session``'s
    transaction. Intervals outside the range are not touched."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    now = now or datetime.now(UTC)
    range_start = datetime.combine(first, time(), UTC)
    range_end = datetime.combine(last, time(), UTC) + DAY
    for table in (QueueInterval, AgentInterval):
        session.execute(delete(table).where(table.start >= range_start, table.start < range_end))
    thresholds = {name: sl for name, sl in session.execute(select(Queue.name, Queue.service_level))}
    units = {uid: unit for uid, unit in session.execute(select(User.id, User.org_unit_id))}
    states = _states_before(session, range_start)
    calls = queue_rows = agent_rows = 0
    day = range_start
    while day < range_end:
        counted, queues = _queue_day(session, day, thresholds, short_abandon)
        calls += counted
        agents, day_units = _agent_offers(session, day)
        states = _agent_states(session, day, min(day + DAY, now), states, agents)
        if queues:
            session.execute(insert(QueueInterval), [
                {"queue": queue, "start": start, "sl_threshold": thresholds.get(queue, DEFAULT_SL_THRESHOLD),
                 **asdict(counts)} for (queue, start), counts in queues.items()])
        if agents:
            session.execute(insert(AgentInterval), [
                {**asdict(times), "user_id": user_id, "start": start,
                 "unit_id": day_units.get((user_id, start), units.get(user_id)),
                 "pause_reasons": json.dumps(dict(sorted(times.pause_reasons.items())))}
                for (user_id, start), times in agents.items()])
        queue_rows, agent_rows = queue_rows + len(queues), agent_rows + len(agents)
        day += DAY
    return Rebuilt(days=(last - first).days + 1, calls=calls, queue_rows=queue_rows, agent_rows=agent_rows)


def _queue_day(session: Session, day: datetime, thresholds: dict[str, int],
               short_abandon: float) -> tuple[int, dict[tuple[str, datetime], QueueCounts]]:
    queues: dict[tuple[str, datetime], QueueCounts] = {}
    rows = session.execute(select(*CALL_COLUMNS)
                           .where(AcdCall.entered_at >= day, AcdCall.entered_at < day + DAY,
                                  AcdCall.queue.is_not(None), AcdCall.direction != "outbound")
                           .execution_options(yield_per=BATCH))
    count = 0
    for row in rows:
        key = (row.queue, interval_start(row.entered_at))
        one = QueueCounts.of_call(queue_call(row), thresholds.get(row.queue, DEFAULT_SL_THRESHOLD), short_abandon)
        queues[key] = queues.get(key, QueueCounts()) + one
        count += 1
    return count, queues


def _agent_offers(session: Session,
                  day: datetime) -> tuple[dict[tuple[int, datetime], AgentTimes], dict[tuple[int, datetime], int]]:
    agents: dict[tuple[int, datetime], AgentTimes] = {}
    day_units: dict[tuple[int, datetime], int] = {}
    rows = session.execute(
        select(AcdAttempt.user_id, AcdAttempt.started_at, AcdAttempt.outcome, AcdAttempt.ring_seconds,
               AcdAttempt.unit_id, AcdCall.talk_seconds)
        .join(AcdCall, AcdCall.id == AcdAttempt.call_id)
        .where(AcdAttempt.started_at >= day, AcdAttempt.started_at < day + DAY, AcdAttempt.user_id.is_not(None))
        .order_by(AcdAttempt.started_at).execution_options(yield_per=BATCH))
    for user_id, started_at, outcome, ring, unit_id, talk in rows:
        if user_id is None:
            continue
        key = (int(user_id), interval_start(started_at))
        if unit_id is not None:
            day_units[key] = unit_id
        answered = outcome == "answered"
        if not answered and outcome not in UNANSWERED_OFFERS:
            continue  # caller_gone, taken_by_other: not the agent's offer to take
        talked = answered and talk is not None
        one = AgentTimes(handled=1, completed=int(answered), unanswered=int(not answered),
                         first_response_sum=float(ring or 0) if answered else 0.0,
                         talked=int(talked), talk_seconds=float(talk or 0) if talked else 0.0)
        agents[key] = agents.get(key, AgentTimes()) + one
    return agents, day_units


State = tuple[datetime, str, str]  # since, state, reason


def _states_before(session: Session, at: datetime) -> dict[int, State]:
    """Each agent's state at ``at``: their last work-log row before it."""
    last = (select(AgentWorkLog.user_id, func.max(AgentWorkLog.id).label("id"))
            .where(AgentWorkLog.at < at).group_by(AgentWorkLog.user_id).subquery())
    rows = session.execute(select(AgentWorkLog.user_id, AgentWorkLog.state, AgentWorkLog.reason)
                           .join(last, last.c.id == AgentWorkLog.id))
    return {user_id: (at, state, reason) for user_id, state, reason in rows}


def _agent_states(session: Session, day: datetime, end: datetime, states: dict[int, State],
                  agents: dict[tuple[int, datetime], AgentTimes]) -> dict[int, State]:
    """Adds the seconds of every state in [day, end) to ``agents``; returns the states going on at the end
    of the day (``states``: those going on at its start)."""
    current = dict(states)
    rows = session.execute(select(AgentWorkLog.user_id, AgentWorkLog.at, AgentWorkLog.state, AgentWorkLog.reason)
                           .where(AgentWorkLog.at >= day, AgentWorkLog.at < day + DAY)
                           .order_by(AgentWorkLog.at, AgentWorkLog.id).execution_options(yield_per=BATCH))
    for user_id, at, state, reason in rows:
        if user_id in current:
            _add_state(agents, user_id, current[user_id], min(at, end))
        current[user_id] = (at, state, reason)
    for user_id, going in current.items():
        _add_state(agents, user_id, going, end)
    next_day = day + DAY
    return {user_id: (next_day, state, reason) for user_id, (_, state, reason) in current.items()}


def _add_state(agents: dict[tuple[int, datetime], AgentTimes], user_id: int, going: State, end: datetime) -> None:
    since, state, reason = going
    for start, seconds in split(since, end):
        if seconds > 0:
            one = AgentTimes.in_state(state, seconds, reason)
            if one != AgentTimes():
                agents[(user_id, start)] = agents.get((user_id, start), AgentTimes()) + one


def queue_counts(row: QueueInterval) -> QueueCounts:
    """An interval row as the summable figures (so a report sums rows and asks kpis for the figures)."""
    return QueueCounts(**{f.name: getattr(row, f.name) for f in fields(QueueCounts)})


def agent_times(row: AgentInterval) -> AgentTimes:
    values = {f.name: getattr(row, f.name) for f in fields(AgentTimes) if f.name != "pause_reasons"}
    return AgentTimes(pause_reasons=json.loads(row.pause_reasons or "{}"), **values)
