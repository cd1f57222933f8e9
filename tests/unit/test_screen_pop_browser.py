"""The screen pop on the agent page in a real browser (Debian's chromium under Playwright, test_web's fake
backend serving views shaped as acd/panel.py ``_call_view`` makes them): the caller's card while the phone
rings (name, e-mail and company, on-card fields, last calls with the recording link, open tickets), the
profile pane that opens by itself on answer with its actions, an unknown number's two links, and a caller's
markup shown as text. Skipped, saying why, where chromium or playwright is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import ServedApp, chromium, log_in, needs_chromium, serve
from tests.unit.test_web import NOW, FakeBackend, panel_app
from tests.unit.test_web_browser import watch

pytestmark = needs_chromium
EVIL = '<img src=x onerror="window.popped=1">Ada'


class PopBackend(FakeBackend):
    def ring_known(self, user_id: int) -> None:
        self.calls[user_id] = {
            "id": "rec0001", "direction": "inbound", "number": "+49301234567", "queue": "sales", "state": "ringing",
            "since": NOW, "consult": None, "campaign": None, "caller_name": "",
            "customer": {"name": EVIL, "note": "VIP", "id": 42, "email": "ada@example.org", "company": "Engines",
                         "phones": ["+49301234567", "+4940123456"],
                         "profile": [["Tier", "gold"], ["VAT id", "DE1"]]},
            "contact_fields": [["Tier", "gold"]],
            "history": [{"at": NOW, "queue": "sales", "direction": "inbound", "outcome": "answered",
                         "agent": "Sam Both", "wrapup_code": "", "note": "",
                         "recording": "/customers/42/recordings/r1"}],
            "tickets": [{"id": 7, "subject": "Broken <b>engine</b>", "status": "open", "updated_at": NOW}]}
        self.set_state(user_id, "ringing")

    def ring_unknown(self, user_id: int) -> None:
        self.calls[user_id] = {
            "id": "rec0002", "direction": "inbound", "number": "+4915550000", "queue": "sales", "state": "ringing",
            "since": NOW, "consult": None, "campaign": None, "caller_name": "", "customer": None,
            "contact_fields": [], "history": [], "tickets": []}
        self.set_state(user_id, "ringing")

    def answer(self, user_id: int) -> None:
        call = self.calls[user_id]
        assert call is not None
        call["state"] = "connected"
        self.set_state(user_id, "on_call")

    def hang_up(self, user_id: int) -> None:
        self.calls[user_id] = None
        self.set_state(user_id, "ready")


@pytest.fixture
def served() -> Iterator[tuple[ServedApp, PopBackend]]:
    holder: dict[str, PopBackend] = {}

    def make() -> Any:
        holder["backend"] = PopBackend()
        return panel_app(holder["backend"])

    with serve(make) as server:
        yield server, holder["backend"]


def test_the_card_shows_while_ringing_and_the_profile_opens_on_answer(served: tuple[ServedApp, PopBackend]) -> None:
    from playwright.sync_api import expect

    server, backend = served
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        watch(page, errors)
        log_in(page, server.url, "2001", "alice-pw")
        expect(page.locator("#connection")).to_have_text("Live")

        server.call(backend.ring_known, 1)
        expect(page.locator("#call-state")).to_have_text("ringing")
        expect(page.locator("#call-customer")).to_have_text(EVIL)  # text, not markup
        assert page.evaluate("window.popped") is None and page.locator("#call-card img").count() == 0
        expect(page.locator("#call-contact")).to_have_text("ada@example.org · Engines")
        expect(page.locator('#call-fields tr[data-field="Tier"] td')).to_have_text("gold")
        expect(page.locator("#call-history tbody a.recording")).to_have_attribute("href", "/customers/42/recordings/r1")
        expect(page.locator("#call-ticket-list li a")).to_have_text("#7 Broken <b>engine</b>")
        expect(page.locator("#call-ticket-list li a")).to_have_attribute("href", "/tickets/7")
        expect(page.locator("#call-unknown")).to_be_hidden()
        expect(page.locator("#customer-pane")).to_be_hidden()  # not before the answer

        server.call(backend.answer, 1)
        pane = page.locator("#customer-pane")
        expect(pane).to_be_visible()
        assert page.url == f"{server.url}/agent"  # the page (and its live feed) stays
        expect(page.locator("#pane-name")).to_have_text(EVIL)
        expect(page.locator("#pane-profile dd")).to_have_text(
            ["+49301234567, +4940123456", "ada@example.org", "Engines", "gold", "DE1", "VIP"])
        expect(page.locator("#pane-open-profile")).to_have_attribute("href", "/customers/42")
        expect(page.locator("#pane-new-ticket")).to_have_attribute("href", "/tickets/new?call=rec0001")
        form = page.locator("#pane-ticket-list form")
        expect(form).to_have_attribute("action", "/tickets/7/attach-call")
        expect(form).to_have_attribute("method", "post")
        expect(form.locator('input[name="call"]')).to_have_value("rec0001")
        csrf = page.get_attribute('meta[name="csrf-token"]', "content")
        expect(form.locator('input[name="csrf"]')).to_have_value(csrf or "missing")
        expect(page.locator("#pane-search-customer")).to_be_hidden()

        server.call(backend.hang_up, 1)
        expect(pane).to_be_hidden()
        server.call(backend.ring_unknown, 1)
        unknown = page.locator("#call-unknown")
        expect(unknown).to_be_visible()
        expect(unknown).to_contain_text("not in the customer database")
        expect(page.locator("#call-customer")).to_have_text("Unknown caller")
        expect(page.locator("#link-search-customer")).to_have_attribute(
            "href", "/customers/link?number=%2B4915550000&call=rec0002")
        expect(page.locator("#link-new-ticket-unknown")).to_have_attribute("href", "/tickets/new?call=rec0002")
        expect(page.locator("#call-tickets")).to_be_hidden()
        server.call(backend.answer, 1)
        expect(pane).to_be_visible()
        expect(page.locator("#pane-unknown")).to_be_visible()
        expect(page.locator("#pane-search-customer")).to_have_attribute(
            "href", "/customers/link?number=%2B4915550000&call=rec0002")
        expect(page.locator("#pane-open-profile")).to_be_hidden()
    assert errors == []
