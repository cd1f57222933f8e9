"""The admin pages and the agent's recording buttons in a real browser (Debian's chromium under
Playwright): an admin searches recordings and the player reads the MP3 through the audio route; an agent
pauses and resumes a call's recording. Skipped, saying why, where chromium or playwright is missing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.users.accounts import PanelUser
from tests.support.admin import admin_features, install_admin
from tests.support.browser import ServedApp, chromium, log_in, needs_chromium, serve
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, panel_app
from tests.unit.test_web_admin import USERS, password, seed
from tests.unit.test_web_browser import watch

pytestmark = needs_chromium


def silent_mp3(frames: int = 40) -> bytes:
    """MPEG-1 layer III, 128 kbit/s, 44.1 kHz: ``frames`` frames of silence (26 ms each)."""
    return (b"\xff\xfb\x90\x00" + bytes(413)) * frames


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[ServedApp]:
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    db.migrate()
    files = tmp_path / "files"
    files.mkdir()
    seed(db, files)
    (files / "Recordings/2030-01-01/rec-n1.mp3").write_bytes(silent_mp3())
    with db.session() as session:
        users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                 for u in session.scalars(select(User))}

    def make() -> Any:
        panel = FakeBackend()
        panel.users = users
        panel.passwords = {name: password(name) for name in USERS}
        return install_admin(build_app(panel), admin_features(db, files))

    with serve(make) as server:
        yield server
    db.dispose()


def test_admin_searches_recordings_and_the_player_reads_the_mp3(
        admin_server: ServedApp, page_errors: list[str]) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page = browser.new_page()
        watch(page, page_errors)
        log_in(page, admin_server.url, "root", password("root"))
        page.click("#nav-recordings")
        expect(page.locator("#recordings tbody tr")).to_have_count(4)
        page.fill("#agent", "2001")
        page.click("#btn-search")
        rows = page.locator("#recordings tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-id", "rec-n2")
        expect(rows.nth(0).locator("audio")).to_have_count(0)  # still recording: no player
        audio = page.locator('tr[data-id="rec-n1"] audio')
        expect(audio).to_be_visible()
        assert audio.get_attribute("preload") == "none"
        duration = audio.evaluate("""a => new Promise((done, failed) => {
            a.addEventListener("loadedmetadata", () => done(a.duration));
            a.addEventListener("error", () => failed(new Error("media error " + (a.error && a.error.code))));
            a.preload = "metadata";
            a.load();
        })""")
        assert 0.9 < duration < 1.2
        expect(page.locator('tr[data-id="rec-n1"] a.download')).to_have_attribute(
            "href", "/admin/recordings/rec-n1/audio?download=1")

        page.click("#nav-cdr")
        page.select_option("#disposition", "BUSY")
        page.click("#btn-search")
        expect(page.locator("#cdr tbody tr")).to_have_count(1)
        expect(page.locator("#cdr-csv")).to_have_attribute("href", "/admin/cdr.csv?disposition=BUSY")

        page.click("#nav-units")
        page.on("dialog", lambda dialog: dialog.dismiss())  # "Remove the unit South?" -> no
        page.click('tr[data-unit="South"] button')
        expect(page.locator('tr[data-unit="South"]')).to_have_count(1)
    assert page_errors == []


class RecordedCall(FakeBackend):
    """Agent 2001 on a recorded call; record_pause and record_resume flip the recording's state."""

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        call = self.calls.get(user_id)
        if action in ("record_pause", "record_resume") and call:
            self.actions.append((user_id, action, dict(params)))
            call["recording"] = {"active": True, "paused": action == "record_pause"}
            self.bump()
            return
        await super().agent_action(user_id, action, params)


@pytest.fixture
def recorded() -> Iterator[tuple[ServedApp, RecordedCall]]:
    holder: dict[str, RecordedCall] = {}

    def make() -> Any:
        holder["backend"] = RecordedCall()
        return panel_app(holder["backend"])

    with serve(make) as server:
        yield server, holder["backend"]


def test_agent_pauses_and_resumes_the_recording(recorded: tuple[ServedApp, RecordedCall],
                                                page_errors: list[str]) -> None:
    from playwright.sync_api import expect

    server, backend = recorded
    with chromium() as browser:
        page = browser.new_page()
        watch(page, page_errors)
        log_in(page, server.url, "2001", "alice-pw")
        server.call(backend.ring, 1)
        expect(page.locator("#call-card")).to_be_visible()
        rec, pause, resume = page.locator("#call-rec"), page.locator("#btn-record-pause"), page.locator(
            "#btn-record-resume")
        expect(rec).to_be_hidden()  # no "recording" in the view: not recorded
        expect(pause).to_be_hidden()

        def record(paused: bool) -> None:
            backend.calls[1]["recording"] = {"active": True, "paused": paused}  # type: ignore[index]
            backend.bump()

        server.call(record, False)
        expect(rec).to_have_text("REC")
        expect(pause).to_be_visible()
        expect(resume).to_be_hidden()
        pause.click()
        expect(rec).to_have_text("REC paused")
        expect(rec).to_have_attribute("data-paused", "true")
        expect(resume).to_be_visible()
        expect(pause).to_be_hidden()
        resume.click()
        expect(rec).to_have_text("REC")
        assert [a[1] for a in server.call(lambda: backend.actions)] == ["record_pause", "record_resume"]
    assert page_errors == []
