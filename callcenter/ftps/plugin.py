"""The FTPS feature: admins fetch CDRs, queue calls and recordings over explicit TLS (ftps/server.py)."""

from __future__ import annotations

import asyncio
import logging

from callcenter.features import Core
from callcenter.ftps.accounts import AdminAccounts
from callcenter.ftps.server import FtpsServer
from callcenter.users.throttle import LoginThrottle

log = logging.getLogger(__name__)


def load(core: Core, throttle: LoginThrottle) -> FtpsServer | None:
    """``throttle``: the count of failed logins FTPS shares with the panel. None when [ftps] is off."""
    settings = core.settings
    if not settings.ftps.enabled:
        return None
    server = FtpsServer(settings.ftps, settings.var_dir, AdminAccounts(core.db, settings.files_dir), throttle)

    async def start() -> None:
        await asyncio.to_thread(server.start)
        log.info("FTPS for admins on %s:%d (explicit TLS required)", settings.ftps.bind, server.port)

    async def stop() -> None:
        await asyncio.to_thread(server.stop)

    core.serve(start, stop)
    return server
