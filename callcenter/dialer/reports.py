"""What the admin pages read about the outbound dialer: a campaign's day-by-day report, its contacts by
status, its imported lists and their problems, and the do-not-call list.

The day report (``campaign_days``) is computed from ``dialer_attempts`` and ``agent_work_log``; days are
UTC and an attempt belongs to the day it was placed. docs/dialer-reports.md says what every column
means. The attempts are counted in SQL, one ``GROUP BY outcome, amd_status`` query per day. The abandon
windows are the pacer's (``AbandonLedger``): rolling, ending at the end of the day (for today: now), and
counting people at the moment they answered; they are summed from one count per day (30 days more for
the 30-day window) and, for a window ending now, counted over its span. Only the connected calls'
timestamps (for the time to an agent, and to find the campaign's calls in the work log) and the work-log
rows of the agents who took the campaign's calls (for the time they spent on it) are read into Python.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from callcenter.db.models import (
    AgentWorkLog,
    DialerAttempt,
    DialerCampaign,
    DialerContact,
    DialerList,
    DialerListProblem,
    DoNotCall,
)
from callcenter.dialer.contacts import Rejected
from callcenter.dialer.pacing import BUCKET_SECONDS
from callcenter.dialer.settings import ABANDON_WINDOWS, CampaignSpec
from callcenter.export.cells import safe_row

#: Every outcome an attempt may end with; "in_progress" counts attempts not ended yet, "other" anything else.
OUTCOMES = ("human", "abandoned", "machine", "busy", "no_answer", "failed", "hung_up", "lost")
OUTCOME_COLUMNS = (*OUTCOMES, "in_progress", "other")
#: AMD verdicts; "off" when the campaign runs without AMD, "none" when AMD ran without a verdict (not answered).
AMD_STATUSES = ("HUMAN", "MACHINE", "NOTSURE", "HANGUP", "off", "none")
#: Days each abandon window spans, ending with the report's day.
WINDOW_DAYS = {name: round(seconds / 86400) for name, seconds in ABANDON_WINDOWS.items()}
#: A person answers within this long of the call being placed (ring time, AMD, a preview's agent leg):
#: the attempts of a span are looked up by ``placed_at`` (indexed) from this much before it.
ANSWER_WITHIN = timedelta(hours=1)
#: An agent's time waiting is given to the call that ends the wait, else to the call before it; the work
#: log is read this far around the report's range to find those calls (a day: a shift's wait, and the
#: call before it, are found whatever range the day is reported in).
WAIT_HORIZON = timedelta(days=1)
#: The work log marks an agent on a call when the ACD bridges them, the attempt when the dialer hears of
#: it: the two may be this far apart.
CONNECT_SKEW = timedelta(seconds=2)
#: Agent states that count as working time, and those that count as busy (occupancy).
WORKING_STATES = frozenset({"ready", "ringing", "on_call", "wrap_up"})
BUSY_STATES = frozenset({"on_call", "wrap_up"})
#: A contact's statuses, in the order the pages show them.
CONTACT_STATUSES = ("pending", "dialing", "callback", "done", "failed", "dnc")

CSV_HEADER = (
    "campaign", "day", "attempts", "answered", "reached", "connects", "abandoned", "abandoned_with_message",
    "abandon_target_percent",
    "abandon_rate_24h_percent", "abandoned_24h", "reached_24h", "amd_false_positives_24h", "over_target_24h",
    "abandon_rate_30d_percent", "abandoned_30d", "reached_30d", "over_target_30d",
    *(f"amd_{s.lower()}" for s in AMD_STATUSES),
    *(f"outcome_{o}" for o in OUTCOME_COLUMNS),
    "talk_minutes", "agent_hours", "busy_hours", "talk_minutes_per_agent_hour", "occupancy_percent",
    "connect_median_seconds", "connect_p90_seconds",
)


# -- the day report --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRate:
    """The abandon rate of one window as the pacer's ``AbandonLedger`` counts it, as of the end of a day
    (of now, for today): ``abandoned`` / ``reached`` (percent), people counted when they answered.

    In the 24h window ``false_positives`` (the estimated people among the AMD "machine" verdicts) is
    already included in both ``abandoned`` and ``reached``."""

    window: str
    abandoned: float
    reached: float
    false_positives: float
    rate: float | None  # percent; None when nobody was reached
    over_target: bool


@dataclass(frozen=True)
class DayReport:
    campaign: str
    day: date
    attempts: int
    answered: int
    reached: int
    connects: int
    abandoned: int
    abandoned_with_message: int
    amd: Mapping[str, int]  # every AMD_STATUSES key
    outcomes: Mapping[str, int]  # every OUTCOME_COLUMNS key
    talk_minutes: float
    agent_hours: float  # the agents' time on this campaign (``campaign_agent_time``)
    busy_hours: float  # of that, on the campaign's calls or in their wrap-up
    connect_median: float | None  # seconds from the person to the agent
    connect_p90: float | None
    windows: tuple[WindowRate, ...]
    target: float  # percent

    @property
    def talk_per_agent_hour(self) -> float | None:
        return self.talk_minutes / self.agent_hours if self.agent_hours > 0 else None

    @property
    def occupancy(self) -> float | None:
        """Percent of the agents' working time spent on a call or in wrap-up."""
        return 100 * self.busy_hours / self.agent_hours if self.agent_hours > 0 else None

    def window(self, name: str) -> WindowRate | None:
        return next((w for w in self.windows if w.window == name), None)


