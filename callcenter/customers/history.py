"""A customer's history, newest first: every call by any of its numbers (from the CDRs, with its
recording when there is one ready), every callback and every campaign contact. Calls and recordings are
those the manager's scope shows (the units their users were in when the call happened, as on the CDR
and recordings pages); callbacks and campaign contacts carry no unit and are shown for the number."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from callcenter.customers.models import CustomerPhone
from callcenter.customers.services import customer_in_scope, customer_scope
from callcenter.db.models import AcdCall, Callback, Cdr, CdrUser, DialerContact, Recording
from callcenter.users.units import Scope

HISTORY_MAX = 200


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    kind: str  # call, callback, campaign, ticket
    number: str
    summary: str
    recording_id: str = ""
    link: str = ""  # a page of the item (a ticket's)


# What other features add to a customer's history (the tickets'): (session, the reader's scope, customer id,
# at most this many) -> items, of the reader's scope only.
HistorySource = Callable[[Session, Scope, int, int], list[HistoryItem]]


def number_forms(e164: str) -> set[str]:
    """How a number may appear in the call records: E.164, without the +, with 00, and national (with
    and without the trunk 0)."""
    forms = {e164, e164.lstrip("+"), "00" + e164.lstrip("+")}
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return forms
    national = phonenumbers.national_significant_number(parsed)
    prefix = phonenumbers.ndd_prefix_for_region(phonenumbers.region_code_for_number(parsed) or "", True) or ""
    return forms | {national, prefix + national}


def all_forms(numbers: list[str]) -> list[str]:
    return sorted(set().union(*(number_forms(n) for n in numbers)))


def customer_recording(session: Session, user_id: int, customer_id: int, recording_id: str) -> str | None:
    """The path (under the files directory) of a ready recording of one of the customer's calls, if the
    user's scope covers both the customer and the recording's unit; None otherwise."""
    scope = customer_scope(session, user_id)
    customer = customer_in_scope(session, scope, customer_id)
    recording = session.get(Recording, recording_id)
    if recording is None or recording.status != "ready" or not recording.path or not scope.covers(recording.unit_id):
        return None
    numbers = list(session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer.id)))
    if not numbers:
        return None
    forms = all_forms(numbers)
    ours = session.scalar(select(
        exists().where(Cdr.linkedid == recording.linkedid, or_(Cdr.src.in_(forms), Cdr.dst.in_(forms)))
        | exists().where(AcdCall.id == recording.acd_call_id, AcdCall.number.in_(forms))))
    return recording.path if ours else None


def customer_history(session: Session, user_id: int, customer_id: int, limit: int = HISTORY_MAX,
                     sources: Sequence[HistorySource] = ()) -> list[HistoryItem]:
    scope = customer_scope(session, user_id)
    customer = customer_in_scope(session, scope, customer_id)
    numbers = list(session.scalars(select(CustomerPhone.number)
                                   .where(CustomerPhone.customer_id == customer.id)))
    if not numbers:  # nothing to find by number; what other features keep by the customer still shows
        found = [item for source in sources for item in source(session, scope, customer.id, limit)]
        return sorted(found, key=lambda item: item.at, reverse=True)[:limit]
    forms = all_forms(numbers)
    items: list[HistoryItem] = []
    calls = select(Cdr).where(or_(Cdr.src.in_(forms), Cdr.dst.in_(forms)))
    if not scope.top:
        calls = calls.where(exists().where(CdrUser.cdr_id == Cdr.id, CdrUser.unit_id.in_(sorted(scope.unit_ids))))
    cdrs = list(session.scalars(calls.order_by(Cdr.calldate.desc()).limit(limit)))
    recordings: dict[str, str] = {}
    if cdrs:
        ready = select(Recording.linkedid, Recording.id, Recording.unit_id).where(
            Recording.linkedid.in_([c.linkedid for c in cdrs]), Recording.status == "ready")
        for linkedid, recording_id, unit_id in session.execute(ready.order_by(Recording.started_at)):
            if scope.covers(unit_id):
                recordings.setdefault(linkedid, recording_id)
    for cdr in cdrs:
        inbound = cdr.src in forms
        who = cdr.dst_name or cdr.dst if inbound else cdr.src
        summary = (f"{'Inbound' if inbound else 'Outbound'} call {'to' if inbound else 'from'} {who}: "
                   f"{cdr.disposition}, {cdr.billsec} s talked")
        items.append(HistoryItem(cdr.calldate, "call", cdr.src if inbound else cdr.dst, summary,
                                 recordings.get(cdr.linkedid, "")))
    for callback in session.scalars(select(Callback).where(Callback.number.in_(forms))
                                    .order_by(Callback.last_at.desc()).limit(limit)):
        summary = (f"Callback ({callback.reason}, {callback.count} call{'' if callback.count == 1 else 's'}"
                   f"{', queue ' + callback.queue if callback.queue else ''}): {callback.status}")
        items.append(HistoryItem(callback.last_at, "callback", callback.number, summary))
    for contact in session.scalars(select(DialerContact).where(DialerContact.number.in_(numbers))
                                   .limit(limit)):
        # A contact not tried yet: when it is due, else when the customer was created.
        at = contact.last_attempt_at or contact.not_before or customer.created_at
        summary = (f"Campaign {contact.campaign}: {contact.status}, {contact.attempts} attempt"
                   f"{'' if contact.attempts == 1 else 's'}"
                   f"{', last ' + contact.last_outcome if contact.last_outcome else ''}")
        items.append(HistoryItem(at, "campaign", contact.number, summary))
    for source in sources:
        items.extend(source(session, scope, customer.id, limit))
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]
