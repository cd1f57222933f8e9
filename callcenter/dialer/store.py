"""The dialer's tables: campaigns' run state, imported lists, contacts, the do-not-call list and attempts.

Plain functions over a session; the service runs them in a thread (or through the record writer).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from callcenter.db.models import (
    DialerAttempt,
    DialerCampaign,
    DialerContact,
    DialerList,
    DialerListProblem,
    DoNotCall,
)
from callcenter.dialer.contacts import ColumnMap, ImportResult, import_contacts, normalise_number
from callcenter.dialer.rules import CallingWindow

# Contacts a campaign may dial: fresh or to be called again, and callbacks for any agent.
DIALABLE = ("pending", "callback")


@dataclass
class ContactRef:
    id: int
    number: str
    name: str
    timezones: tuple[str, ...]
    fields: dict[str, str]
    attempts: int
    outcome_counts: dict[str, int] = field(default_factory=dict)
    callback_agent_id: int | None = None


def _ref(row: DialerContact) -> ContactRef:
    return ContactRef(row.id, row.number, row.name, tuple(z for z in row.timezones.split(",") if z),
                      json.loads(row.fields or "{}"), row.attempts, json.loads(row.outcome_counts or "{}"),
                      row.callback_agent_id)


# -- run state -------------------------------------------------------------------------------------------

def running_campaigns(session: Session) -> set[str]:
    return set(session.scalars(select(DialerCampaign.name).where(DialerCampaign.running.is_(True))))


def set_running(session: Session, campaign: str, running: bool, by: str, now: datetime) -> None:
    row = session.get(DialerCampaign, campaign)
    if row is None:
        row = DialerCampaign(name=campaign)
        session.add(row)
    row.running, row.changed_at, row.changed_by = running, now, by[:60]


def recover(session: Session, now: datetime) -> int:
    """After a crash: attempts left open are closed as lost and their contacts may be dialled again."""
    lost = session.execute(update(DialerAttempt).where(DialerAttempt.ended_at.is_(None))
                           .values(ended_at=now, outcome=case((DialerAttempt.outcome == "", "lost"),
                                                              else_=DialerAttempt.outcome)))
    session.execute(update(DialerContact).where(DialerContact.status == "dialing")
                    .values(status="pending", reason="the controller stopped during the call"))
    return int(getattr(lost, "rowcount", 0) or 0)


# -- picking contacts ------------------------------------------------------------------------------------

def _on_dnc(campaign: str):  # type: ignore[no-untyped-def]
    return select(DoNotCall.id).where(DoNotCall.number == DialerContact.number,
                                      DoNotCall.campaign.in_(("", campaign))).exists()


def take_due(session: Session, campaign: str, window: CallingWindow, now: datetime, count: int,
             *, agent_id: int | None = None) -> list[ContactRef]:
    """Up to ``count`` contacts to dial now, marked ``dialing``. Callbacks come first, then the longest
    waiting. A contact outside its calling window is put off to the window's next opening; one on the
    do-not-call list (added after its import) is closed. ``agent_id``: that agent's own callbacks only."""
    taken: list[ContactRef] = []
    for _ in range(5):  # a few rounds: windows may put off a whole batch
        if len(taken) >= count:
            break
        query = select(DialerContact).where(DialerContact.campaign == campaign,
                                            or_(DialerContact.not_before.is_(None), DialerContact.not_before <= now))
        if agent_id is None:
            query = query.where(DialerContact.status.in_(DIALABLE), DialerContact.callback_agent_id.is_(None))
        else:
            query = query.where(DialerContact.status == "callback", DialerContact.callback_agent_id == agent_id)
        rows = session.scalars(query.order_by(case((DialerContact.status == "callback", 0), else_=1),
                                              DialerContact.not_before.is_not(None), DialerContact.not_before,
                                              DialerContact.id)
                               .limit(max(20, (count - len(taken)) * 4)).with_for_update(skip_locked=True)).all()
        if not rows:
            break
        blocked = set(session.scalars(select(DoNotCall.number).where(
            DoNotCall.number.in_([r.number for r in rows]), DoNotCall.campaign.in_(("", campaign)))))
        for row in rows:
            zones = tuple(z for z in row.timezones.split(",") if z)
            if not zones:
                row.status, row.reason = "failed", "no time zone: its calling hours are unknown"
            elif row.number in blocked:
                row.status, row.reason = "dnc", "on the do-not-call list"
            elif not window.open_at(zones, now):
                later = window.next_open(zones, now)
                if later is None:
                    row.status, row.reason = "failed", "its time zones share no calling hours"
                else:
                    row.not_before = later
            elif len(taken) < count:
                row.status, row.reason = "dialing", ""
                row.attempts += 1
                row.last_attempt_at = now
                taken.append(_ref(row))
        session.flush()
    return taken


