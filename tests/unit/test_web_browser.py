"""The panel in a real browser (Debian's chromium under Playwright), served from a thread with the fake
backend of test_web.py: no Asterisk needed. Skipped, saying why, where chromium or playwright is missing."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.browser import ServedApp, chromium, log_in, needs_chromium, serve
from tests.unit.test_web import FakeBackend, panel_app

pytestmark = needs_chromium


def since(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


class BusyBackend(FakeBackend):
    """A wallboard the size the wall screen is made for: 5 queues, 30 agents, a pause to approve."""

    def wallboard(self) -> dict[str, Any]:
        board = super().wallboard()
        states = ["ready", "on_call", "paused", "wrap_up", "ringing", "logged_out"]
        board["queues"] = [{**board["queues"][0], "name": name, "waiting": i, "service_level": 95.0 - 15 * i,
                            "oldest_since": since(9 * i) if i else None}
                           for i, name in enumerate(["sales", "support", "billing", "returns", "vip"])]
        board["queues"][4]["service_level"] = None
        board["agents"] += [{"id": 100 + i, "name": f"Agent Number {i:02}", "extension": str(2100 + i),
                             "state": states[i % len(states)], "reason": "lunch" if i % 6 == 2 else "",
                             "since": f"{since(60 * i + 7)}", "calls_today": i} for i in range(28)]
        board["approvals"] = [{"agent_id": 1, "name": "Alice Agent", "reason": "Training", "since": since(30)}]
        return board


@pytest.fixture
def page_errors() -> list[str]:
    return []


def watch(page: Any, errors: list[str]) -> None:
    """Script errors, console errors (a CSP refusal is one) and missing files fail the test; refused
    actions (4xx from the API) are part of the test."""

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console: {message.text}")

    def response(answer: Any) -> None:
        if answer.status == 404:
            errors.append(f"404: {answer.url}")

    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", console)
    page.on("response", response)


@pytest.fixture
def served() -> Iterator[tuple[ServedApp, FakeBackend]]:
    holder: dict[str, FakeBackend] = {}

    def make() -> Any:
        holder["backend"] = BusyBackend()  # made on the server's loop, where it is used
        return panel_app(holder["backend"])

    with serve(make) as server:
        yield server, holder["backend"]


def test_agent_logs_in_goes_ready_sees_changes_and_is_refused_the_wallboard(
        served: tuple[ServedApp, FakeBackend], page_errors: list[str]) -> None:
    from playwright.sync_api import expect

    server, backend = served
    with chromium() as browser:
        page = browser.new_page()
        watch(page, page_errors)
        log_in(page, server.url, "2001", "alice-pw")
        assert page.url == f"{server.url}/agent"

        state = page.locator("#agent-state")
        expect(state).to_have_attribute("data-state", "paused")
        expect(page.locator("#connection")).to_have_text("Live")
        expect(page.locator("#agent-reason")).to_have_text("Lunch")
        expect(page.locator("#call-card")).to_be_hidden()
        expect(page.locator("#time-in-state")).to_have_text(re.compile(r"^\d+:\d\d(:\d\d)?$"))
        expect(page.locator("#pause-reason option")).to_have_text(["Lunch", "Training (needs approval)"])
        expect(page.locator("#callbacks tbody tr")).to_have_count(1)

        page.click("#btn-ready")
        expect(state).to_have_attribute("data-state", "ready")
        expect(state).to_have_text("Ready")
        assert server.call(lambda: backend.actions[-1]) == (1, "ready", {})

        server.call(backend.ring, 1)  # the backend changes on its own: the page follows without a reload
        expect(state).to_have_text("Ringing")
        expect(page.locator("#call-card")).to_be_visible()
        expect(page.locator("#call-number")).to_have_text("+4930123456")
        expect(page.locator("#call-customer")).to_have_text("Carl Customer")
        expect(page.locator("#call-queue")).to_have_text("sales")
        expect(page.locator("#transfer-target option")).to_have_text(["Sam Both (2005)"])

        page.fill("#dial-number", "+4930555")
        page.click("#btn-dial")
        expect(page.locator("#message")).to_have_text("You cannot dial now")
        assert server.call(lambda: backend.actions[-1]) == (1, "dial", {"number": "+4930555"})

        page.click("#btn-hangup")
        expect(state).to_have_attribute("data-state", "wrap_up")
        expect(page.locator("#call-card")).to_be_hidden()
        expect(page.locator("#wrapup-form")).to_be_visible()

        refused = page.goto(f"{server.url}/wallboard")
        assert refused is not None and refused.status == 403
        expect(page.locator("#refused")).to_have_text("This page is for supervisors")
    assert page_errors == []


def test_wallboard_fits_a_wall_screen_and_follows_the_backend(
        served: tuple[ServedApp, FakeBackend], page_errors: list[str]) -> None:
    from playwright.sync_api import expect

    server, backend = served
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        watch(page, page_errors)
        log_in(page, server.url, "boss", "boss-pw")
        assert page.url == f"{server.url}/wallboard"

        expect(page.locator("#queues .queue-tile")).to_have_count(5)
        sales = page.locator('.queue-tile[data-queue="support"]')
        expect(sales.locator(".waiting")).to_have_text("1")
        expect(sales.locator(".service-level")).to_have_text("80%")
        expect(sales.locator(".avg-wait")).to_have_text("0:12")
        expect(page.locator('.queue-tile[data-queue="vip"] .service-level')).to_have_text("\N{EN DASH}")
        expect(page.locator("#agents tbody tr")).to_have_count(30)
        alice = page.locator('#agents tr[data-extension="2001"]')
        expect(alice.locator(".state")).to_have_text("Paused")
        expect(page.locator("#approvals")).to_be_visible()
        scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert scroll[0] <= 1920 and scroll[1] <= 1080, f"the wallboard needs scrolling at 1920x1080: {scroll}"

        server.call(backend.set_state, 1, "on_call")
        expect(alice.locator(".state")).to_have_text("On call")
        page.click('#approvals [data-testid="approve-pause"]')
        expect(page.locator("#message")).to_be_hidden()
        for _ in range(50):  # the click's POST may still be on its way
            if server.call(lambda: backend.actions):
                break
            time.sleep(0.1)
        assert server.call(lambda: backend.actions[-1]) == (3, "approve_pause", {"agent_id": "1"})
    assert page_errors == []


def test_a_supervisor_of_no_unit_is_told_why_the_wallboard_is_empty(
        served: tuple[ServedApp, FakeBackend], page_errors: list[str]) -> None:
    from playwright.sync_api import expect

    from callcenter.acd.scope import WallboardFilter

    server, backend = served
    notice = "You manage no organisational unit <b>and</b> have no grant"

    def nothing(view: dict[str, Any]) -> dict[str, Any]:
        return {**view, "queues": [], "agents": [], "approvals": [], "live_calls": [], "campaigns": [],
                "notice": notice}

    async def scoped(user_id: int) -> WallboardFilter:
        return WallboardFilter(("units", ()), nothing)

    server.call(setattr, backend, "wallboard_filter", scoped)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        watch(page, page_errors)
        log_in(page, server.url, "boss", "boss-pw")
        expect(page.locator("#message")).to_have_text(notice)  # as text: the markup is not interpreted
        expect(page.locator("#queues .queue-tile")).to_have_count(0)
        expect(page.locator("#agents tbody tr")).to_have_count(0)
    assert page_errors == []