@dataclass
class _Counts:
    """One day's attempts, as the grouped query counts them."""

    attempts: int = 0
    answered: int = 0
    reached: int = 0
    connects: int = 0
    abandoned: int = 0
    abandoned_with_message: int = 0
    talk_seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    amd: Counter[str] = field(default_factory=Counter)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _count_day(session: Session, campaign: str, day: date) -> _Counts:
    a = DialerAttempt
    start = day_start(day)
    rows = session.execute(
        select(a.outcome, a.amd_status, func.count(), func.count(a.answered_at), func.count(a.human_at),
               func.count(a.connected_at), func.count(a.abandoned_at),
               func.count(case((and_(a.abandoned_at.is_not(None), a.message_at.is_not(None)), 1))),
               func.sum(a.talk_seconds))
        .where(a.campaign == campaign, a.placed_at >= start, a.placed_at < start + timedelta(days=1))
        .group_by(a.outcome, a.amd_status))
    counts = _Counts()
    for outcome, amd, n, answered, reached, connects, abandoned, with_message, talk in rows:
        counts.attempts += n
        counts.answered += answered
        counts.reached += reached
        counts.connects += connects
        counts.abandoned += abandoned
        counts.abandoned_with_message += with_message
        counts.talk_seconds += float(talk or 0)
        outcome = outcome or "in_progress"
        counts.outcomes[outcome if outcome in OUTCOME_COLUMNS else "other"] += n
        amd = amd or "none"
        counts.amd[amd if amd in AMD_STATUSES else "none"] += n
    return counts


def _connect_delays(session: Session, campaign: str, start: datetime, end: datetime) -> dict[date, list[float]]:
    """Seconds from ``human_at`` to ``connected_at`` of the connected calls, by the day they were placed."""
    a = DialerAttempt
    delays: dict[date, list[float]] = {}
    for placed, human, connected in session.execute(
            select(a.placed_at, a.human_at, a.connected_at)
            .where(a.campaign == campaign, a.placed_at >= start, a.placed_at < end,
                   a.human_at.is_not(None), a.connected_at.is_not(None))):
        if human is None or connected is None:  # excluded by the query; for the type checker
            continue
        delays.setdefault(placed.astimezone(UTC).date(), []).append(max(0.0, (connected - human).total_seconds()))
    return delays


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0.9: the smallest value at least 90 % of the values reach)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class LedgerCounts:
    """What ``AbandonLedger`` counts of a span, as the controller rebuilds it from the attempts at start-up:
    people answered (a call an agent's wrap-up found to be a machine not counted), of them abandoned, and
    AMD "machine" verdicts."""

    answered: int = 0
    abandoned: int = 0
    machines: int = 0

    def __add__(self, other: LedgerCounts) -> LedgerCounts:
        return LedgerCounts(self.answered + other.answered, self.abandoned + other.abandoned,
                            self.machines + other.machines)


