"""AMI adapter on panoramisk: system-wide events (phone registration, device state) and the list
actions ARI lacks.

Two fixes over plain panoramisk: bytes are decoded incrementally (panoramisk decodes each TCP read
with errors='ignore', losing a UTF-8 character split across reads), and only read-only actions are
ever re-sent after a reconnect: anything else fails instead of running twice.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from callcenter import metrics
from callcenter.errors import AmiError

log = logging.getLogger(__name__)

# Actions that only read state: safe to send again after a reconnect.
IDEMPOTENT_ACTIONS = frozenset({"devicestatelist", "coreshowchannels", "coresettings", "corestatus"})


class _ForgetUnlessIdempotent:
    """panoramisk re-sends awaiting actions unless their name is 'in' this container."""

    def __contains__(self, action: object) -> bool:
        return str(action).lower() not in IDEMPOTENT_ACTIONS


class _Utf8Protocol(AMIProtocol):  # type: ignore[misc]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            # The parent decodes again: hand it bytes that are whole characters.
            super().data_received(text.encode("utf-8"))


EventCallback = Callable[[dict[str, str]], Awaitable[None] | None]


class AmiClient:
    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.manager = Manager(
            host=host, port=port, username=user, secret=secret, events="on",
            ping_delay=10, ping_interval=10, reconnect_timeout=1,
            protocol_factory=_Utf8Protocol, forgetable_actions=_ForgetUnlessIdempotent(),
            on_login=self._logged_in, on_disconnect=self._disconnected,
            log=logging.getLogger("callcenter.ami.panoramisk"))
        self.logged_in = asyncio.Event()
        self.fully_booted = asyncio.Event()
        self.last_error = "not connected yet"
        self._on_login: list[Callable[[], Awaitable[None]]] = []
        self._down_logged = False
        self._tasks: set[asyncio.Future[None]] = set()
        self.manager.register_event("FullyBooted", self._booted)

    async def connect(self) -> None:
        self.manager.loop = asyncio.get_running_loop()
        self.manager.connect()

    def close(self) -> None:
        self.manager.close()
        self.logged_in.clear()
        metrics.AMI_CONNECTED.set(0)

    def on_event(self, pattern: str, callback: EventCallback) -> None:
        def adapter(_manager: Manager, message: Any) -> Any:
            metrics.AMI_EVENTS.labels(message.event).inc()
            return callback(dict(message))
        self.manager.register_event(pattern, adapter)

    def on_login(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Runs after every login (the first and each reconnect): where a feature resyncs what it follows."""
        self._on_login.append(callback)

    async def device_states(self) -> list[dict[str, str]]:
        """DeviceStateList: one DeviceStateChange-like event per device Asterisk knows."""
        return await self.action({"Action": "DeviceStateList"})

    def _logged_in(self, _manager: Manager) -> None:
        self.logged_in.set()
        self.last_error = ""
        metrics.AMI_CONNECTED.set(1)
        if self._down_logged:
            log.info("AMI connection back")
            self._down_logged = False
        for callback in self._on_login:
            task = asyncio.ensure_future(callback())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _disconnected(self, _manager: Manager, exc: Any) -> None:
        self.logged_in.clear()
        self.fully_booted.clear()
        self.last_error = f"connection lost ({exc})"
        metrics.AMI_CONNECTED.set(0)
        if not self._down_logged:
            log.warning("AMI connection lost; reconnecting")
            self._down_logged = True

    def _booted(self, _manager: Manager, _message: Any) -> None:
        self.fully_booted.set()

    async def action(self, action: dict[str, str], timeout: float = 5.0) -> list[dict[str, str]]:
        """Sends an action and returns its response messages (list actions: every event of it)."""
        if not self.logged_in.is_set():
            raise AmiError(f"AMI not connected: {self.last_error}")
        is_list = action["Action"].lower() in IDEMPOTENT_ACTIONS
        future = self.manager.send_action(dict(action), as_list=is_list)
        try:
            result = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AmiError(f"AMI action {action['Action']} got no answer in {timeout} s") from None
        messages = result if isinstance(result, Iterable) and not hasattr(result, "keys") else [result]
        out = [dict(m) for m in messages]
        if out and out[0].get("Response") == "Error":
            raise AmiError(f"AMI action {action['Action']}: {out[0].get('Message', 'error')}")
        return out
