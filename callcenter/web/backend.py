"""What the panel needs from the rest of the controller. The web layer knows only this protocol; the
composition root (app.py) hands it the real implementation (callcenter/acd/panel.py), unit tests a fake.

Views are plain JSON-able dicts (documented in docs/panel.md); actions raise ``PanelError`` with a
message meant for the user (shown in the page, HTTP 400/403/404 by its ``http_status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from callcenter.errors import CallcenterError


class PanelError(CallcenterError):
    """An action the panel asked for cannot be done; the message is shown to the user."""

    error_id = "panel-action-refused"
    http_status = 400

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class PanelUser:
    id: int
    login: str
    name: str
    extension: str | None
    roles: tuple[str, ...]

    def has(self, role: str) -> bool:
        return role in self.roles


class PanelBackend(Protocol):
    async def authenticate(self, login: str, password: str) -> PanelUser | None:
        """The user when the login and password match, else None (argon2, off the event loop)."""

    async def user(self, user_id: int) -> PanelUser | None:
        """The user behind a session (None when removed since)."""

    async def change_password(self, user_id: int, old: str, new: str) -> None:
        """Raises PanelError when ``old`` is wrong or ``new`` too weak."""

    def agent_view(self, user_id: int) -> dict[str, Any]:
        """Everything the agent page shows: agent state, call card, wrap-up and pause choices,
        callbacks, transfer targets. Cheap: built from memory."""

    def wallboard(self) -> dict[str, Any]:
        """Per-queue and per-agent figures for the wallboard (docs/wallboard.md: figures and formulas)."""

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """An agent acts on their own state or call (login, ready, pause, wrapup, dial, hold...)."""

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """A supervisor approves or denies a pause, or logs an agent out."""

    @property
    def version(self) -> int:
        """Grows on every change the panel could show."""

    async def wait_change(self, version: int, timeout: float) -> int:
        """Returns the current version as soon as it differs from ``version`` (or at ``timeout``)."""