def ledger_counts(session: Session, campaign: str, since: datetime, until: datetime) -> LedgerCounts:
    """The ledger's counts of the events in [since, until): a person at ``human_at``, an AMD "machine"
    verdict at the answer."""
    a = DialerAttempt
    person = and_(a.human_at >= since, a.human_at < until, a.amd_status != "MACHINE", a.outcome != "machine")
    verdict_at = func.coalesce(a.answered_at, a.placed_at)
    machine = and_(a.amd_status == "MACHINE", verdict_at >= since, verdict_at < until)
    answered, abandoned, machines = session.execute(
        select(func.count(case((person, 1))), func.count(case((and_(person, a.abandoned_at.is_not(None)), 1))),
               func.count(case((machine, 1))))
        .where(a.campaign == campaign, a.placed_at >= since - ANSWER_WITHIN, a.placed_at < until)).one()
    return LedgerCounts(answered, abandoned, machines)


def window_start(end: datetime, window: str) -> datetime:
    """Where ``window`` ending at ``end`` begins, as the ledger has it: the minute bucket holding
    ``end`` - its length (whole UTC days, ending at a midnight, begin at a midnight)."""
    edge = end.timestamp() - ABANDON_WINDOWS[window]
    return datetime.fromtimestamp(math.floor(edge / BUCKET_SECONDS) * BUCKET_SECONDS, UTC)


def window_rate(window: str, counts: LedgerCounts, target: float, fp_rate: float) -> WindowRate:
    """``target`` and ``fp_rate`` in percent; the 24h window adds the estimated AMD false positives (the
    UK rule) to both sides, as the ledger does."""
    false_positives = counts.machines * fp_rate / 100 if window == "24h" else 0.0
    abandoned, reached = counts.abandoned + false_positives, counts.answered + false_positives
    rate = 100 * abandoned / reached if reached > 0 else None
    return WindowRate(window, abandoned, reached, false_positives, rate, rate is not None and rate > target)


def abandon_rates(session: Session, spec: CampaignSpec, now: datetime) -> tuple[WindowRate, ...]:
    """The campaign's abandon windows ending ``now``, as its pacer counts them (from the database: what
    the CLI, in a process of its own, shows before starting a campaign)."""
    return tuple(window_rate(w, ledger_counts(session, spec.name, window_start(now, w), now),
                             spec.abandon_target, spec.amd_false_positive_rate) for w in spec.abandon_windows)


def _add_time(totals: dict[date, list[float]], state: str, start: datetime, end: datetime) -> None:
    """Adds the interval [start, end) in ``state`` to the days it covers (only days in ``totals``)."""
    if state not in WORKING_STATES:
        return
    while start < end:
        day = start.date()
        stop = min(end, day_start(day) + timedelta(days=1))
        slot = totals.get(day)
        if slot is not None:
            seconds = (stop - start).total_seconds()
            slot[0] += seconds
            if state in BUSY_STATES:
                slot[1] += seconds
        start = stop


def _campaign_intervals(states: Sequence[tuple[str, datetime, datetime]],
                        connects: Sequence[datetime]) -> Iterator[tuple[str, datetime, datetime]]:
    """Of one agent's states in time order, the intervals spent on the campaign whose calls the agent
    was connected to at ``connects``: a call (``on_call``) that one of them falls in, the wrap-up after
    it, and the waits (``ready``, ``ringing``) the call ended; a wait that no call ended (a pause, a
    log-out, the end of the range came first) belongs to the call before it."""
    previous_was_campaign = False
    waits: list[tuple[str, datetime, datetime]] = []
    for state, start, end in states:
        if state in ("ready", "ringing"):
            waits.append((state, start, end))
            continue
        if state == "on_call":
            ours = any(start - CONNECT_SKEW <= at < end for at in connects)
            if ours:  # else the wait ended with a call of something else, and is that call's
                yield from waits
                yield state, start, end
            waits = []
            previous_was_campaign = ours
            continue
        if previous_was_campaign:
            yield from waits
        waits = []
        if state == "wrap_up" and previous_was_campaign:
            yield state, start, end
    if previous_was_campaign:
        yield from waits


