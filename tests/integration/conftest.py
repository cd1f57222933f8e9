"""Integration fixtures: a real Asterisk and controller, with SQLite or PostgreSQL as
CALLCENTER_TEST_DB says (tests/support/system.py does the work)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.support import sipp
from tests.support.panel import PanelClient
from tests.support.postgres import Cluster
from tests.support.system import DIAL_TIMEOUT, System, start_system, stop_system

__all__ = ["DIAL_TIMEOUT", "AgentFactory", "PhoneFactory", "System"]

PhoneFactory = Callable[..., Awaitable[sipp.Sipp]]
AgentFactory = Callable[..., Awaitable[PanelClient]]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster | None]:
    """The throwaway PostgreSQL cluster when CALLCENTER_TEST_DB=postgresql, else None."""
    if os.environ.get("CALLCENTER_TEST_DB", "sqlite") != "postgresql":
        yield None
        return
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, postgres: Cluster | None) -> str:
    if postgres is not None:
        return f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'callcenter.db'}"


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[System]:
    running = start_system(tmp_path_factory.mktemp("var"), database_url)
    try:
        yield running
    finally:
        stop_system(running)


@pytest.fixture
def fresh_system(system: System) -> System:
    """The shared system, after checking the previous test left no call behind."""
    if system.proc is None or system.proc.poll() is not None:
        system.start()
    system.no_channels_left()
    return system


@pytest.fixture
async def phone(fresh_system: System) -> AsyncIterator[PhoneFactory]:
    """Registered sipp phones (answer, busy or ring), stopped when the test ends."""
    started: list[sipp.Sipp] = []

    async def start(extension: str, mode: str = "answer", **kwargs: object) -> sipp.Sipp:
        handset = sipp.phone(fresh_system.sip_port, extension, fresh_system.password(extension), mode, **kwargs)
        await handset.start()
        started.append(handset)
        deadline = time.monotonic() + 10
        while f"{extension}/sip:{extension}@127.0.0.1" not in fresh_system.asterisk(
                f"pjsip show contacts like {extension}"):
            assert time.monotonic() < deadline, f"phone {extension} did not register"
            await asyncio.sleep(0.1)
        return handset

    yield start
    for handset in started:
        await handset.stop()
    # Switched off: no registration is left for the next test (and no offer rings a dead contact).
    for extension, password in dict.fromkeys((h.args[h.args.index("-au") + 1], h.args[h.args.index("-ap") + 1])
                                             for h in started):
        await sipp.unregister(fresh_system.sip_port, extension, password).run(10)


@pytest.fixture
async def agent(fresh_system: System, phone: PhoneFactory) -> AsyncIterator[AgentFactory]:
    """An agent: a registered phone (``mode`` as for ``phone``) and a panel session, logged in to the
    queues unless ``login=False``. Logged out again when the test ends, so tests do not share agents."""
    clients: list[PanelClient] = []

    async def start(extension: str, mode: str = "answer", login: bool = True, **kwargs: object) -> PanelClient:
        await phone(extension, mode, **kwargs)
        client = PanelClient(fresh_system.web_url)
        clients.append(client)
        await client.login(extension, fresh_system.panel_password(extension))
        if login:
            await client.act("login")
        return client

    yield start
    for client in clients:
        try:
            view = await client.wait_view(lambda v: v["call"] is None, 15, "no call")
            if view["agent"]["state"] != "logged_out":
                await client.act("logout")
        finally:
            await client.close()
