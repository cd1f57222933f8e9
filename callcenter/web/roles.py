"""The roles the pages know and the user the web layer sees: ``User`` (a protocol: users/accounts.py
``PanelUser`` is the real one), ``AGENT`` and ``SUPERVISOR`` (role tuples a route may ask for), ``allowed``
and ``landing`` (where a user goes after logging in). web/guards.py offers them all again with the guard."""

from __future__ import annotations

from typing import Protocol

AGENT = ("agent",)
SUPERVISOR = ("supervisor", "admin")
WHO = {AGENT: "agents", SUPERVISOR: "supervisors"}


class User(Protocol):
    """A logged-in user as the web layer sees them."""

    @property
    def id(self) -> int: ...

    @property
    def login(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def extension(self) -> str | None: ...

    @property
    def session_epoch(self) -> int:
        """A session issued under another epoch has ended (web/sessions.py)."""

    def has(self, role: str) -> bool: ...


def allowed(user: User, roles: tuple[str, ...]) -> bool:
    return not roles or any(user.has(role) for role in roles)


def landing(user: User) -> str:
    if user.has("agent"):
        return "/agent"
    if allowed(user, SUPERVISOR):
        return "/wallboard"
    return "/password"
