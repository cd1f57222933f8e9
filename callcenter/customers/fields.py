"""Custom fields of a customer (CRM-1): the definitions top admins make (text, number, date, choice;
required or not; shown on the incoming-call card or not) and the check of a value against its kind."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callcenter.customers.models import CustomerField, CustomerFieldValue
from callcenter.errors import CallcenterError

FIELD_KINDS = ("text", "number", "date", "choice")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Column names the importer and the form use for the built-in fields: a custom field may not take them.
RESERVED = ("id", "name", "phone", "phones", "email", "company", "note", "notes", "unit")
VALUE_MAX = 2000
LABEL_MAX = 120
CHOICES_MAX = 50
CHOICE_MAX = 100
_NUMBER = re.compile(r"^-?[0-9]{1,15}([.,][0-9]{1,6})?$")


class CustomerError(CallcenterError, ValueError):
    """A customer or custom field value is refused: ``field`` names the form field, ``message`` says why."""

    error_id = "invalid-customer"
    http_status = 400

    def __init__(self, field: str, message: str, http_status: int = 400) -> None:
        self.field = field
        self.message = message
        self.http_status = http_status
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class FieldView:
    id: int
    name: str
    label: str
    kind: str
    choices: tuple[str, ...]
    required: bool
    on_card: bool
    position: int


@dataclass(frozen=True)
class FieldInput:
    name: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = False
    on_card: bool = False
    position: int = 0


def _view(row: CustomerField) -> FieldView:
    return FieldView(row.id, row.name, row.label, row.kind, tuple(c for c in row.choices.split("\n") if c),
                     row.required, row.on_card, row.position)


def list_fields(session: Session) -> list[FieldView]:
    return [_view(row) for row in session.scalars(
        select(CustomerField).order_by(CustomerField.position, CustomerField.name))]


def check_value(spec: FieldView, raw: str) -> str:
    """The value as stored (numbers with a dot, dates ISO), "" for none; CustomerError when it does not fit."""
    value = raw.strip()
    if not value:
        if spec.required:
            raise CustomerError(spec.name, f"{spec.label} is required")
        return ""
    if len(value) > VALUE_MAX:
        raise CustomerError(spec.name, f"{spec.label}: at most {VALUE_MAX} characters")
    if spec.kind == "number":
        if not _NUMBER.match(value):
            raise CustomerError(spec.name, f"{spec.label}: {value!r} is not a number")
        return value.replace(",", ".")
    if spec.kind == "date":
        try:
            if not re.fullmatch(r"\d{4}-\d\d-\d\d", value):
                raise ValueError(value)
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise CustomerError(spec.name, f"{spec.label}: {value!r} is not a date; write it as YYYY-MM-DD") from None
    if spec.kind == "choice" and value not in spec.choices:
        raise CustomerError(spec.name, f"{spec.label}: one of {', '.join(spec.choices)}")
    return value


def check_values(specs: list[FieldView], raw: Mapping[str, str], *, all_given: bool) -> dict[int, str]:
    """field id -> value of the fields in ``raw`` (by name); with ``all_given`` every field is checked (a
    required one missing from ``raw`` is refused), else only those ``raw`` names."""
    checked: dict[int, str] = {}
    for spec in specs:
        if spec.name in raw or all_given:
            checked[spec.id] = check_value(spec, raw.get(spec.name, ""))
    return checked


def save_field(session: Session, data: FieldInput) -> int:
    """Creates the field, or updates the one of that name."""
    name = data.name.strip().lower()
    if not FIELD_NAME.match(name):
        raise CustomerError("name", "lower-case letters, digits and _, starting with a letter (at most 64)")
    if name in RESERVED:
        raise CustomerError("name", f"{name!r} is a built-in field")
    label = data.label.strip() or name
    if len(label) > LABEL_MAX:
        raise CustomerError("label", f"at most {LABEL_MAX} characters")
    if data.kind not in FIELD_KINDS:
        raise CustomerError("kind", f"one of {', '.join(FIELD_KINDS)}")
    choices = tuple(dict.fromkeys(c.strip() for c in data.choices if c.strip()))
    if data.kind == "choice" and not choices:
        raise CustomerError("choices", "a choice field needs at least one choice (one per line)")
    if len(choices) > CHOICES_MAX or any(len(c) > CHOICE_MAX for c in choices):
        raise CustomerError("choices", f"at most {CHOICES_MAX} choices of {CHOICE_MAX} characters")
    if not -10000 <= data.position <= 10000:
        raise CustomerError("position", "a whole number from -10000 to 10000")
    row = session.scalar(select(CustomerField).where(CustomerField.name == name))
    if row is None:
        row = CustomerField(name=name)
        session.add(row)
    row.label, row.kind, row.required, row.on_card, row.position = (label, data.kind, data.required,
                                                                    data.on_card, data.position)
    row.choices = "\n".join(choices) if data.kind == "choice" else ""
    session.flush()
    return row.id


def remove_field(session: Session, name: str) -> None:
    """Removes the field and every customer's value of it."""
    row = session.scalar(select(CustomerField).where(CustomerField.name == name))
    if row is None:
        raise CustomerError("name", f"no field {name!r}", 404)
    session.execute(delete(CustomerFieldValue).where(CustomerFieldValue.field_id == row.id))
    session.delete(row)


def values_in_use(session: Session, field_id: int) -> int:
    return session.scalar(select(func.count()).select_from(CustomerFieldValue)
                          .where(CustomerFieldValue.field_id == field_id, CustomerFieldValue.value != "")) or 0


def card_fields(session: Session, customer_id: int, *, on_card: bool = True) -> dict[str, str]:
    """label -> value of the customer's fields shown on the incoming-call card (non-empty, in order);
    every non-empty field without ``on_card``."""
    shown = [CustomerField.on_card.is_(True)] if on_card else []
    rows = session.execute(select(CustomerField.label, CustomerFieldValue.value)
                           .join(CustomerFieldValue, CustomerFieldValue.field_id == CustomerField.id)
                           .where(CustomerFieldValue.customer_id == customer_id, *shown,
                                  CustomerFieldValue.value != "")
                           .order_by(CustomerField.position, CustomerField.name))
    return {label: value for label, value in rows}


def profile_fields(session: Session, customer_id: int) -> dict[str, str]:
    """label -> value of every non-empty custom field of the customer, in order (the profile pane)."""
    return card_fields(session, customer_id, on_card=False)
