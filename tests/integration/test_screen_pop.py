"""The screen pop (TEL-4) end to end: real controller and Asterisk, sipp callers, an agent phone that
answers a few seconds after it starts ringing, and the agent page in headless Chromium. A caller whose
number (sent as 0049..., stored as E.164) is a customer's: the card shows the name and an on-card field
while the phone rings; after the answer the profile pane opens in the page by itself. A caller from an
unknown number: the card says so and offers "Search the customer database to link" and "New ticket for
this call", both carrying the call's record id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from callcenter.customers.models import Customer, CustomerField, CustomerFieldValue, CustomerPhone
from tests.integration.conftest import PhoneFactory
from tests.support import browser, sipp
from tests.support.system import System

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]
KNOWN, UNKNOWN = "+49301234567", "+49309998877"


def seed_customer(system: System) -> int:
    now = datetime.now(UTC)
    with system.db.session() as session:
        session.execute(delete(Customer).where(Customer.id.in_(
            select(CustomerPhone.customer_id).where(CustomerPhone.number.in_([KNOWN, UNKNOWN])))))
        session.execute(delete(CustomerField).where(CustomerField.name == "pop_tier"))
        field = CustomerField(name="pop_tier", label="Pop tier", kind="text", on_card=True, position=1)
        ada = Customer(name="Ada Lovelace", email="ada@example.org", company="Engines", created_at=now,
                       updated_at=now)
        session.add_all([field, ada])
        session.flush()
        session.add_all([CustomerPhone(customer_id=ada.id, number=KNOWN),
                         CustomerFieldValue(customer_id=ada.id, field_id=field.id, value="platinum")])
        return ada.id


async def test_the_card_shows_while_ringing_and_the_profile_opens_on_answer(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2001", ring_ms=4000)  # answers 4 s after it starts ringing
    ada = seed_customer(fresh_system)
    async with browser.async_chromium() as chromium:
        page = await (await chromium.new_context()).new_page()
        await browser.async_log_in(page, fresh_system.web_url, "2001", fresh_system.panel_password("2001"))
        await page.click("#btn-login")
        await page.locator('#agent-state[data-state="ready"]').wait_for(timeout=10000)
        try:
            customer = sipp.caller(fresh_system.sip_port, "1200", caller="0049301234567", caller_name="Ada",
                                   hangup_after_ms=12000)
            await customer.start()
            try:
                # Ringing: the card with the customer's name and the on-card field, no profile pane yet.
                await page.locator('#agent-state[data-state="ringing"]').wait_for(timeout=10000)
                await page.locator("#call-customer", has_text="Ada Lovelace").wait_for(timeout=5000)
                assert await page.locator('#agent-state').get_attribute("data-state") == "ringing"
                field = page.locator('#call-fields tr[data-field="Pop tier"] td')
                assert await field.inner_text() == "platinum"
                assert await page.locator("#call-contact").inner_text() == "ada@example.org · Engines"
                assert await page.locator("#customer-pane").is_hidden()
                assert await page.locator("#call-unknown").is_hidden()
                # Answered: the profile pane opens in the agent page, which stays.
                await page.locator('#agent-state[data-state="on_call"]').wait_for(timeout=10000)
                await page.locator("#customer-pane").wait_for(state="visible", timeout=5000)
                assert await page.locator("#pane-name").inner_text() == "Ada Lovelace"
                assert await page.locator("#pane-open-profile").get_attribute("href") == f"/customers/{ada}"
                call_id = await page.locator("#call-card").get_attribute("data-call-id")
                assert call_id and await page.locator("#pane-new-ticket").get_attribute("href") == (
                    f"/tickets/new?call={call_id}")
                assert page.url.endswith("/agent")
                assert (await customer.wait(30)).ok
            finally:
                await customer.stop()
            await page.locator("#wrapup-form").wait_for(state="visible", timeout=10000)
            await page.select_option("#wrapup-code", "sale")
            await page.click("#wrapup-submit")
            await page.locator("#wrapup-form").wait_for(state="hidden", timeout=10000)
            await page.locator("#customer-pane").wait_for(state="hidden", timeout=5000)

            stranger = sipp.caller(fresh_system.sip_port, "1200", caller="0049309998877", caller_name="Who",
                                   hangup_after_ms=9000)
            await stranger.start()
            try:
                await page.locator('#agent-state[data-state="ringing"]').wait_for(timeout=10000)
                await page.locator("#call-unknown").wait_for(state="visible", timeout=5000)
                assert "not in the customer database" in await page.locator("#call-unknown").inner_text()
                call_id = await page.locator("#call-card").get_attribute("data-call-id")
                number = await page.locator("#call-number").inner_text()
                search = page.locator("#link-search-customer")
                assert await search.inner_text() == "Search the customer database to link"
                assert await search.get_attribute("href") == (
                    f"/customers/link?number={number.replace('+', '%2B')}&call={call_id}")
                ticket = page.locator("#link-new-ticket-unknown")
                assert await ticket.inner_text() == "New ticket for this call"
                assert await ticket.get_attribute("href") == f"/tickets/new?call={call_id}"
                assert (await stranger.wait(30)).ok
            finally:
                await stranger.stop()
            await page.locator("#wrapup-form").wait_for(state="visible", timeout=10000)
            await page.select_option("#wrapup-code", "sale")
            await page.click("#wrapup-submit")
            await page.locator("#wrapup-form").wait_for(state="hidden", timeout=10000)
        finally:
            await page.click("#btn-logout")
            await page.locator('#agent-state[data-state="logged_out"]').wait_for(timeout=10000)