def campaign_agent_time(session: Session, campaign: str, first: date, last: date,
                        now: datetime) -> dict[date, tuple[float, float]]:
    """Per day: (seconds agents spent on the campaign, of which on its calls or in their wrap-up).

    The agents are those connected to one of the campaign's calls around the range. From the work log,
    an agent's time on the campaign is: each call of the campaign (``on_call`` from the row that put them
    on it to the next row; the attempt's ``connected_at`` falls in it), the ``wrap_up`` after it, and the
    waiting (``ready``, ``ringing``) before it since their previous call, pause or log-in; a wait ended by a
    pause or log-out instead of a call goes to the call before it. Inbound calls of the same queue, other
    campaigns' calls, direct calls and the waits they ended are not counted. Time is cut at the day's end,
    and at ``now``."""
    totals: dict[date, list[float]] = {day: [0.0, 0.0] for day in _days(first, last)}
    start, end = day_start(first), min(day_start(last) + timedelta(days=1), now)
    if start >= end:
        return {day: (0.0, 0.0) for day in totals}
    seen_from, seen_to = start - WAIT_HORIZON, min(end + WAIT_HORIZON, now)
    a = DialerAttempt
    connects: dict[int, list[datetime]] = {}
    for agent_id, connected in session.execute(
            select(a.agent_id, a.connected_at)
            .where(a.campaign == campaign, a.placed_at >= seen_from - ANSWER_WITHIN, a.placed_at < seen_to,
                   a.agent_id.is_not(None), a.connected_at.is_not(None))):
        if agent_id is not None and connected is not None:
            connects.setdefault(agent_id, []).append(connected)
    if connects:
        log = AgentWorkLog
        users = sorted(connects)
        ranked = (select(log.user_id, log.state,
                         func.row_number().over(partition_by=log.user_id,
                                                order_by=(log.at.desc(), log.id.desc())).label("n"))
                  .where(log.user_id.in_(users), log.at < seen_from).subquery())
        state = {user: s for user, s in session.execute(select(ranked.c.user_id, ranked.c.state)
                                                        .where(ranked.c.n == 1))}
        since = dict.fromkeys(users, seen_from)
        intervals: dict[int, list[tuple[str, datetime, datetime]]] = {user: [] for user in users}
        for user, at, new in session.execute(select(log.user_id, log.at, log.state)
                                             .where(log.user_id.in_(users), log.at >= seen_from, log.at < seen_to)
                                             .order_by(log.user_id, log.at, log.id)):
            intervals[user].append((state.get(user, "logged_out"), since[user], at))
            state[user], since[user] = new, at
        for user in users:
            intervals[user].append((state.get(user, "logged_out"), since[user], seen_to))
            for kind, began, ended in _campaign_intervals(intervals[user], connects[user]):
                _add_time(totals, kind, max(began, start), min(ended, end))
    return {day: (work, busy) for day, (work, busy) in totals.items()}


def campaign_days(session: Session, campaign: str, day_from: date, day_to: date, *, target: float,
                  windows: Sequence[str], amd_false_positive_rate: float,
                  now: datetime | None = None) -> list[DayReport]:
    """The report of every day from ``day_from`` to ``day_to`` (UTC, both included), oldest first.

    ``target`` and ``amd_false_positive_rate`` are percents; ``windows`` the campaign's abandon windows
    ("24h", "30d"), each as of the end of the day, or ``now`` for a day not over (default: the clock),
    which also ends the agents' time."""
    if day_to < day_from:
        raise ValueError("the first day is after the last")
    unknown = [w for w in windows if w not in WINDOW_DAYS]
    if unknown:
        raise ValueError(f"unknown abandon window {unknown[0]!r}: use {' or '.join(WINDOW_DAYS)}")
    now = now or datetime.now(UTC)
    span = max((WINDOW_DAYS[w] for w in windows), default=1)
    counts = {day: _count_day(session, campaign, day) for day in _days(day_from, day_to)}
    # The windows of a day over end at its midnight, on a bucket edge: sums of whole days.
    ledger = {day: ledger_counts(session, campaign, day_start(day), day_start(day) + timedelta(days=1))
              for day in _days(day_from - timedelta(days=span - 1), day_to)}
    delays = _connect_delays(session, campaign, day_start(day_from), day_start(day_to) + timedelta(days=1))
    work = campaign_agent_time(session, campaign, day_from, day_to, now)
    reports = []
    for day in _days(day_from, day_to):
        c = counts[day]
        # Today's windows end now; a day over, or not begun by this clock (there is no "now" in it), at
        # its midnight.
        today = day_start(day) <= now < day_start(day) + timedelta(days=1)
        rates = []
        for w in windows:
            if today:
                window = ledger_counts(session, campaign, window_start(now, w), now)
            else:
                window = sum((ledger[day - timedelta(days=n)] for n in range(WINDOW_DAYS[w])), LedgerCounts())
            rates.append(window_rate(w, window, target, amd_false_positive_rate))
        waits = delays.get(day, [])
        agent_seconds, busy_seconds = work[day]
        reports.append(DayReport(
            campaign, day, c.attempts, c.answered, c.reached, c.connects, c.abandoned, c.abandoned_with_message,
            {s: c.amd[s] for s in AMD_STATUSES}, {o: c.outcomes[o] for o in OUTCOME_COLUMNS},
            c.talk_seconds / 60, agent_seconds / 3600, busy_seconds / 3600,
            statistics.median(waits) if waits else None, percentile(waits, 0.9), tuple(rates), target))
    return reports


