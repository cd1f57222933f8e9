"""Who may open the admin pages and what they see there: the admin's scope (users/units.py), read for
every request. A top admin (explicit grant of every unit) sees every row, a unit admin the records of
their units, an admin with no unit nothing (scopes fail closed: the pages say why)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.db.queries import in_thread
from callcenter.errors import ActionRefused
from callcenter.users.units import AdminScope, admin_scope

NOT_ADMIN = "This page is for admins"
NOT_TOP = "Only a top admin may see or change this: it applies to every unit"


@dataclass(frozen=True)
class AdminAccess:
    """What an admin may see: everything (a top admin) or the users of some units."""

    login: str
    top: bool
    units: tuple[str, ...] = ()
    empty: bool = False  # no unit and no grant of every unit: nothing to see (users/units.py NO_SCOPE)


def scope_of(session: Session, user_id: int) -> AdminScope | None:
    """The user's admin scope; None when the user is gone or not an admin."""
    user = session.get(User, user_id)
    return admin_scope(session, user) if user is not None else None


def require_admin(session: Session, user_id: int, top: bool = False) -> AdminScope:
    """The admin's scope, or ActionRefused (403) for anyone else (anyone but a top admin when ``top``)."""
    scope = scope_of(session, user_id)
    if scope is None:
        raise ActionRefused(NOT_ADMIN, 403)
    if top and not scope.top:
        raise ActionRefused(NOT_TOP, 403)
    return scope


def user_label(name: str | None, extension: str | None, fallback: str) -> str:
    """"Name (extension)" of a user, or ``fallback`` (the SIP name, the extension) when the user is gone."""
    if name is None:
        return fallback
    return f"{name} ({extension})" if extension else name


class AdminScopes:
    """The scope check of every admin page (web/admin_pages.py ``admin_page``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def scope(self, user_id: int) -> AdminAccess | None:
        """The admin's scope; None when the user is gone or not an admin."""
        def read(session: Session) -> AdminAccess | None:
            scope = scope_of(session, user_id)
            if scope is None:
                return None
            return AdminAccess(scope.login, scope.top, tuple(unit.name for unit in scope.units), scope.empty)

        return await in_thread(self.db, read)