def agents_with_due_callbacks(session: Session, campaign: str, agent_ids: Sequence[int], now: datetime) -> list[int]:
    """Which of these agents have a callback of their own due now (calling windows aside)."""
    return list(session.scalars(select(DialerContact.callback_agent_id).distinct().where(
        DialerContact.campaign == campaign, DialerContact.status == "callback",
        DialerContact.callback_agent_id.in_(agent_ids),
        or_(DialerContact.not_before.is_(None), DialerContact.not_before <= now))))


def put_back(session: Session, contact_id: int, status: str, not_before: datetime | None, reason: str) -> None:
    """A contact shown as a preview and not dialled: back to ``status``, its attempt not counted."""
    row = session.get(DialerContact, contact_id)
    if row is not None:
        row.status, row.not_before, row.reason = status, not_before, reason[:200]
        row.attempts = max(0, row.attempts - 1)


def contact_done(session: Session, contact_id: int, status: str, not_before: datetime | None, reason: str,
                 outcome: str, callback_agent_id: int | None = None) -> None:
    row = session.get(DialerContact, contact_id)
    if row is None:
        return
    counts = json.loads(row.outcome_counts or "{}")
    if outcome:
        counts[outcome] = counts.get(outcome, 0) + 1
        row.outcome_counts, row.last_outcome = json.dumps(counts, sort_keys=True), outcome
    row.status, row.not_before, row.reason = status, not_before, reason[:200]
    row.callback_agent_id = callback_agent_id


def counts_of(session: Session, contact_id: int) -> dict[str, int]:
    row = session.get(DialerContact, contact_id)
    return json.loads(row.outcome_counts or "{}") if row is not None else {}


# -- do not call -----------------------------------------------------------------------------------------

def add_dnc(session: Session, numbers: Iterable[str], campaign: str, source: str, now: datetime) -> int:
    """Adds numbers (already E.164) to the global ("" campaign) or a campaign's list; closes their
    pending contacts. Returns how many were new."""
    wanted = sorted(set(numbers))
    if not wanted:
        return 0
    known = set(session.scalars(select(DoNotCall.number).where(DoNotCall.campaign == campaign,
                                                               DoNotCall.number.in_(wanted))))
    new = [n for n in wanted if n not in known]
    session.add_all(DoNotCall(campaign=campaign, number=n, added_at=now, source=source[:60]) for n in new)
    query = update(DialerContact).where(DialerContact.number.in_(wanted),
                                        DialerContact.status.in_((*DIALABLE, "dialing")))
    if campaign:
        query = query.where(DialerContact.campaign == campaign)
    session.execute(query.values(status="dnc", reason="on the do-not-call list"))
    return len(new)


def remove_dnc(session: Session, number: str, campaign: str) -> bool:
    result = session.execute(delete(DoNotCall).where(DoNotCall.number == number, DoNotCall.campaign == campaign))
    return bool(getattr(result, "rowcount", 0))


def dnc_numbers(session: Session, campaign: str) -> set[str]:
    return set(session.scalars(select(DoNotCall.number).where(DoNotCall.campaign.in_(("", campaign)))))


# -- lists -----------------------------------------------------------------------------------------------

@dataclass
class ListImport:
    list_id: int
    result: ImportResult


