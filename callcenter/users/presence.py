"""Which phones are registered and free, ringing or in use: Asterisk's device states, from AMI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Asterisk device states as AMI names them; UNAVAILABLE means no registered contact.
KNOWN_STATES = {"UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING",
                "RINGINUSE", "ONHOLD"}


class PhonePresence:
    def __init__(self) -> None:
        self.states: dict[str, str] = {}

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
