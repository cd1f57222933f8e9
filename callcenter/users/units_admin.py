"""The Units page's side of the database (users/units_http.py): the organisational units (units.py) as
top admins see and change them. Units apply to every scope, so only top admins see or change them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.db.queries import in_thread
from callcenter.users import units
from callcenter.users.access import require_admin
from callcenter.users.events import UnitsChanged

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitRow:
    name: str
    members: tuple[str, ...]  # logins
    admins: tuple[str, ...]  # logins


class UnitsAdmin:
    """Every method takes the id of the logged-in user; anyone but a top admin gets ``ActionRefused`` (403),
    bad input a ``UserError`` with a message for the user (400)."""

    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus

    async def units(self, user_id: int) -> list[UnitRow]:
        """The organisational units by name."""
        def read(session: Session) -> list[UnitRow]:
            require_admin(session, user_id, top=True)
            return [UnitRow(unit.name, unit.members, unit.admins) for unit in units.list_units(session)]

        return await in_thread(self.db, read)

    async def save_unit(self, user_id: int, name: str, members: Sequence[str], admins: Sequence[str]) -> None:
        """Creates or updates a unit; ``members`` (logins or extensions) and ``admins`` replace the lists."""
        def save(session: Session) -> None:
            login = require_admin(session, user_id, top=True).login
            units.save_unit(session, name, members=list(members), admins=list(admins))
            log.info("admin: %s saved unit %s: members %s, admins %s", login, name.strip(),
                     ",".join(members) or "-", ",".join(admins) or "-")

        await in_thread(self.db, save)
        await self.bus.publish(UnitsChanged(name.strip()))

    async def unit_managers(self, user_id: int, name: str) -> list[str]:
        """The logins of the admins and supervisors who manage a unit."""
        def read(session: Session) -> list[str]:
            require_admin(session, user_id, top=True)
            return units.unit_managers(session, name)

        return await in_thread(self.db, read)

    async def remove_unit(self, user_id: int, name: str, *, managers_to: str | None = None,
                          drop_managers: bool = False) -> None:
        """Removes a unit (its users stay, without a unit). A unit with managers needs ``managers_to`` (they
        manage that unit instead) or ``drop_managers`` (they lose it), else UserError."""
        def remove(session: Session) -> None:
            login = require_admin(session, user_id, top=True).login
            units.remove_unit(session, name, managers_to=managers_to, drop_managers=drop_managers)
            log.info("admin: %s removed unit %s (managers %s)", login, name,
                     f"moved to {managers_to}" if managers_to else "dropped" if drop_managers else "none")

        await in_thread(self.db, remove)
        await self.bus.publish(UnitsChanged(name))
