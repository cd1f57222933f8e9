"""The wallboard tells the truth about calls that do not go through the ACD, seen in Chromium: a direct
call (one user's phone dialling another's) is a live call with the other party's number and a running
time; a Ready agent on such a call shows "On call", not Ready; and a supervisor's own monitoring call
(``#44``) is no live call to monitor. The audio side (no click when the supervisor joins or leaves a
direct call) is measured in test_monitor_audio.py."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import AgentFactory
from tests.integration.test_monitor import nothing_left
from tests.support import browser, sipp
from tests.support.panel import PanelClient
from tests.support.system import System, wait_for

pytestmark = [pytest.mark.integration, browser.needs_chromium]

TIME = re.compile(r"^\d+:\d\d")  # Panel.duration: "0:07", "1:02:03"


async def test_a_direct_call_its_agent_and_the_supervisors_own_call_on_the_wallboard(
        fresh_system: System, agent: AgentFactory) -> None:
    await agent("2002")  # Bob: logged in, Ready
    sam = PanelClient(fresh_system.web_url)
    await sam.login("2005", fresh_system.panel_password("2005"), page="/wallboard")
    board: dict[str, object] = {}

    async def wallboard() -> dict[str, object]:
        board.update((await sam.get("/api/wallboard"))[1])
        return board

    def live(extension: str) -> list[dict[str, object]]:
        return [c for c in board.get("live_calls", []) if c["agent"] == extension]  # type: ignore[union-attr]

    async with browser.async_chromium() as chromium:
        page = await (await chromium.new_context(viewport={"width": 1600, "height": 1000})).new_page()
        await browser.async_log_in(page, fresh_system.web_url, "2005", fresh_system.panel_password("2005"),
                                   "/wallboard")
        bob_row = page.locator('#agents tr[data-extension="2002"]')
        await bob_row.locator('.state[data-state="ready"]').wait_for(timeout=10000)

        # Alice (2001) dials Bob's extension from her phone: the dialplan connects them, not the ACD.
        alice = sipp.caller(fresh_system.sip_port, "2002", user="2001", password=fresh_system.password("2001"),
                            hangup_after_ms=12000)
        await alice.start()
        call_row = page.locator('#live-calls tr[data-extension="2002"]')
        await call_row.wait_for(state="visible", timeout=10000)
        assert await call_row.locator(".number").inner_text() == "2001"
        assert await call_row.locator(".direction").inner_text() == "Direct"
        await page.wait_for_function(
            """() => /^\\d+:\\d\\d/.test(document.querySelector('#live-calls tr[data-extension="2002"] .since')
                                      ?.textContent || '')""", timeout=5000)
        # Bob is Ready for the ACD, but he is on a call: the wallboard says so, with whom, and for how long.
        await bob_row.locator('.state[data-state="on_call"]').wait_for(timeout=5000)
        assert await bob_row.locator(".state").inner_text() == "On call"
        assert await bob_row.locator(".reason").inner_text() == "Direct call 2001"
        assert TIME.match(await bob_row.locator(".time-in-state").inner_text())
        await wallboard()
        [row] = live("2002")
        assert row["number"] == "2001" and row["direction"] == "direct" and row["since"], row

        # Sam listens in with #44 from his own phone: Bob's call shows him as listening, and Sam's own
        # call is nowhere among the live calls, on the page or in the JSON.
        supervisor = sipp.caller(fresh_system.sip_port, "#442002", user="2005",
                                 password=fresh_system.password("2005"), wait_bye_ms=30000)
        await supervisor.start()
        await call_row.locator(".monitored-by", has_text="Sam").wait_for(timeout=10000)
        # (Sam's phone went busy when he dialled, before the controller answered his call: it was long
        # looked at by now.)
        await wait_for(lambda: "PJSIP/2005" in fresh_system.asterisk("core show channels concise"), 5,
                       "Sam's channel")
        await wallboard()
        assert live("2005") == [], board["live_calls"]
        assert await page.locator('#live-calls tr[data-extension="2005"]').count() == 0
        # Both ends of Alice's call are users' phones: each is a call to monitor; Sam's is not.
        rows = page.locator("#live-calls tbody tr")
        assert sorted([await rows.nth(n).get_attribute("data-extension") for n in range(await rows.count())]) == [
            "2001", "2002"]
        assert [c["number"] for c in live("2001")] == ["2002"]

        # Alice hangs up: the call leaves the board, Sam is let go, Bob is Ready again.
        assert (await alice.wait(30)).ok
        assert (await supervisor.wait(20)).ok
        await call_row.wait_for(state="detached", timeout=10000)
        await bob_row.locator('.state[data-state="ready"]').wait_for(timeout=10000)
        assert await bob_row.locator(".reason").inner_text() == ""
    await sam.close()
    nothing_left(fresh_system)
