"""The panel as a script uses it: log in through the form, then call the JSON API with the session's
CSRF token, as the browser's JavaScript does."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp
from yarl import URL


class PanelClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def __aenter__(self) -> PanelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.session.close()

    async def login(self, login: str, password: str, page: str = "/agent") -> None:
        async with self.session.get(self.base_url + "/login") as response:
            assert response.status == 200, response.status
        token = self.session.cookie_jar.filter_cookies(URL(self.base_url + "/login"))["cc_login_csrf"].value
        async with self.session.post(self.base_url + "/login", allow_redirects=False,
                                     data={"login": login, "password": password, "csrf": token}) as response:
            assert response.status in (302, 303), f"login {login}: HTTP {response.status}"
        async with self.session.get(self.base_url + page) as response:
            text = await response.text()
            assert response.status == 200, f"{page}: HTTP {response.status}"
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', text)
        assert match, "no CSRF token in the page"
        self.csrf = match.group(1)

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base_url + path) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(self.base_url + path, json=body,
                                     headers={"X-CSRF-Token": self.csrf}) as response:
            return response.status, await response.json()

    async def submit(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        """A page's form as the browser posts it (redirects followed): status, final path, page text."""
        async with self.session.post(self.base_url + path, data={**fields, "csrf": self.csrf},
                                     headers={"Origin": self.base_url}) as response:
            return response.status, response.url.path, await response.text()

    async def act(self, action: str, **params: str) -> dict[str, Any]:
        """An agent action that must succeed."""
        status, body = await self.post("/api/agent/action", {"action": action, "params": params})
        assert status == 200, f"{action}: HTTP {status} {body}"
        return dict(body)

    async def view(self) -> dict[str, Any]:
        status, body = await self.get("/api/agent")
        assert status == 200, status
        return dict(body)

    async def wait_view(self, predicate: Any, timeout: float = 15, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = await self.view()
            if predicate(view):
                return view
            await asyncio.sleep(0.1)
        raise AssertionError(f"agent view never showed {what or 'the expected state'}: {view}")
