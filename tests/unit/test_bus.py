"""The bus between features (callcenter/bus.py): events to every subscriber in order, requests to one server."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from callcenter.bus import Bus


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Other:
    what: str


@dataclass(frozen=True)
class Question:
    number: int


async def test_subscribers_run_in_order_and_one_failing_costs_the_others_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    heard: list[str] = []

    async def first(e: Happened) -> None:
        heard.append(f"first {e.what}")

    def broken(e: Happened) -> None:
        raise RuntimeError("bookkeeping failed")

    async def last(e: Happened) -> None:
        heard.append(f"last {e.what}")

    bus.subscribe(Happened, first)
    bus.subscribe(Happened, broken)
    bus.subscribe(Happened, last)
    bus.subscribe(Other, lambda e: heard.append("other"))
    with caplog.at_level(logging.ERROR):
        await bus.publish(Happened("x"))
    assert heard == ["first x", "last x"]
    assert "broken" in caplog.text and "Happened(what='x')" in caplog.text
    assert bus.has_subscribers(Other) and not bus.has_subscribers(Question)
    await bus.publish(Question(1))  # nobody listens: nothing happens


async def test_a_request_has_exactly_one_server_and_its_answer_comes_back() -> None:
    bus = Bus()

    async def double(q: Question) -> int:
        return q.number * 2

    with pytest.raises(LookupError, match="nobody serves Question"):
        await bus.ask(Question(2))
    bus.serve(Question, double)
    assert await bus.ask(Question(21)) == 42
    with pytest.raises(ValueError, match="already served"):
        bus.serve(Question, double)
