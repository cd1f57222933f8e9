"""Contact lists of the outbound dialer: a CSV file in, contacts and the rows refused out.

The first non-blank line names the columns; ``ColumnMap`` says which one holds the number, and
optionally the time zone and the name; the other columns are kept as contact fields (all of them,
or those listed in ``keep``). The delimiter is ``,`` unless the header line has more ``;`` or tabs
(Excel in most of Europe writes ``;``). A UTF-8 byte order mark is ignored.

Every row ends in exactly one place of the ``ImportResult``:

- ``contacts``: the number brought to E.164 (``+48221234567``) with ``default_region`` for national
  numbers, the time zone from its column, else from the number (several when the number's area
  spans zones), else ``default_timezone``;
- ``rejected``: a row that cannot be called (wrong cell count, no number, not a valid number, an
  unknown time zone, no time zone at all, broken quotes);
- ``do_not_call``: the number is on the do-not-call list;
- ``duplicates``: the number is already in the list, or on an earlier row of this file.

Each carries the line where its row starts (the header is line 1; a quoted cell with line breaks
counts its lines), and a reason a person can act on. Blank lines are skipped silently. Only a
mapping that names a column the header does not have (or an ambiguous one) stops the whole file.

The source is read as a stream of lines (a text file opened with ``newline=""``, or any iterable
of lines); a ``str`` is taken as the whole text.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import zoneinfo
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, TextIO, TypeAlias

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat
from phonenumbers.timezone import time_zones_for_number

from callcenter.errors import CallcenterError

if TYPE_CHECKING:
    import _csv

#: Headers a do-not-call CSV may use for its number column (compared case-insensitively).
DNC_NUMBER_COLUMNS = ("number", "phone", "msisdn")

_NUMBER_CHARS = re.compile(r"^\+?[0-9\s\-./()]+$")
_SEPARATORS = re.compile(r"[\s\-./()]+")
_QUOTED = re.compile(r'"[^"]*"')
_UNKNOWN_ZONE = "Etc/Unknown"
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "has no known country code",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    NumberParseException.TOO_SHORT_NSN: "is too short",
    NumberParseException.TOO_LONG: "is too long",
}

#: A text file (opened with ``newline=""``), any iterable of lines, or the whole text as one ``str``.
Source: TypeAlias = TextIO | Iterable[str] | str


class ContactListError(CallcenterError, ValueError):
    """The file as a whole cannot be imported (empty, a mapped column missing, too many rows)."""

    error_id = "invalid-contact-list"
    http_status = 400


@dataclass(frozen=True)
class ColumnMap:
    """Which header holds what; names are matched case-insensitively, surrounding spaces ignored."""

    number: str
    timezone: str | None = None
    name: str | None = None
    keep: tuple[str, ...] | None = None  # None: every other column; (): none


@dataclass(frozen=True)
class Contact:
    line: int
    number: str
    timezones: tuple[str, ...]
    name: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportResult:
    contacts: list[Contact] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: list[Rejected] = field(default_factory=list)
    do_not_call: list[Rejected] = field(default_factory=list)

    def summary(self) -> str:
        duplicates = len(self.duplicates)
        return (f"{len(self.contacts):,} imported, {len(self.rejected):,} rejected, "
                f"{duplicates:,} duplicate{'' if duplicates == 1 else 's'}, "
                f"{len(self.do_not_call):,} on the do-not-call list")

    def problems(self) -> list[Rejected]:
        """Every row not imported, in file order (for one report)."""
        return sorted(itertools.chain(self.rejected, self.duplicates, self.do_not_call), key=lambda r: r.line)


# -- numbers and zones -------------------------------------------------------------------------

def check_region(region: str) -> str:
    """``region`` upper-cased, or ValueError when phonenumbers does not know it."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}: use a two-letter country code like PL, GB or US")
    return code


def _parse(raw: str, region: str) -> PhoneNumber:
    text = raw.strip()
    if not text:
        raise ValueError("no number")
    if not _NUMBER_CHARS.match(text):
        raise ValueError(f"{text!r} is not a phone number")
    digits = _SEPARATORS.sub("", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, region)
    except NumberParseException as exc:
        raise ValueError(f"{text!r} {_PARSE_REASONS.get(exc.error_type, 'is not a phone number')}") from None
    if not phonenumbers.is_valid_number(number):
        code = number.country_code or 0
        country = phonenumbers.region_code_for_country_code(code)
        where = country if country.isalpha() and country != phonenumbers.UNKNOWN_REGION else f"+{code}"
        raise ValueError(f"{text!r} is not a valid number for {where}")
    return number


