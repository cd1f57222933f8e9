"""The rate table: longest prefix, number forms, charge rounding, bad rows reported and skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from callcenter.cdr.builder import build_cdr
from callcenter.cdr.rates import Rate, RateTable, load_rates
from tests.unit.test_cdr_builder import CallRow as Call
from tests.unit.test_cdr_builder import Leg

T0 = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)


def table(**kwargs: object) -> RateTable:
    rates = {p: Rate(p, d, Decimal(r)) for p, d, r in (
        ("49", "Germany", "0.0150"), ("4915", "Germany Mobile", "0.1200"), ("1", "USA", "0.0100"))}
    return RateTable(rates, **kwargs)  # type: ignore[arg-type]


def test_longest_prefix_wins_in_every_number_form() -> None:
    rates = table(country_code="49")
    for number in ("+4915112345678", "004915112345678", "015112345678", "+49 151 1234-5678"):
        found = rates.find(number)
        assert found is not None and found.destination == "Germany Mobile", number
    assert rates.find("+49301234567").destination == "Germany"  # type: ignore[union-attr]
    assert rates.find("+33123456789") is None
    assert table().find("0301234567") is None  # no country code: a national number has no rate


def test_charge_rounds_billed_time_up_to_the_increment_and_money_half_up() -> None:
    mobile = table().rates["4915"]
    assert table().charge(mobile, 0) == Decimal("0.0000")
    assert table().charge(mobile, 61) == Decimal("0.1220")  # 61 s at 0.12/min
    assert table(increment=60).charge(mobile, 61) == Decimal("0.2400")  # two started minutes
    assert table(increment=30, minimum=60).charge(mobile, 5) == Decimal("0.1200")
    usa = table().rates["1"]
    assert table().charge(usa, 7) == Decimal("0.0012")  # 0.0011666... rounds half up to 4 places
    assert table().charge(Rate("9", "x", Decimal("0.0003")), 10) == Decimal("0.0001")  # 0.00005 -> up


def test_bad_rows_are_reported_with_their_line_and_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text('prefix,destination,rate\n4915,Germany Mobile,0.12\nabc,Bad,0.1\n49,"Germany, fixed",x\n'
                    '44,UK,-1\n\n+1,USA,0.01\n4915,Again,0.2\n33,France\n', encoding="utf-8")
    rates, problems = load_rates(path)
    assert sorted(rates.rates) == ["1", "4915"]
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (3, 4, 5, 8, 9)]
    assert "prefix 'abc'" in problems[0] and "not a number" in problems[1] and "twice" in problems[3]
    missing, none = load_rates(tmp_path / "missing.csv")
    assert missing.rates == {} and none == []


def test_a_users_trunk_call_gets_destination_rate_and_charge() -> None:
    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)
    origin = Leg("1.1", "PJSIP/2001-00000001", T0, exten="004915112345678", answered_at=at(5), ended_at=at(95),
                 dial_status="ANSWER")
    trunk = Leg("1.2", "PJSIP/pstn-00000002", at(1), exten="s", answered_at=at(5), ended_at=at(95))
    row = build_cdr(Call("1.1", T0, at(95)), [origin, trunk], {}, {"2001"}, table())
    assert (row.src_id, row.dst, row.billsec, row.destination, row.rate, row.charge) == (
        "2001", "004915112345678", 90, "Germany Mobile", Decimal("0.1200"), Decimal("0.1800"))
    # Click-to-call: the agent's phone is the first channel; the number is the one the ACD dialled.
    agent_leg = Leg("2.1", "PJSIP/2001-00000003", T0, exten="s", answered_at=at(1), ended_at=at(31))
    customer = Leg("acd-x", "PJSIP/pstn-00000004", at(1), exten="s", answered_at=at(11), ended_at=at(31))
    row = build_cdr(Call("2.1", T0, at(31)), [agent_leg, customer], {}, {"2001"}, table(),
                    placed_for=lambda uniqueid: "+12125550100" if uniqueid == "acd-x" else None)
    assert (row.dst, row.destination, row.rate) == ("+12125550100", "USA", Decimal("0.0100"))
    # A call between two users never gets a rate.
    inside = Leg("3.1", "PJSIP/2001-00000005", T0, exten="2002", answered_at=T0, ended_at=at(9))
    row = build_cdr(Call("3.1", T0, at(9)), [inside], {}, {"2001", "2002"}, table())
    assert (row.destination, row.rate, row.charge) == ("", None, None)
