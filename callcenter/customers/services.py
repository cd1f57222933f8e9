"""Customers (CRM-1): create, change, find, merge, and the history of calls, callbacks and campaign
contacts by any of a customer's numbers. docs/customers.md describes them.

Every function reads the user's ``Scope``: an admin or supervisor (``manager_scope``) sees the customers
of their units, everything only by the all-units grant, nothing with neither (fail closed); an agent
(``customer_scope``) sees, finds, creates and edits the customers of the unit they are in, nothing when
they are in none. Merge and import stay with managers. A customer keeps the unit it was created in. A
customer outside the scope is "not found" (404), never "forbidden", so its existence is not told.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from callcenter.customers.fields import CustomerError, FieldView, check_values, list_fields
from callcenter.customers.models import Customer, CustomerFieldValue, CustomerPhone
from callcenter.db.models import OrgUnit, User
from callcenter.db.queries import ResultPage, paging
from callcenter.dialer.contacts import normalise_number
from callcenter.errors import ActionRefused
from callcenter.users.units import NO_SCOPE, Scope, UnitRef, is_manager, supervisor_scope, unit_of_user

NAME_MAX = 120
EMAIL_MAX = 254
COMPANY_MAX = 200
NOTE_MAX = 5000
PHONES_MAX = 20
SEARCH_MAX = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NOT_FOUND = "No such customer (or not in your units)"
NO_AGENT_UNIT = ("You are in no organisational unit, so there are no customers to show; an admin can put you "
                 "in one (Users page)")
NOT_FOR_YOU = "Customers are for agents, supervisors and admins"


@dataclass(frozen=True)
class CustomerInput:
    """A customer as typed: numbers in any usual format (brought to E.164), custom values by field name."""

    name: str
    phones: Sequence[str] = ()
    email: str = ""
    company: str = ""
    note: str = ""
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    phones: tuple[str, ...]
    email: str
    company: str
    unit: str


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    phones: tuple[str, ...]
    email: str
    company: str
    note: str
    unit: str
    created_at: datetime
    updated_at: datetime
    values: tuple[tuple[FieldView, str], ...]

    def value(self, name: str) -> str:
        return next((v for spec, v in self.values if spec.name == name), "")


def manager_scope(session: Session, user_id: int) -> Scope:
    """The scope of an enabled admin or supervisor; ActionRefused (403) for anyone else or an empty scope."""
    user = session.get(User, user_id)
    scope = supervisor_scope(session, user) if user is not None else None
    if scope is None:
        raise ActionRefused("Customers are for admins and supervisors", 403)
    if scope.empty:
        raise ActionRefused(NO_SCOPE, 403)
    return scope


def customer_scope(session: Session, user_id: int) -> Scope:
    """What a user may see and change of the customers: a manager's scope (``manager_scope``), or an
    enabled agent's own unit; ActionRefused (403) for anyone else, an agent of no unit included."""
    user = session.get(User, user_id)
    if user is None or user.disabled or not ("agent" in user.role_list or is_manager(user)):
        raise ActionRefused(NOT_FOR_YOU, 403)
    if is_manager(user):
        return manager_scope(session, user_id)
    unit = session.get(OrgUnit, user.org_unit_id) if user.org_unit_id is not None else None
    if unit is None:
        raise ActionRefused(NO_AGENT_UNIT, 403)
    return Scope(user.login, top=False, units=(UnitRef(unit.id, unit.name),))


def in_scope(scope: Scope) -> list[ColumnElement[bool]]:
    return [] if scope.top else [Customer.org_unit_id.in_(sorted(scope.unit_ids))]