def import_list(session: Session, campaign: str, name: str, source: TextIO | Iterable[str], mapping: ColumnMap,
                *, region: str, timezone: str | None, by: str, now: datetime) -> ListImport:
    """Imports a CSV into ``campaign``: the good rows become contacts, the others are kept as the list's
    problems with their line and reason (the caller shows them)."""
    known = set(session.scalars(select(DialerContact.number).where(DialerContact.campaign == campaign)))
    result = import_contacts(source, mapping, default_region=region, known_numbers=known,
                             do_not_call=dnc_numbers(session, campaign), default_timezone=timezone or None)
    row = DialerList(campaign=campaign, name=name[:200], imported_at=now, imported_by=by[:60],
                     mapping=json.dumps({"number": mapping.number, "timezone": mapping.timezone,
                                         "name": mapping.name, "keep": mapping.keep}),
                     imported=len(result.contacts), rejected=len(result.rejected),
                     duplicates=len(result.duplicates), do_not_call=len(result.do_not_call))
    session.add(row)
    session.flush()
    batch: list[dict[str, object]] = []
    for contact in result.contacts:
        batch.append({"campaign": campaign, "list_id": row.id, "number": contact.number, "name": contact.name[:120],
                      "timezones": ",".join(bounding_zones(contact.timezones, now)),
                      "fields": json.dumps(contact.fields, ensure_ascii=False), "status": "pending",
                      "attempts": 0, "outcome_counts": "{}", "last_outcome": "", "reason": ""})
        if len(batch) >= 2000:
            session.execute(insert(DialerContact), batch)
            batch = []
    if batch:
        session.execute(insert(DialerContact), batch)
    problems = [("rejected", r) for r in result.rejected] + [("duplicate", r) for r in result.duplicates] + \
        [("dnc", r) for r in result.do_not_call]
    if problems:
        session.execute(insert(DialerListProblem), [
            {"list_id": row.id, "line": p.line, "kind": kind, "reason": p.reason[:300]} for kind, p in problems])
    return ListImport(row.id, result)


def bounding_zones(zones: Sequence[str], now: datetime) -> tuple[str, ...]:
    """The zones with the earliest and the latest clock: a window open in both is open in every zone
    between them (a US toll-free number spans 42 zones; its row keeps two)."""
    if len(zones) <= 2:
        return tuple(zones)
    by_offset = sorted(zones, key=lambda zone: now.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0))
    return by_offset[0], by_offset[-1]


def add_contact(session: Session, campaign: str, number: str, name: str, timezones: Sequence[str],
                fields: dict[str, str], *, not_before: datetime | None = None) -> bool:
    """One contact (a callback from the ACD's list); False if the campaign has the number already."""
    exists = session.scalar(select(DialerContact.id).where(DialerContact.campaign == campaign,
                                                           DialerContact.number == number))
    if exists is not None:
        return False
    session.add(DialerContact(campaign=campaign, number=number, name=name[:120], timezones=",".join(timezones),
                              fields=json.dumps(fields, ensure_ascii=False), status="pending",
                              not_before=not_before, attempts=0, outcome_counts="{}", last_outcome="", reason=""))
    return True


def normalise_or_none(raw: str, region: str) -> str | None:
    try:
        return normalise_number(raw, region)
    except ValueError:
        return None


# -- history for the pacer -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PastAttempt:
    placed_at: datetime
    answered_at: datetime | None
    human_at: datetime | None
    abandoned_at: datetime | None
    amd_status: str
    outcome: str
    talk_seconds: float | None


def history(session: Session, campaign: str, now: datetime, days: int = 30) -> list[PastAttempt]:
    rows = session.execute(select(DialerAttempt.placed_at, DialerAttempt.answered_at, DialerAttempt.human_at,
                                  DialerAttempt.abandoned_at, DialerAttempt.amd_status, DialerAttempt.outcome,
                                  DialerAttempt.talk_seconds)
                           .where(DialerAttempt.campaign == campaign,
                                  DialerAttempt.placed_at >= now - timedelta(days=days))
                           .order_by(DialerAttempt.placed_at))
    return [PastAttempt(placed.astimezone(UTC), answered, human, abandoned, amd or "", outcome or "",
                        float(talk) if talk is not None else None)
            for placed, answered, human, abandoned, amd, outcome, talk in rows]
