"""Which phones are registered and free, ringing or in use: Asterisk's device states, from AMI. The
changes of users' phones go on the bus (users/events.py): the wallboard's direct calls and the ACD
(a phone that hung up may be the free agent a caller waits for) subscribe."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from callcenter.bus import Bus
from callcenter.errors import AmiError
from callcenter.users.events import PhoneStateChanged, PhoneStatesReplaced

log = logging.getLogger(__name__)

# Asterisk device states as AMI names them; UNAVAILABLE means no registered contact.
KNOWN_STATES = {"UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING",
                "RINGINUSE", "ONHOLD"}

DeviceStateList = Callable[[], Awaitable[Iterable[Mapping[str, str]]]]


class PhonePresence:
    def __init__(self, bus: Bus | None = None, is_user: Callable[[str], bool] = lambda _extension: True,
                 device_states: DeviceStateList | None = None) -> None:
        """``is_user``: whether an extension is a user's phone (only those are published);
        ``device_states``: every device's state now (AMI DeviceStateList), for ``resync``."""
        self.states: dict[str, str] = {}
        self.bus = bus
        self.is_user = is_user
        self.device_states = device_states

    @staticmethod
    def extension_of(device: str) -> str | None:
        tech, _, name = device.partition("/")
        return name if tech.upper() == "PJSIP" and name else None

    def device_state(self, device: str, state: str) -> None:
        extension = self.extension_of(device)
        if extension is not None and state in KNOWN_STATES:
            self.states[extension] = state

    def replace_all(self, events: Iterable[Mapping[str, str]]) -> None:
        """A fresh DeviceStateList after (re)connecting replaces whatever we knew."""
        self.states.clear()
        for event in events:
            if event.get("Event") == "DeviceStateChange":
                self.device_state(event.get("Device", ""), event.get("State", ""))

    def registered(self, extension: str) -> bool:
        return self.states.get(extension, "UNAVAILABLE") not in ("UNAVAILABLE", "INVALID", "UNKNOWN")

    # -- from AMI -----------------------------------------------------------------------------------

    async def on_device_state(self, event: Mapping[str, str]) -> None:
        """AMI DeviceStateChange."""
        device, state = event.get("Device", ""), event.get("State", "")
        self.device_state(device, state)
        extension = self.extension_of(device)
        if self.bus is not None and extension is not None and self.is_user(extension):
            await self.bus.publish(PhoneStateChanged(extension, state))

    async def resync(self) -> None:
        """After every AMI login: the whole list replaces what we knew."""
        if self.device_states is None:
            return
        try:
            self.replace_all(await self.device_states())
        except AmiError as exc:
            log.warning("device state resync failed: %s", exc)
            return
        if self.bus is not None:
            await self.bus.publish(PhoneStatesReplaced(
                {extension: state for extension, state in self.states.items() if self.is_user(extension)}))
