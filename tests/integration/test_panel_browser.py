"""The panel in headless Chromium against the real controller and Asterisk: an agent logs in, goes
ready, sees the call card (with the customer from the screen pop) when a sipp caller is queued, and
picks a wrap-up code; the wallboard's counters move while calls flow; a page for another role is refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.models import AcdCall
from tests.integration.conftest import PhoneFactory
from tests.support import browser, sipp
from tests.support.system import System

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]


async def test_agent_takes_a_call_in_the_browser_and_the_wallboard_follows(
        fresh_system: System, phone: PhoneFactory) -> None:
    await phone("2001", ring_ms=1500)
    with fresh_system.db.session() as session:
        session.execute(delete(Customer).where(Customer.id.in_(
            select(CustomerPhone.customer_id).where(CustomerPhone.number == "0319999"))))
        ada = Customer(name="Ada Lovelace", note="Prefers mornings", created_at=datetime.now(UTC),
                       updated_at=datetime.now(UTC))
        session.add(ada)
        session.flush()
        session.add(CustomerPhone(customer_id=ada.id, number="0319999"))
    admin_password = fresh_system.panel_password("admin")
    async with browser.async_chromium() as chromium:
        agent_page = await (await chromium.new_context()).new_page()
        await browser.async_log_in(agent_page, fresh_system.web_url, "2001", fresh_system.panel_password("2001"))
        assert agent_page.url.endswith("/agent")
        board_page = await (await chromium.new_context(viewport={"width": 1920, "height": 1080})).new_page()
        await browser.async_log_in(board_page, fresh_system.web_url, "admin", admin_password)
        await board_page.goto(fresh_system.web_url + "/wallboard")
        tile = board_page.locator('.queue-tile[data-queue="idle"]')
        await tile.locator(".offered").wait_for()
        offered_before = int(await tile.locator(".offered").inner_text())

        # A page for another role is refused.
        refused = await agent_page.context.new_page()
        response = await refused.goto(fresh_system.web_url + "/wallboard")
        assert response is not None and response.status == 403
        await refused.close()

        await agent_page.click("#btn-login")
        await agent_page.locator('#agent-state[data-state="ready"]').wait_for(timeout=10000)
        customer = sipp.caller(fresh_system.sip_port, "1200", caller="0319999", caller_name="Ada",
                               hangup_after_ms=5000)
        await customer.start()
        try:
            # The card appears while the agent's phone still rings, with the customer's name.
            await agent_page.locator("#call-card").wait_for(state="visible", timeout=10000)
            assert await agent_page.locator("#call-number").inner_text() == "0319999"
            assert await agent_page.locator("#call-customer").inner_text() == "Ada Lovelace"
            assert await agent_page.locator("#call-queue").inner_text() == "idle"
            await agent_page.locator('#agent-state[data-state="on_call"]').wait_for(timeout=10000)
            # The wallboard counted the call while it flows, without a reload.
            offered = board_page.locator('.queue-tile[data-queue="idle"] .offered')
            for _ in range(50):
                if int(await offered.inner_text()) > offered_before:
                    break
                await asyncio.sleep(0.1)
            assert int(await offered.inner_text()) == offered_before + 1
            assert (await customer.wait(30)).ok
        finally:
            await customer.stop()
        await agent_page.locator("#wrapup-form").wait_for(state="visible", timeout=10000)
        await agent_page.select_option("#wrapup-code", "sale")
        await agent_page.fill("#wrapup-note", "Sent the brochure")
        await agent_page.click("#wrapup-submit")
        await agent_page.locator("#wrapup-form").wait_for(state="hidden", timeout=10000)
        answered = board_page.locator('.queue-tile[data-queue="idle"] .answered')
        assert int(await answered.inner_text()) >= 1
        row = board_page.locator('#agents tr[data-extension="2001"]')
        await row.wait_for()
        assert "Ready" in await row.locator(".state").inner_text()
        await agent_page.click("#btn-logout")
        await agent_page.locator('#agent-state[data-state="logged_out"]').wait_for(timeout=10000)
    for _ in range(50):
        with fresh_system.db.session() as session:
            code = session.scalar(select(AcdCall.wrapup_code).where(AcdCall.number == "0319999")
                                  .order_by(AcdCall.entered_at.desc()))
        if code:
            break
        await asyncio.sleep(0.1)
    assert code == "sale"


async def test_the_agent_page_shows_the_session_line_and_why_it_ended(
        fresh_system: System, phone: PhoneFactory) -> None:
    """A session-mode campaign calls the agent's phone: the page says so, then that the line is open; a
    line hung up at the phone logs the agent out with the reason on the page."""
    await phone("2003", ring_ms=2000)
    async with browser.async_chromium() as chromium:
        page = await (await chromium.new_context()).new_page()
        await browser.async_log_in(page, fresh_system.web_url, "2003", fresh_system.panel_password("2003"))
        await page.click("#btn-login")
        await page.locator('#agent-state[data-state="ready"]').wait_for(timeout=10000)
        try:
            assert fresh_system.cli("dialer", "start", "summer", "--confirm").returncode == 0
            line = page.locator("#session-line")
            await page.locator('#session-line[data-state="calling"]').wait_for(timeout=10000)
            assert "Calling your phone for campaign summer" in await line.inner_text()
            await page.locator('#session-line[data-state="connected"]').wait_for(timeout=10000)
            assert "Line open for campaign summer" in await line.inner_text()
            lines = fresh_system.asterisk("core show channels concise").splitlines()
            (name,) = [entry.split("!")[0] for entry in lines if entry.startswith("PJSIP/2003-")]
            fresh_system.asterisk(f"channel request hangup {name}")
            await page.locator('#agent-state[data-state="logged_out"]').wait_for(timeout=10000)
            await line.wait_for(state="hidden", timeout=5000)
            assert "you are logged out" in await page.locator("#agent-notice").inner_text()
        finally:
            fresh_system.cli("dialer", "stop", "summer")
