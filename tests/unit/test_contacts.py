"""Contact-list import: E.164, time zones, mapping, and every refused row reported with its line."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from callcenter.dialer.contacts import (
    ColumnMap,
    Contact,
    ContactListError,
    ImportResult,
    Rejected,
    import_contacts,
    normalise_number,
    parse_dnc,
    read_header,
    zones_for_number,
)
from callcenter.errors import CallcenterError

MAP = ColumnMap("phone", timezone="tz", name="name")


def run(text: str, mapping: ColumnMap = MAP, **kwargs: Any) -> ImportResult:
    kwargs.setdefault("default_region", "PL")
    return import_contacts(io.StringIO(text, newline=""), mapping, **kwargs)


def lines(found: Sequence[Contact | Rejected]) -> list[int]:
    return [r.line for r in found]


@pytest.mark.parametrize(("raw", "region", "e164"), [
    ("+48 22 123 45 67", "PL", "+48221234567"),
    ("0048-22-123-45-67", "PL", "+48221234567"),
    ("22 123 45 67", "PL", "+48221234567"),
    ("(212) 736-5000", "US", "+12127365000"),
    ("212.736.5000", "us", "+12127365000"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 (0)20 7946 0958", "PL", "+442079460958"),
    ("\u00a0+48 22 123 45 67 ", "PL", "+48221234567"),  # a non-breaking space from a spreadsheet
])
def test_numbers_are_brought_to_e164(raw: str, region: str, e164: str) -> None:
    assert normalise_number(raw, region) == e164


@pytest.mark.parametrize(("raw", "reason"), [
    ("12ab", "'12ab' is not a phone number"),
    ("", "no number"),
    ("+48 22 123 45 67 ext 5", "'+48 22 123 45 67 ext 5' is not a phone number"),
    ("4.8221234567E+10", "'4.8221234567E+10' is not a phone number"),  # what Excel does to long numbers
    ("+1 555 0100", "'+1 555 0100' is not a valid number for US"),
    ("22 12", "'22 12' is not a valid number for PL"),
    ("+48 1", "'+48 1' is too short"),
    ("+999 1234567", "'+999 1234567' has no known country code"),
    ("48+221234567", "'48+221234567' is not a phone number"),
    ("+800 1234", "'+800 1234' is not a valid number for +800"),  # international freephone: no country
])
def test_a_bad_number_says_what_is_wrong(raw: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_number(raw, "PL")
    assert str(caught.value) == reason


def test_an_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        normalise_number("221234567", "XX")


def test_good_rows_are_imported_with_zones_fields_and_the_line_they_start_on() -> None:
    text = ("Name,Phone,TZ,City,Notes\n"
            "Jan Kowalski,+48 22 123 45 67,,Warszawa,\"likes, commas\"\n"
            "\"Anna\nMaria\",+1 (212) 736-5000,,\"New\nYork\",\n"  # lines 3 to 5: two cells with a line break
            "Bob,+1 907 555 1234,,Juneau,\n"
            "Tom,+44 20 7946 0958,america/chicago,London,moved\n")
    result = run(text)
    assert [(c.line, c.number, c.timezones, c.name) for c in result.contacts] == [
        (2, "+48221234567", ("Europe/Warsaw",), "Jan Kowalski"),
        (3, "+12127365000", ("America/New_York",), "Anna\nMaria"),
        (6, "+19075551234", ("America/Adak", "America/Anchorage"), "Bob"),  # Alaska spans two zones
        (7, "+442079460958", ("America/Chicago",), "Tom"),  # the column wins, spelled as the database does
    ]
    assert result.contacts[0].fields == {"City": "Warszawa", "Notes": "likes, commas"}
    assert list(result.contacts[1].fields) == ["City", "Notes"]  # file order
    assert result.rejected == result.duplicates == result.do_not_call == []
    assert result.summary() == "4 imported, 0 rejected, 0 duplicates, 0 on the do-not-call list"


def test_every_bad_row_is_reported_with_its_line_and_the_good_rows_kept() -> None:
    text = ("name,phone,tz,city\n"
            "A,+48 22 123 45 67,,x\n"          # 2 good
            "\n"                               # 3 blank: skipped silently
            "B,12ab,,x\n"                      # 4
            "C,,,x\n"                          # 5
            "\"D\nstill D\",+48 22 765 43 21,,x\n"  # 6-7 good, a line break inside a quoted cell
            "E,+1 555 0100,,x\n"               # 8: the quoted cell above is counted as two lines
            "F,+48 22 111 22 33,Mars/Base,x\n"  # 9
            "G,+48 22 111 22 34,,x,extra\n"    # 10
            "H,+48 22 111 22 35\n"             # 11
            "I,+48 22 111 22 36,,x,,\n"        # 12 good: empty cells past the end are ignored
            ",,,\n"                            # 13 only delimiters: blank
            "J,+48 22 111 22 37,,\"x\"y\n"     # 14 broken quotes
            "K,+48 22 111 22 38,,x\n")         # 15 good
    result = run(text)
    assert lines(result.contacts) == [2, 6, 12, 15]
    assert [(r.line, r.reason) for r in result.rejected] == [
        (4, "'12ab' is not a phone number"),
        (5, "no number"),
        (8, "'+1 555 0100' is not a valid number for US"),
        (9, "unknown time zone 'Mars/Base'"),
        (10, "row has 5 cells, the header has 4"),
        (11, "row has 2 cells, the header has 4"),
        (14, "the quotes in this row are broken (',' expected after '\"')"),
    ]
    assert result.summary() == "4 imported, 7 rejected, 0 duplicates, 0 on the do-not-call list"
    assert str(result.rejected[0]) == "line 4: '12ab' is not a phone number"


def test_a_quote_never_closed_is_reported_where_it_opens() -> None:
    result = run('name,phone\n"Ann,+48 22 123 45 67\nBob,+48 22 765 43 21\nCy,+48 22 111 22 33\n',
                 ColumnMap("phone", name="name"))
    assert result.contacts == []
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "a quote opened here is never closed: lines 2-4 were not read")]
    spanning = run('name,phone,x\n"Ann,+48 22 123 45 67,x\nBob",+48 22 765 43 21\nCy,+48 22 111 22 33,x\n',
                   ColumnMap("phone", name="name"))
    assert lines(spanning.contacts) == [4]
    huge = run('phone,note\n+48 22 123 45 67,"' + "x" * 200_000 + '"\n+48 22 765 43 21,y\n', ColumnMap("phone"))
    assert lines(huge.contacts) == [3]
    assert [(r.line, r.reason) for r in huge.rejected] == [
        (2, "a cell is longer than 131,072 characters (is a quote not closed?)")]
    assert [(r.line, r.reason) for r in spanning.rejected] == [
        (2, "row has 2 cells, the header has 3 (the row runs to line 3: is a quote not closed?)")]


def test_semicolons_tabs_bom_and_header_case_are_handled() -> None:
    semicolons = "\ufeffNAME ; Phone ;City\nJan;+48 22 123 45 67;Kraków\nAnn;22 765 43 21;\"Łódź; centrum\"\n"
    result = run(semicolons, ColumnMap(" phone", name="name"))
    assert [(c.number, c.name, c.fields) for c in result.contacts] == [
        ("+48221234567", "Jan", {"City": "Kraków"}), ("+48227654321", "Ann", {"City": "Łódź; centrum"})]
    assert read_header(semicolons) == ["NAME", "Phone", "City"]
    tabs = run("phone\tnote\n+48 22 123 45 67\ta, b; c\n", ColumnMap("PHONE"))
    assert tabs.contacts[0].fields == {"note": "a, b; c"}
    assert read_header(io.StringIO('"Name; full",phone,city\n')) == ["Name; full", "phone", "city"]


def test_blank_lines_before_the_header_shift_the_line_numbers() -> None:
    result = run("\n\nphone\n+48 22 123 45 67\nnope\n", ColumnMap("phone"))
    assert lines(result.contacts) == [4] and lines(result.rejected) == [5]


def test_duplicates_in_the_file_and_in_the_list_are_skipped() -> None:
    text = ("phone\n+48 22 123 45 67\n0048 221 234 567\n22-123-45-67\n+44 20 7946 0958\n"
            "bad\nbad\n+48 22 765 43 21\n")
    result = run(text, ColumnMap("phone"), known_numbers={"+442079460958"})
    assert lines(result.contacts) == [2, 8]
    assert [(r.line, r.reason) for r in result.duplicates] == [
        (3, "+48221234567 is already on line 2"),
        (4, "+48221234567 is already on line 2"),
        (5, "+442079460958 is already in the list"),
    ]
    assert lines(result.rejected) == [6, 7]  # a bad number twice is two bad rows, not a duplicate
    assert result.summary() == "2 imported, 2 rejected, 3 duplicates, 0 on the do-not-call list"


def test_a_rejected_row_does_not_hide_a_later_good_row_with_the_same_number() -> None:
    result = run("phone,tz\n+48 22 123 45 67,Nowhere\n+48 22 123 45 67,\n", ColumnMap("phone", timezone="tz"))
    assert lines(result.rejected) == [2] and lines(result.contacts) == [3]


def test_do_not_call_numbers_are_skipped_and_counted() -> None:
    result = run("phone\n+48 22 123 45 67\n22 765 43 21\n22 765 43 21\n", ColumnMap("phone"),
                 do_not_call={"+48227654321"}, known_numbers={"+48227654321"})
    assert lines(result.contacts) == [2]
    assert [(r.line, r.reason) for r in result.do_not_call] == [
        (3, "+48227654321 is on the do-not-call list"), (4, "+48227654321 is on the do-not-call list")]
    assert result.duplicates == []  # the do-not-call list is named first
    assert result.summary() == "1 imported, 0 rejected, 0 duplicates, 2 on the do-not-call list"
    assert lines(result.problems()) == [3, 4]


def test_time_zones_from_the_number_the_default_or_none() -> None:
    text = "phone\n+48 22 123 45 67\n+44 20 7946 0958\n+1 212 736 5000\n+1 808 555 1234\n+800 1234 5678\n"
    result = run(text, ColumnMap("phone"))
    assert [c.timezones for c in result.contacts] == [
        ("Europe/Warsaw",), ("Europe/London",), ("America/New_York",), ("Pacific/Honolulu",)]
    assert [(r.line, r.reason) for r in result.rejected] == [
        (6, "no time zone for +80012345678: add a time-zone column or a default time zone")]
    fallback = run(text, ColumnMap("phone"), default_timezone="europe/berlin")
    assert fallback.contacts[-1].timezones == ("Europe/Berlin",) and fallback.rejected == []
    assert fallback.contacts[0].timezones == ("Europe/Warsaw",)  # the number still wins over the default


def test_a_polish_mobile_and_a_us_area_code_give_their_zones() -> None:
    assert zones_for_number("+48601234567") == ("Europe/Warsaw",)
    assert zones_for_number("+14155550123") == ("America/Los_Angeles",)
    assert zones_for_number("+13035550123") == ("America/Denver",)
    assert zones_for_number("not a number") == ()
    assert zones_for_number("+15550100") == ()


def test_kept_columns_follow_the_mapping() -> None:
    text = "Phone,Name,City,,Notes\n+48 22 123 45 67,Jan,Waw,x,n\n"
    assert run(text, ColumnMap("phone")).contacts[0].fields == {"Name": "Jan", "City": "Waw", "Notes": "n"}
    assert run(text, ColumnMap("phone", keep=())).contacts[0].fields == {}
    assert run(text, ColumnMap("phone", keep=("notes", "CITY"))).contacts[0].fields == {"City": "Waw", "Notes": "n"}


def test_mapping_errors_stop_the_whole_file_and_list_the_columns() -> None:
    text = "Name,Phone,City\n+48 22 123 45 67\n"
    with pytest.raises(ContactListError) as caught:
        run(text, ColumnMap("tel", timezone="zone"))
    assert str(caught.value) == "the header has no column 'tel', 'zone'; its columns are: Name, Phone, City"
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, CallcenterError)
    with pytest.raises(ContactListError, match="no column 'Street'"):
        run(text, ColumnMap("phone", keep=("Street",)))
    with pytest.raises(ContactListError, match="column 'phone' appears 2 times"):
        run("phone,PHONE\n1,2\n", ColumnMap("phone"))
    with pytest.raises(ContactListError, match="column 'note' appears 2 times"):
        run("phone,note,note\n1,2,3\n", ColumnMap("phone"))  # every other column kept: they would collide
    assert run("phone,note,note\n+48 22 123 45 67,2,3\n", ColumnMap("phone", keep=())).contacts


def test_empty_files_bad_defaults_and_too_many_rows() -> None:
    for empty in ("", "\n\n", "\ufeff"):
        with pytest.raises(ContactListError, match="the file is empty"):
            run(empty)
        with pytest.raises(ContactListError, match="the file is empty"):
            read_header(empty)
    with pytest.raises(ContactListError, match="no column names"):
        read_header(",,\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown region"):
        run("phone\n", ColumnMap("phone"), default_region="Poland")
    with pytest.raises(ValueError, match="unknown time zone 'CEST'"):
        run("phone\n", ColumnMap("phone"), default_timezone="CEST")
    text = "phone\n+48 22 123 45 67\n\n22 765 43 21\nbad\n"
    assert len(run(text, ColumnMap("phone"), max_rows=3).contacts) == 2  # blank lines do not count
    with pytest.raises(ContactListError, match="line 5: the list has more than 2 rows"):
        run(text, ColumnMap("phone"), max_rows=2)


def test_the_source_is_read_as_a_stream_of_lines(tmp_path: Path) -> None:
    consumed: list[str] = []

    def lines_of_a_big_file() -> Iterator[str]:
        yield "phone;name\n"
        for i in range(2000):
            consumed.append("x")
            yield f"+48 22 {100 + i % 900} 45 {10 + i % 90};n{i}\n"

    result = import_contacts(lines_of_a_big_file(), ColumnMap("phone"), default_region="PL")
    assert len(consumed) == 2000 and len(result.contacts) + len(result.duplicates) == 2000
    path = tmp_path / "list.csv"
    path.write_text("\ufeffphone\r\n+48 22 123 45 67\r\n\"bad\r\nnumber\"\r\n+48 22 765 43 21\r\n", encoding="utf-8")
    with path.open(newline="", encoding="utf-8") as handle:
        from_file = import_contacts(handle, ColumnMap("phone"), default_region="PL")
    assert lines(from_file.contacts) == [2, 5] and lines(from_file.rejected) == [3]


def test_summary_uses_thousands_separators() -> None:
    result = ImportResult(contacts=[], rejected=[Rejected(1, "x")] * 3, duplicates=[Rejected(1, "x")],
                          do_not_call=[Rejected(1, "x")] * 1204)
    assert result.summary() == "0 imported, 3 rejected, 1 duplicate, 1,204 on the do-not-call list"


def test_do_not_call_lists_plain_or_csv() -> None:
    numbers, rejected = parse_dnc("+48 22 123 45 67\n\n0048 22 765 43 21\nnonsense\n22 111 22 33\n", "PL")
    assert numbers == {"+48221234567", "+48227654321", "+48221112233"}
    assert [(r.line, r.reason) for r in rejected] == [(4, "'nonsense' is not a phone number")]
    numbers, rejected = parse_dnc("\ufeffid;MSISDN;added\n1;+44 20 7946 0958;2026-01-01\n2;;x\n", "GB")
    assert numbers == {"+442079460958"} and [(r.line, r.reason) for r in rejected] == [(3, "no number")]
    numbers, rejected = parse_dnc("Telephone,comment\n(212) 736-5000,asked twice\n", "US")
    assert numbers == {"+12127365000"} and rejected == []  # no known column: the first one
    assert parse_dnc(io.StringIO(""), "PL") == (set(), [])