def normalise_number(raw: str, default_region: str) -> str:
    """The number in E.164 (``+48221234567``), or ValueError whose message says what is wrong.

    Spaces, dashes, dots, slashes and parentheses are ignored; ``00`` or ``+`` starts an international
    number; anything else is national in ``default_region`` (ISO 3166 alpha-2).
    """
    number = _parse(raw, check_region(default_region))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def check_timezone(name: str) -> str:
    """The IANA zone as spelled in the database (``europe/warsaw`` -> ``Europe/Warsaw``), or ValueError."""
    found = _zone_names().get(name.strip().lower())
    if found is None:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name like Europe/Warsaw")
    return found


def _zones_of(number: PhoneNumber) -> tuple[str, ...]:
    names = _zone_names()
    return tuple(z for z in time_zones_for_number(number) if z != _UNKNOWN_ZONE and z.lower() in names)


def zones_for_number(number: str) -> tuple[str, ...]:
    """The IANA zones of an E.164 number (several when its area spans zones); () when unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return ()
    return _zones_of(parsed) if phonenumbers.is_valid_number(parsed) else ()


# -- reading the CSV ---------------------------------------------------------------------------

def _delimiter(header_line: str) -> str:
    bare = _QUOTED.sub("", header_line)
    counts = {d: bare.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


@dataclass
class _Rows:
    """A csv.reader over the lines after the header, reporting where each row starts."""

    header: list[str]
    reader: _csv.Reader
    offset: int  # blank lines before the header
    header_lines: int

    def __iter__(self) -> Iterator[tuple[int, int, list[str] | csv.Error]]:
        """(first line, last line, cells or the csv error) for each row, blank ones included."""
        reader = self.reader
        last = self.header_lines
        while True:
            try:
                row: list[str] | csv.Error = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row = exc
            now = reader.line_num
            yield last + 1 + self.offset, now + self.offset, row
            last = now


def _lines(source: Source) -> Iterator[str]:
    if isinstance(source, str):
        return iter(io.StringIO(source, newline=None))
    return iter(source)


def open_csv(source: Source) -> _Rows | None:
    lines = _lines(source)
    offset = 0
    for raw in lines:
        line = raw.removeprefix("\ufeff") if offset == 0 else raw
        if line.strip():
            break
        offset += 1
    else:
        return None
    reader = csv.reader(itertools.chain([line], lines), delimiter=_delimiter(line), strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ContactListError(f"line {offset + 1}: the header cannot be read: {exc}") from None
    return _Rows([h.strip() for h in header], reader, offset, reader.line_num)


def read_header(source: Source) -> list[str]:
    """The column names of the first non-blank line, trimmed (for the mapping screen)."""
    rows = open_csv(source)
    if rows is None:
        raise ContactListError("the file is empty: its first line must name the columns")
    if not any(rows.header):
        raise ContactListError(f"line {rows.offset + 1}: the header has no column names")
    return rows.header


def is_blank_row(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def quote_problem(first: int, last: int, error: csv.Error) -> str:
    if "unexpected end of data" in str(error):
        return f"a quote opened here is never closed: lines {first}-{last} were not read"
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {csv.field_size_limit():,} characters (is a quote not closed?)"
    return f"the quotes in this row are broken ({error})"


def shape_problem(first: int, last: int, row: list[str], width: int) -> str | None:
    """None when the row has as many cells as the header (empty cells past the end are ignored)."""
    if len(row) == width or (len(row) > width and is_blank_row(row[width:])):
        return None
    reason = f"row has {len(row)} cells, the header has {width}"
    if last > first:
        reason += f" (the row runs to line {last}: is a quote not closed?)"
    return reason


@dataclass(frozen=True)
class _Layout:
    number: int
    timezone: int | None
    name: int | None
    fields: tuple[tuple[str, int], ...]


def _layout(header: list[str], mapping: ColumnMap) -> _Layout:
    where: dict[str, list[int]] = {}
    for position, title in enumerate(header):
        where.setdefault(title.lower(), []).append(position)

    wanted = [mapping.number, *(c for c in (mapping.timezone, mapping.name) if c is not None), *(mapping.keep or ())]
    missing = [c for c in wanted if c.strip().lower() not in where]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        columns = ", ".join(h for h in header if h) or "(none)"
        raise ContactListError(f"the header has no column {names}; its columns are: {columns}")

    def column_at(column: str) -> int:
        found = where[column.strip().lower()]
        if len(found) > 1:
            raise ContactListError(f"column {column.strip()!r} appears {len(found)} times in the header")
        return found[0]

    number = column_at(mapping.number)
    timezone = None if mapping.timezone is None else column_at(mapping.timezone)
    name = None if mapping.name is None else column_at(mapping.name)
    if mapping.keep is None:
        used = {number, timezone, name}
        kept = [i for i, title in enumerate(header) if title and i not in used]
        for i in kept:
            column_at(header[i])
    else:
        kept = sorted({column_at(c) for c in mapping.keep})
    return _Layout(number, timezone, name, tuple((header[i], i) for i in kept))


def import_contacts(source: Source, mapping: ColumnMap, *, default_region: str,
                    known_numbers: Container[str] = frozenset(), do_not_call: Container[str] = frozenset(),
                    default_timezone: str | None = None, max_rows: int | None = None) -> ImportResult:
    """Read a contact list; good rows become contacts, every other row is reported with its line.

    ``known_numbers`` (already in the list) and ``do_not_call`` hold E.164 numbers. A row is checked
    in this order: cells, number, do-not-call, already in the list, earlier in this file, time zone.
    Raises ContactListError (a ValueError) for a whole-file problem: empty file, mapping not matching
    the header, more than ``max_rows`` non-blank rows.
    """
    region = check_region(default_region)
    fallback_zone = None if default_timezone is None else check_timezone(default_timezone)
    rows = open_csv(source)
    if rows is None:
        raise ContactListError("the file is empty: its first line must name the columns")
    layout = _layout(rows.header, mapping)
    width = len(rows.header)
    result = ImportResult()
    seen: dict[str, int] = {}
    count = 0
    for first, last, row in rows:
        if isinstance(row, list) and is_blank_row(row):
            continue
        count += 1
        if max_rows is not None and count > max_rows:
            raise ContactListError(f"line {first}: the list has more than {max_rows:,} rows; split the file")
        if isinstance(row, csv.Error):
            result.rejected.append(Rejected(first, quote_problem(first, last, row)))
            continue
        problem = shape_problem(first, last, row, width)
        if problem is not None:
            result.rejected.append(Rejected(first, problem))
            continue
        try:
            parsed = _parse(row[layout.number], region)
        except ValueError as exc:
            result.rejected.append(Rejected(first, str(exc)))
            continue
        number = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
        if number in do_not_call:
            result.do_not_call.append(Rejected(first, f"{number} is on the do-not-call list"))
            continue
        if number in known_numbers:
            result.duplicates.append(Rejected(first, f"{number} is already in the list"))
            continue
        earlier = seen.get(number)
        if earlier is not None:
            result.duplicates.append(Rejected(first, f"{number} is already on line {earlier}"))
            continue
        zone_cell = "" if layout.timezone is None else row[layout.timezone].strip()
        if zone_cell:
            try:
                zones: tuple[str, ...] = (check_timezone(zone_cell),)
            except ValueError:
                result.rejected.append(Rejected(first, f"unknown time zone {zone_cell!r}"))
                continue
        else:
            zones = _zones_of(parsed)
            if not zones and fallback_zone is not None:
                zones = (fallback_zone,)
            if not zones:
                result.rejected.append(Rejected(
                    first, f"no time zone for {number}: add a time-zone column or a default time zone"))
                continue
        seen[number] = first
        name = "" if layout.name is None else row[layout.name].strip()
        fields = {header: row[i].strip() for header, i in layout.fields}
        result.contacts.append(Contact(first, number, zones, name, fields))
    return result


def parse_dnc(source: Source, default_region: str) -> tuple[set[str], list[Rejected]]:
    """A do-not-call list: the E.164 numbers, and the lines that hold no valid number.

    Either one number per line, or a CSV whose header has a column named number, phone or msisdn
    (any case); a CSV without such a column uses its first column. A first line without any digit
    is taken as a header.
    """
    region = check_region(default_region)
    numbers: set[str] = set()
    rejected: list[Rejected] = []
    rows = open_csv(source)
    if rows is None:
        return numbers, rejected
    header = [h.lower() for h in rows.header]
    column = next((header.index(c) for c in DNC_NUMBER_COLUMNS if c in header), None)
    data: Iterable[tuple[int, int, list[str] | csv.Error]] = rows
    if column is None:
        column = 0
        if any(ch.isdigit() for ch in rows.header[0]):  # no header: the first line is a number too
            data = itertools.chain([(rows.offset + 1, rows.offset + rows.header_lines, rows.header)], rows)
    for first, last, row in data:
        if isinstance(row, csv.Error):
            rejected.append(Rejected(first, quote_problem(first, last, row)))
            continue
        if is_blank_row(row):
            continue
        try:
            numbers.add(normalise_number(row[column] if column < len(row) else "", region))
        except ValueError as exc:
            rejected.append(Rejected(first, str(exc)))
    return numbers, rejected
