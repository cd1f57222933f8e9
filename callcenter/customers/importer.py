"""Customers from a CSV file (CRM-1), read the way the dialer reads contact lists (dialer/contacts.py:
first non-blank line is the header, ``,`` ``;`` or tab, UTF-8 with or without BOM, line numbers of rows
spanning lines).

Columns are matched by header, case-insensitively: ``name``; ``phone`` / ``phones`` / ``number`` (several
numbers separated by ``;``), ``email`` / ``e-mail``, ``company``, ``notes`` / ``note``, and every custom
field by its name or label. A column matching nothing is reported once (line 1) and ignored.

Each row is taken or reported with its line and reason, on its own: a bad row never stops the good ones.
A row whose number belongs to a customer already (in the file's earlier rows too) updates that customer
(the numbers are added, given values replace the old ones, empty cells change nothing); otherwise a new
customer is created in the importer's unit. Values are stored as given (nothing is neutralised: that is
done where data leaves, in exports), but sizes are capped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.customers.fields import CustomerError, list_fields
from callcenter.customers.models import CustomerPhone
from callcenter.customers.services import (
    CustomerInput,
    create_customer,
    customer_in_scope,
    manager_scope,
    normalise_phones,
    update_customer,
)
from callcenter.dialer.contacts import (
    ContactListError,
    Rejected,
    Source,
    is_blank_row,
    open_csv,
    quote_problem,
    shape_problem,
)

IMPORT_ROWS_MAX = 20_000
IMPORT_BYTES_MAX = 5 * 1024 * 1024
BUILT_IN = {"name": "name", "phone": "phones", "phones": "phones", "number": "phones", "numbers": "phones",
            "email": "email", "e-mail": "email", "company": "company", "notes": "note", "note": "note"}


class CustomerImportError(ContactListError):
    """The file as a whole cannot be imported (empty, no name column, too many rows)."""

    error_id = "invalid-customer-file"


@dataclass
class CustomerImport:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    problems: list[Rejected] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.created):,} created, {len(self.updated):,} updated, "
                f"{len(self.problems):,} problem{'' if len(self.problems) == 1 else 's'}")


def _columns(header: list[str], names: dict[str, str], result: CustomerImport) -> dict[int, str]:
    """Position -> built-in key ("name", "phones"...) or "field:<name>"."""
    columns: dict[int, str] = {}
    seen: set[str] = set()
    for position, title in enumerate(header):
        key = title.strip().lower()
        if not key:
            continue
        target = BUILT_IN.get(key) or (f"field:{names[key]}" if key in names else None)
        if target is None:
            result.problems.append(Rejected(1, f"column {title!r} is not a customer field: ignored"))
        elif target in seen:
            raise CustomerImportError(f"two columns mean the same field ({title!r})")
        else:
            seen.add(target)
            columns[position] = target
    if "name" not in seen and "phones" not in seen:
        raise CustomerImportError("the header needs a name or a phone column (name, phone, email, company, "
                                  "notes, and custom fields by name)")
    return columns


def _existing(session: Session, numbers: list[str]) -> set[int]:
    return set(session.scalars(select(CustomerPhone.customer_id).where(CustomerPhone.number.in_(numbers))))


def import_customers(session: Session, user_id: int, source: Source, region: str,
                     max_rows: int = IMPORT_ROWS_MAX) -> CustomerImport:
    """Reads the file and writes each good row (each in a savepoint); CustomerImportError for the file."""
    scope = manager_scope(session, user_id)
    rows = open_csv(source)
    if rows is None:
        raise CustomerImportError("the file is empty: its first line must name the columns")
    names: dict[str, str] = {}
    for spec in list_fields(session):
        names.setdefault(spec.label.strip().lower(), spec.name)
        names[spec.name] = spec.name
    result = CustomerImport()
    columns = _columns(rows.header, names, result)
    width, count = len(rows.header), 0
    for first, last, row in rows:
        if isinstance(row, BaseException):
            result.problems.append(Rejected(first, quote_problem(first, last, row)))
            continue
        if is_blank_row(row):
            continue
        count += 1
        if count > max_rows:
            raise CustomerImportError(f"more than {max_rows:,} rows: split the file (nothing after line "
                                      f"{first - 1} was read)")
        shape = shape_problem(first, last, row, width)
        if shape:
            result.problems.append(Rejected(first, shape))
            continue
        cells = {target: row[position] for position, target in columns.items()}
        values = {k.removeprefix("field:"): v for k, v in cells.items() if k.startswith("field:") and v.strip()}
        data = CustomerInput(cells.get("name", ""), cells.get("phones", "").split(";"), cells.get("email", ""),
                             cells.get("company", ""), cells.get("note", ""), values)
        try:
            with session.begin_nested():
                matched = _existing(session, normalise_phones(data.phones, region))
                if len(matched) > 1:
                    raise CustomerError("phones", "the numbers belong to different customers: merge them first")
                if matched:
                    customer_id = matched.pop()
                    customer = customer_in_scope(session, scope, customer_id)
                    if not data.name.strip():
                        data = CustomerInput(customer.name, data.phones, data.email, data.company, data.note,
                                             data.values)
                    update_customer(session, user_id, customer_id, data, region, all_given=False)
                    result.updated.append(customer_id)
                else:
                    result.created.append(create_customer(session, user_id, data, region))
        except CustomerError as error:
            reason = ("the number belongs to a customer outside your units" if error.http_status == 404
                      else error.message)
            result.problems.append(Rejected(first, reason))
    session.flush()
    return result