def campaign_day(session: Session, campaign: str, day: date, *, target: float, windows: Sequence[str],
                 amd_false_positive_rate: float, now: datetime | None = None) -> DayReport:
    """One day's report (see ``campaign_days``)."""
    return campaign_days(session, campaign, day, day, target=target, windows=windows,
                         amd_false_positive_rate=amd_false_positive_rate, now=now)[0]


def _number(value: float | None, places: int = 2) -> str:
    return "" if value is None else f"{value:.{places}f}"


def csv_rows(reports: Iterable[DayReport]) -> Iterator[list[str]]:
    """``CSV_HEADER``, then one row per report; a window the campaign does not use is left empty.
    Cells a spreadsheet would run as a formula are neutralised (``export.cells``): the admin pages'
    download and the CLI write these rows with a plain ``csv.writer``."""
    yield list(CSV_HEADER)
    for r in reports:
        row = [r.campaign, r.day.isoformat(), str(r.attempts), str(r.answered), str(r.reached), str(r.connects),
               str(r.abandoned), str(r.abandoned_with_message), _number(r.target)]
        for name in ("24h", "30d"):
            w = r.window(name)
            if w is None:
                row += [""] * (5 if name == "24h" else 4)
                continue
            row += [_number(w.rate), _number(w.abandoned), _number(w.reached)]
            if name == "24h":
                row.append(_number(w.false_positives))
            row.append("yes" if w.over_target else "no")
        row += [str(r.amd[s]) for s in AMD_STATUSES]
        row += [str(r.outcomes[o]) for o in OUTCOME_COLUMNS]
        row += [_number(r.talk_minutes), _number(r.agent_hours), _number(r.busy_hours),
                _number(r.talk_per_agent_hour), _number(r.occupancy, 1), _number(r.connect_median),
                _number(r.connect_p90)]
        yield safe_row(row)


# -- campaigns, lists and the do-not-call list, for the admin pages ---------------------------------------

@dataclass(frozen=True)
class CampaignCounts:
    running: bool
    contacts: Mapping[str, int]  # every CONTACT_STATUSES key (and any other status found)
    lists: int
    dnc: int  # the campaign's own do-not-call numbers (the global list is apart)

    @property
    def total(self) -> int:
        return sum(self.contacts.values())


def campaign_counts(session: Session, names: Iterable[str]) -> dict[str, CampaignCounts]:
    wanted = sorted(set(names))
    contacts: dict[str, Counter[str]] = {name: Counter(dict.fromkeys(CONTACT_STATUSES, 0)) for name in wanted}
    for campaign, status, n in session.execute(
            select(DialerContact.campaign, DialerContact.status, func.count())
            .where(DialerContact.campaign.in_(wanted)).group_by(DialerContact.campaign, DialerContact.status)):
        contacts[campaign][status] += n
    lists = {campaign: n for campaign, n in session.execute(
        select(DialerList.campaign, func.count()).where(DialerList.campaign.in_(wanted)).group_by(DialerList.campaign))}
    dnc = dnc_counts(session)
    running = set(session.scalars(select(DialerCampaign.name).where(DialerCampaign.name.in_(wanted),
                                                                    DialerCampaign.running.is_(True))))
    return {name: CampaignCounts(name in running, dict(contacts[name]), lists.get(name, 0), dnc.get(name, 0))
            for name in wanted}


def dnc_counts(session: Session) -> dict[str, int]:
    """Do-not-call numbers per campaign; "" is the global list."""
    return {campaign: n for campaign, n in session.execute(
        select(DoNotCall.campaign, func.count()).group_by(DoNotCall.campaign))}


