"""Browser tests of the panel: Playwright driving Debian's chromium (``make browser`` installs it; we never
run ``playwright install``), an aiohttp app served from a thread for tests without Asterisk, and logging
in through the panel's own form.

    with serve(lambda: build_app(...)) as server, chromium() as browser:  # tests/support/webapp.py
        page = browser.new_page()
        log_in(page, server.url, "2001", "secret")

Async tests (the integration suite) use ``async_chromium`` and ``async_log_in`` the same way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import pytest
from aiohttp import web

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("CALLCENTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
T = TypeVar("T")


def missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (make install: pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM} (make browser: apt-get install chromium)"
    return None


needs_chromium = pytest.mark.skipif(missing() is not None, reason=f"browser test skipped: {missing()}")


@contextmanager
def chromium(headless: bool = True) -> Iterator[Browser]:
    """Debian's chromium under Playwright's sync API (not inside a running event loop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=headless)
        try:
            yield browser
        finally:
            browser.close()


@asynccontextmanager
async def async_chromium(headless: bool = True) -> AsyncIterator[AsyncBrowser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS,
                                                   headless=headless)
        try:
            yield browser
        finally:
            await browser.close()


def _login_url(base_url: str, next_path: str) -> str:
    return f"{base_url}/login" + (f"?next={quote(next_path, safe='/')}" if next_path else "")


def _check_logged_in(url: str, login: str, error: str | None) -> None:
    if urlsplit(url).path == "/login":
        raise AssertionError(f"logging in as {login} failed: {error or 'still on the login page'}")


def log_in(page: Page, base_url: str, login: str, password: str, next_path: str = "") -> None:
    """Logs in through the form, as a person would; the page ends on the user's landing page."""
    page.goto(_login_url(base_url, next_path))
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#btn-submit-login")
    error = page.locator("#login-error")
    _check_logged_in(page.url, login, error.inner_text() if error.count() else None)


async def async_log_in(page: AsyncPage, base_url: str, login: str, password: str, next_path: str = "") -> None:
    await page.goto(_login_url(base_url, next_path))
    await page.fill("#login", login)
    await page.fill("#password", password)
    async with page.expect_navigation():
        await page.click("#btn-submit-login")
    error = page.locator("#login-error")
    _check_logged_in(page.url, login, await error.inner_text() if await error.count() else None)


class ServedApp:
    """An aiohttp application served on 127.0.0.1 and a free port by an event loop in its own thread."""

    def __init__(self, make: Callable[[], web.Application]) -> None:
        self._make = make
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="served-app", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._make(), access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Runs a coroutine on the app's loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Calls a plain function on the app's loop (where the app's objects live) and waits for it."""
        done: Future[T] = Future()

        def call() -> None:
            try:
                done.set_result(function(*args))
            except Exception as error:
                done.set_exception(error)

        self.loop.call_soon_threadsafe(call)
        return done.result(10)

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextmanager
def serve(make: Callable[[], web.Application]) -> Iterator[ServedApp]:
    served = ServedApp(make)
    served.start()
    try:
        yield served
    finally:
        served.stop()
