"""Panel accounts: who may log in, the user behind a session, logout everywhere and password changes.

``UserAccounts`` is the service users/http.py's login, logout and password pages use, and the ``Accounts``
every guard asks for the user behind a session (web/guards.py). Database work runs in a thread (argon2
too): nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.errors import ActionRefused
from callcenter.users import services as users

MIN_PASSWORD = 10


@dataclass(frozen=True)
class PanelUser:
    id: int
    login: str
    name: str
    extension: str | None
    roles: tuple[str, ...]
    session_epoch: int = 0  # a session issued under another epoch has ended (web/sessions.py)

    def has(self, role: str) -> bool:
        return role in self.roles


def as_panel_user(user: User) -> PanelUser:
    return PanelUser(user.id, user.login, user.name, user.extension, tuple(user.role_list), user.session_epoch)


class UserAccounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _panel_user(self, user_id: int) -> PanelUser | None:
        with self.db.session() as session:
            user = session.get(User, user_id)
            return as_panel_user(user) if user is not None and not user.disabled else None

    async def user(self, user_id: int) -> PanelUser | None:
        """The user behind a session (None when removed or disabled since)."""
        return await asyncio.to_thread(self._panel_user, user_id)

    async def authenticate(self, login: str, password: str) -> PanelUser | None:
        """The user when the login and password match, else None (argon2, off the event loop)."""
        def check() -> PanelUser | None:
            with self.db.session() as session:
                user = users.check_login(session, login, password)
                return as_panel_user(user) if user is not None else None
        return await asyncio.to_thread(check)

    async def account(self, typed: str) -> str:
        """One name per account for the login throttle (a login typed as the extension is the same)."""
        def read() -> str:
            with self.db.session() as session:
                return users.account_key(session, typed)
        return await asyncio.to_thread(read)

    async def end_sessions(self, user_id: int) -> None:
        """Ends every session of the user, everywhere and across restarts (logout)."""
        def end() -> None:
            with self.db.session() as session:
                users.end_sessions(session, user_id)
        await asyncio.to_thread(end)

    async def change_password(self, user_id: int, old: str, new: str) -> int:
        """Changes the password and ends every session of the user; returns the new session epoch.
        Raises ActionRefused (403) when ``old`` is wrong, (400) when ``new`` is too weak."""
        def change() -> int:
            with self.db.session() as session:
                user = session.get(User, user_id)
                if user is None or not users.verify_password(user.password_hash, old):
                    raise ActionRefused("The current password is wrong.", 403)
                if len(new) < MIN_PASSWORD:
                    raise ActionRefused(f"The new password needs at least {MIN_PASSWORD} characters.")
                if new == old:
                    raise ActionRefused("The new password must differ from the current one.")
                user.password_hash = users.hash_password(new)
                user.session_epoch += 1  # whoever else was logged in with the old password is out
                return user.session_epoch
        return await asyncio.to_thread(change)