@dataclass(frozen=True)
class ListRow:
    id: int
    campaign: str
    name: str
    imported_at: datetime
    imported_by: str
    imported: int
    rejected: int
    duplicates: int
    do_not_call: int
    mapping: Mapping[str, object]

    @property
    def summary(self) -> str:
        return (f"{self.imported:,} imported, {self.rejected:,} rejected, {self.duplicates:,} "
                f"duplicate{'' if self.duplicates == 1 else 's'}, {self.do_not_call:,} on the do-not-call list")


def _list_row(row: DialerList) -> ListRow:
    try:
        mapping = json.loads(row.mapping or "{}")
    except ValueError:
        mapping = {}
    return ListRow(row.id, row.campaign, row.name, row.imported_at, row.imported_by, row.imported, row.rejected,
                   row.duplicates, row.do_not_call, mapping if isinstance(mapping, dict) else {})


def lists_of(session: Session, campaign: str, limit: int = 200) -> list[ListRow]:
    """The campaign's imports, newest first."""
    return [_list_row(row) for row in session.scalars(
        select(DialerList).where(DialerList.campaign == campaign)
        .order_by(DialerList.imported_at.desc(), DialerList.id.desc()).limit(limit))]


def list_of(session: Session, campaign: str, list_id: int) -> ListRow | None:
    row = session.get(DialerList, list_id)
    return _list_row(row) if row is not None and row.campaign == campaign else None


@dataclass(frozen=True)
class ProblemRow:
    line: int
    kind: str  # rejected, duplicate, dnc
    reason: str


def list_problems(session: Session, list_id: int, offset: int, limit: int) -> tuple[int, list[ProblemRow]]:
    """(how many, one page of them in file order) of the rows of an import that were not taken."""
    total = session.scalar(select(func.count()).select_from(DialerListProblem)
                           .where(DialerListProblem.list_id == list_id)) or 0
    rows = session.execute(select(DialerListProblem.line, DialerListProblem.kind, DialerListProblem.reason)
                           .where(DialerListProblem.list_id == list_id)
                           .order_by(DialerListProblem.line, DialerListProblem.id).offset(offset).limit(limit))
    return total, [ProblemRow(line, kind, reason) for line, kind, reason in rows]


@dataclass(frozen=True)
class DncRow:
    campaign: str  # "" for the global list
    number: str
    added_at: datetime
    source: str


def search_dnc(session: Session, campaign: str | None, text: str, offset: int,
               limit: int) -> tuple[int, list[DncRow]]:
    """(how many, one page newest first) of the do-not-call numbers of ``campaign`` ("" global, None every
    list) whose number contains ``text`` (its digits, so "+48 22" finds +4822...)."""
    conditions = []
    if campaign is not None:
        conditions.append(DoNotCall.campaign == campaign)
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits:
        conditions.append(DoNotCall.number.contains(digits, autoescape=True))
    elif text.strip():
        conditions.append(or_(DoNotCall.number == text.strip(), DoNotCall.source.icontains(text.strip(),
                                                                                          autoescape=True)))
    total = session.scalar(select(func.count()).select_from(DoNotCall).where(*conditions)) or 0
    rows = session.execute(select(DoNotCall.campaign, DoNotCall.number, DoNotCall.added_at, DoNotCall.source)
                           .where(*conditions).order_by(DoNotCall.added_at.desc(), DoNotCall.id.desc())
                           .offset(offset).limit(limit))
    return total, [DncRow(c, n, at, source) for c, n, at, source in rows]


# -- what the campaign pages show ------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignView:
    """A configured campaign with its contacts' counts (and, on its own page, its imports)."""

    spec: CampaignSpec
    counts: CampaignCounts
    lists: tuple[ListRow, ...] = ()


@dataclass(frozen=True)
class CampaignsView:
    campaigns: tuple[CampaignView, ...]
    dnc: Mapping[str, int]  # numbers per do-not-call list; "" is the global one


@dataclass(frozen=True)
class UploadPreview:
    """A contact list uploaded and kept until it is imported: its columns, for the mapping form."""

    token: str
    file_name: str
    header: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class DncAdded:
    """What became of numbers given for the do-not-call list."""

    added: int  # new on the list
    already: int  # valid, but on the list already
    rejected: tuple[Rejected, ...]  # lines without a valid number
