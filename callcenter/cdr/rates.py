"""The rate table of calls out through the trunk (CDR-1: destination, rate, charge).

A CSV file with a header ``prefix,destination,rate``: ``4915,Germany Mobile,0.1200``. The dialled
number is brought to international form (``+`` or ``00`` dropped; a national ``0`` replaced by
``[cdr] country_code`` when set) and the longest matching prefix wins. ``rate`` is per minute.

Charge: nothing for an unanswered call; else the billed seconds rounded *up* to the billing
increment (and at least the billing minimum), times rate / 60, rounded half-up to 4 decimals.
A bad row is reported with its line and skipped; the good rows are used.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from callcenter.cdr.settings import CdrSettings

log = logging.getLogger(__name__)

CHARGE_PLACES = Decimal("0.0001")
_PREFIX = re.compile(r"^[0-9]{1,16}$")


@dataclass(frozen=True)
class Rate:
    prefix: str
    destination: str
    per_minute: Decimal


@dataclass(frozen=True)
class RateTable:
    rates: dict[str, Rate] = field(default_factory=dict)
    country_code: str = ""
    increment: int = 1
    minimum: int = 0

    def international(self, number: str) -> str:
        digits = re.sub(r"[^0-9+]", "", number)
        if digits.startswith("+"):
            return digits[1:]
        if digits.startswith("00"):
            return digits[2:]
        if digits.startswith("0") and self.country_code:
            return self.country_code + digits[1:]
        return digits

    def find(self, number: str) -> Rate | None:
        digits = self.international(number)
        for end in range(min(len(digits), 16), 0, -1):
            rate = self.rates.get(digits[:end])
            if rate is not None:
                return rate
        return None

    def charge(self, rate: Rate, billsec: int) -> Decimal:
        if billsec <= 0:
            return Decimal("0.0000")
        billed = max(self.minimum, math.ceil(billsec / self.increment) * self.increment)
        return (rate.per_minute * billed / 60).quantize(CHARGE_PLACES, rounding=ROUND_HALF_UP)


def load_rates(path: Path, *, country_code: str = "", increment: int = 1,
               minimum: int = 0) -> tuple[RateTable, list[str]]:
    """The table and the problems found (``file:line: reason``); a missing file is an empty table."""
    problems: list[str] = []
    rates: dict[str, Rate] = {}
    if not path.exists():
        return RateTable({}, country_code, increment, minimum), problems
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return RateTable({}, country_code, increment, minimum), problems
        if [h.strip().lower() for h in header] != ["prefix", "destination", "rate"]:
            problems.append(f"{path}:1: the header must be prefix,destination,rate (got {','.join(header)})")
            return RateTable({}, country_code, increment, minimum), problems
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 3:
                problems.append(f"{path}:{line}: expected 3 columns, got {len(row)}")
                continue
            prefix, destination, rate_text = (cell.strip() for cell in row)
            prefix = prefix.lstrip("+")
            if not _PREFIX.match(prefix):
                problems.append(f"{path}:{line}: prefix {prefix!r} must be 1-16 digits")
                continue
            try:
                per_minute = Decimal(rate_text)
            except InvalidOperation:
                problems.append(f"{path}:{line}: rate {rate_text!r} is not a number")
                continue
            if not per_minute.is_finite() or per_minute < 0 or per_minute >= 10_000_000:
                problems.append(f"{path}:{line}: rate {rate_text!r} must be 0 or more")
                continue
            if not destination:
                problems.append(f"{path}:{line}: the destination name is empty")
                continue
            if prefix in rates:
                problems.append(f"{path}:{line}: prefix {prefix} appears twice; the first one is kept")
                continue
            rates[prefix] = Rate(prefix, destination[:120], per_minute)
    return RateTable(rates, country_code, increment, minimum), problems


def load_rate_table(settings: CdrSettings) -> RateTable:
    """The configured rate table; bad rows are logged and skipped, a missing file gives no rates."""
    path = Path(settings.rates_file)
    table, problems = load_rates(path, country_code=settings.country_code, increment=settings.billing_increment,
                                 minimum=settings.billing_minimum)
    for problem in problems:
        log.error("rate table: %s (row skipped)", problem)
    if path.exists():
        log.info("rate table %s: %d prefixes", path, len(table.rates))
    else:
        log.info("no rate table at %s: trunk calls get no rate or charge", path)
    return table