def customer_in_scope(session: Session, scope: Scope, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not scope.covers(customer.org_unit_id):
        raise CustomerError("id", NOT_FOUND, 404)
    return customer


def _line(value: str, name: str, label: str, longest: int) -> str:
    text = value.strip()
    if len(text) > longest:
        raise CustomerError(name, f"{label}: at most {longest} characters")
    if _LINE_CONTROL.search(text):
        raise CustomerError(name, f"{label}: control characters are not allowed")
    return text


def normalise_phones(raw: Sequence[str], region: str) -> list[str]:
    """The numbers in E.164, in order, without repeats; CustomerError naming the first bad one."""
    numbers: list[str] = []
    for typed in raw:
        if not typed.strip():
            continue
        try:
            number = normalise_number(typed[:40], region)
        except ValueError as error:
            raise CustomerError("phones", str(error)) from None
        if number not in numbers:
            numbers.append(number)
    if len(numbers) > PHONES_MAX:
        raise CustomerError("phones", f"at most {PHONES_MAX} numbers")
    return numbers


@dataclass(frozen=True)
class Checked:
    name: str
    phones: list[str]
    email: str
    company: str
    note: str
    values: dict[int, str]


def check_input(session: Session, data: CustomerInput, region: str, *, all_given: bool = True) -> Checked:
    """The input checked and normalised; CustomerError names the first field refused. ``all_given``:
    required custom fields must be in ``data.values`` (a form); else only the given ones are checked."""
    name = _line(data.name, "name", "Name", NAME_MAX)
    if not name:
        raise CustomerError("name", "Name is required")
    email = _line(data.email, "email", "E-mail", EMAIL_MAX)
    if email and not _EMAIL.match(email):
        raise CustomerError("email", f"E-mail: {email!r} is not an e-mail address")
    company = _line(data.company, "company", "Company", COMPANY_MAX)
    note = data.note.strip()
    if len(note) > NOTE_MAX:
        raise CustomerError("note", f"Notes: at most {NOTE_MAX} characters")
    if _CONTROL.search(note):
        raise CustomerError("note", "Notes: control characters are not allowed")
    phones = normalise_phones(data.phones, region)
    values = check_values(list_fields(session), data.values, all_given=all_given)
    return Checked(name, phones, email, company, note, values)


def _claim_phones(session: Session, scope: Scope, customer: Customer, phones: list[str], *,
                  replace: bool) -> None:
    taken = session.execute(select(CustomerPhone.number, Customer.id, Customer.name, Customer.org_unit_id)
                            .join(Customer, Customer.id == CustomerPhone.customer_id)
                            .where(CustomerPhone.number.in_(phones), Customer.id != customer.id)).first()
    if taken is not None:
        number, other_id, other_name, unit_id = taken
        who = f"{other_name} (#{other_id})" if scope.covers(unit_id) else "another customer"
        raise CustomerError("phones", f"{number} already belongs to {who}", 409)
    have = set(session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer.id)))
    if replace:
        session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == customer.id,
                                                    CustomerPhone.number.not_in(phones)))
    session.add_all(CustomerPhone(customer_id=customer.id, number=n) for n in phones if n not in have)


def _set_values(session: Session, customer_id: int, values: Mapping[int, str]) -> None:
    rows = {row.field_id: row for row in session.scalars(
        select(CustomerFieldValue).where(CustomerFieldValue.customer_id == customer_id))}
    for field_id, value in values.items():
        row = rows.get(field_id)
        if row is None and value:
            session.add(CustomerFieldValue(customer_id=customer_id, field_id=field_id, value=value))
        elif row is not None and value:
            row.value = value
        elif row is not None:
            session.delete(row)


def _new_unit(session: Session, scope: Scope, user_id: int) -> int | None:
    """The unit a new customer keeps: its creator's unit when in scope, else the first unit of the scope."""
    unit = unit_of_user(session, user_id)
    if unit is not None and scope.covers(unit):
        return unit
    return scope.units[0].id if scope.units else None


def create_customer(session: Session, user_id: int, data: CustomerInput, region: str,
                    now: datetime | None = None, *, all_given: bool = True) -> int:
    """``all_given=False``: required custom fields may stay empty (a customer made from a caller's number
    for a ticket, completed later from its profile)."""
    scope = customer_scope(session, user_id)
    checked = check_input(session, data, region, all_given=all_given)
    now = now or datetime.now(UTC)
    customer = Customer(name=checked.name, email=checked.email, company=checked.company, note=checked.note,
                        org_unit_id=_new_unit(session, scope, user_id), created_at=now, updated_at=now)
    session.add(customer)
    session.flush()
    _claim_phones(session, scope, customer, checked.phones, replace=False)
    _set_values(session, customer.id, checked.values)
    session.flush()
    return customer.id


def update_customer(session: Session, user_id: int, customer_id: int, data: CustomerInput, region: str,
                    *, all_given: bool = True, now: datetime | None = None) -> None:
    """Changes the customer; with ``all_given`` (a form) its numbers become ``data.phones`` exactly and
    custom values not given are cleared; else (an import) numbers are added and only given values set."""
    scope = customer_scope(session, user_id)
    customer = customer_in_scope(session, scope, customer_id)
    checked = check_input(session, data, region, all_given=all_given)
    customer.name = checked.name
    if all_given or checked.email:
        customer.email = checked.email
    if all_given or checked.company:
        customer.company = checked.company
    if all_given or checked.note:
        customer.note = checked.note
    customer.updated_at = now or datetime.now(UTC)
    _claim_phones(session, scope, customer, checked.phones, replace=all_given)
    _set_values(session, customer.id, checked.values)
    session.flush()


def link_number(session: Session, user_id: int, customer_id: int, typed: str, region: str,
                now: datetime | None = None) -> str:
    """Adds the number (brought to E.164 with ``region``) to the customer's numbers (the screen pop's
    "search the customer database to link"); CustomerError when it is not a number, belongs to another
    customer (409) or the customer is not in scope (404). The number as stored."""
    scope = customer_scope(session, user_id)
    customer = customer_in_scope(session, scope, customer_id)
    numbers = normalise_phones([typed], region)
    if not numbers:
        raise CustomerError("number", "There is no number to link")
    have = list(session.scalars(select(CustomerPhone.number).where(CustomerPhone.customer_id == customer.id)))
    if numbers[0] not in have and len(have) >= PHONES_MAX:
        raise CustomerError("phones", f"at most {PHONES_MAX} numbers")
    _claim_phones(session, scope, customer, numbers, replace=False)
    customer.updated_at = now or datetime.now(UTC)
    session.flush()
    return numbers[0]


def delete_customer(session: Session, user_id: int, customer_id: int) -> None:
    session.delete(customer_in_scope(session, manager_scope(session, user_id), customer_id))


def _phones_of(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for customer_id, number in session.execute(select(CustomerPhone.customer_id, CustomerPhone.number)
                                               .where(CustomerPhone.customer_id.in_(ids))
                                               .order_by(CustomerPhone.id)):
        found.setdefault(customer_id, []).append(number)
    return {i: tuple(found.get(i, ())) for i in ids}


def _unit_names(session: Session) -> dict[int, str]:
    return {i: n for i, n in session.execute(select(OrgUnit.id, OrgUnit.name))}


def get_customer(session: Session, user_id: int, customer_id: int) -> CustomerView:
    customer = customer_in_scope(session, customer_scope(session, user_id), customer_id)
    stored = {row.field_id: row.value for row in session.scalars(
        select(CustomerFieldValue).where(CustomerFieldValue.customer_id == customer_id))}
    values = tuple((spec, stored.get(spec.id, "")) for spec in list_fields(session))
    unit = _unit_names(session).get(customer.org_unit_id or 0, "")
    return CustomerView(customer.id, customer.name, _phones_of(session, [customer.id])[customer.id],
                        customer.email, customer.company, customer.note, unit, customer.created_at,
                        customer.updated_at, values)


def find_by_number(session: Session, user_id: int, number: str) -> int | None:
    """The id of the customer in scope with this E.164 number, if any."""
    scope = customer_scope(session, user_id)
    return session.scalar(select(Customer.id).join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                          .where(CustomerPhone.number == number, *in_scope(scope)))


def search_conditions(text: str) -> list[ColumnElement[bool]]:
    """One box for every field: part of the name, e-mail, company, notes or a custom value (any case),
    or the digits typed anywhere in one of the numbers."""
    typed = text.strip().lower()
    if not typed:
        return []
    found: list[ColumnElement[bool]] = [
        func.lower(column).contains(typed, autoescape=True)
        for column in (Customer.name, Customer.email, Customer.company, Customer.note)]
    found.append(exists().where(CustomerFieldValue.customer_id == Customer.id,
                                func.lower(CustomerFieldValue.value).contains(typed, autoescape=True)))
    digits = re.sub(r"\D", "", typed)
    if digits:
        found.append(exists().where(CustomerPhone.customer_id == Customer.id,
                                    CustomerPhone.number.contains(digits, autoescape=True)))
    return [or_(*found)]


def search_customers(session: Session, user_id: int, text: str, page: int, per_page: int
                     ) -> ResultPage[CustomerRow]:
    scope = customer_scope(session, user_id)
    if len(text) > SEARCH_MAX:
        raise CustomerError("q", f"Search: at most {SEARCH_MAX} characters")
    conditions = [*in_scope(scope), *search_conditions(text)]
    total = session.scalar(select(func.count()).select_from(Customer).where(*conditions)) or 0
    pages, offset = paging(page, per_page, total)
    rows = session.execute(select(Customer.id, Customer.name, Customer.email, Customer.company,
                                  Customer.org_unit_id).where(*conditions)
                           .order_by(func.lower(Customer.name), Customer.id).offset(offset).limit(per_page)).all()
    phones = _phones_of(session, [r.id for r in rows])
    units = _unit_names(session)
    return ResultPage(tuple(CustomerRow(r.id, r.name, phones[r.id], r.email, r.company,
                                        units.get(r.org_unit_id or 0, "")) for r in rows),
                      page, pages, total, ("Name", "Numbers", "E-mail", "Company", "Unit"))


def merge_customers(session: Session, user_id: int, keep_id: int, other_id: int,
                    now: datetime | None = None) -> None:
    """``other`` goes into ``keep``: its numbers and custom values move (where ``keep`` has a value, it
    stays), its empty e-mail, company and notes are filled from ``other``; then ``other`` is deleted. The
    history follows the numbers."""
    if keep_id == other_id:
        raise CustomerError("other", "Choose two different customers")
    scope = manager_scope(session, user_id)
    keep = customer_in_scope(session, scope, keep_id)
    other = customer_in_scope(session, scope, other_id)
    for name in ("email", "company", "note"):
        if not getattr(keep, name) and getattr(other, name):
            setattr(keep, name, getattr(other, name))
    session.execute(update(CustomerPhone).where(CustomerPhone.customer_id == other.id)
                    .values(customer_id=keep.id))
    kept = {row.field_id: row for row in session.scalars(
        select(CustomerFieldValue).where(CustomerFieldValue.customer_id == keep.id))}
    for row in session.scalars(select(CustomerFieldValue).where(CustomerFieldValue.customer_id == other.id)):
        mine = kept.get(row.field_id)
        if mine is None:
            row.customer_id = keep.id
        elif not mine.value:
            mine.value = row.value
    session.flush()
    keep.updated_at = now or datetime.now(UTC)
    session.delete(other)
    session.flush()
