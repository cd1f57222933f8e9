"""Organisational units (CDR-5): who belongs to a unit, who administers it, and what an admin sees.

A *top admin* has the admin role and administers no unit: they see every record. A *unit admin*
has the admin role and administers one or more units: they see the calls and recordings of those
units' users only, in the panel and over FTPS. There is always at least one top admin: the last one
can be neither removed, nor demoted, nor made a unit admin (that would lock everyone out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from callcenter.db.models import OrgUnit, OrgUnitAdmin, User
from callcenter.errors import UserError

UNIT_NAME_MAX = 100
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f]")
# The folders every admin sees at the top of the FTPS tree (and the export writes per unit).
FILE_FOLDERS = ("CDRs", "QueueCalls", "Recordings")


@dataclass(frozen=True)
class UnitRef:
    id: int
    name: str


@dataclass(frozen=True)
class AdminScope:
    """What one admin may see: everything (top) or the users of some units."""

    login: str
    top: bool
    units: tuple[UnitRef, ...] = ()

    @property
    def unit_ids(self) -> frozenset[int]:
        return frozenset(unit.id for unit in self.units)

    def file_roots(self, files_dir: Path) -> dict[str, Path]:
        """The FTPS tree of this admin: virtual top-level name -> real directory."""
        if self.top:
            return {name: files_dir / name for name in FILE_FOLDERS}
        if len(self.units) == 1:
            unit_dir = unit_files_dir(files_dir, self.units[0].id)
            return {name: unit_dir / name for name in FILE_FOLDERS}
        return {unit.name: unit_files_dir(files_dir, unit.id) for unit in self.units}


def unit_files_dir(files_dir: Path, unit_id: int) -> Path:
    """A unit's own copies of the exports and (hard links of) its recordings."""
    return files_dir / "units" / str(unit_id)


def is_admin(user: User) -> bool:
    return "admin" in user.role_list


def admin_scope(session: Session, user: User) -> AdminScope | None:
    """The scope of an admin; None for a user without the admin role."""
    if not is_admin(user):
        return None
    units = session.execute(
        select(OrgUnit.id, OrgUnit.name).join(OrgUnitAdmin, OrgUnitAdmin.unit_id == OrgUnit.id)
        .where(OrgUnitAdmin.user_id == user.id).order_by(OrgUnit.name)).all()
    return AdminScope(user.login, top=not units, units=tuple(UnitRef(i, n) for i, n in units))


def scoped_user_ids(scope: AdminScope) -> Select[Any] | None:
    """A subquery of the ids of the users this admin sees, or None when they see everyone."""
    if scope.top:
        return None
    return select(User.id).where(User.org_unit_id.in_(sorted(scope.unit_ids)))


def top_admin_ids(session: Session) -> set[int]:
    unit_admins = set(session.scalars(select(OrgUnitAdmin.user_id)))
    return {u.id for u in session.scalars(select(User)) if is_admin(u) and u.id not in unit_admins}


def check_keeps_a_top_admin(session: Session, losing: User, action: str) -> None:
    """Refuses an action that would leave no top admin."""
    tops = top_admin_ids(session)
    if tops == {losing.id}:
        raise UserError(f"{losing.login} is the last top admin and cannot be {action}: "
                        "make another admin first")


def _unit(session: Session, name: str) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.name == name))
    if unit is None:
        raise UserError(f"no organisational unit {name!r}")
    return unit


def _users(session: Session, keys: Sequence[str]) -> list[User]:
    found: list[User] = []
    for key in keys:
        user = session.scalar(select(User).where((User.extension == key) | (User.login == key)))
        if user is None:
            raise UserError(f"no user with extension or login {key!r}")
        found.append(user)
    return found


def save_unit(session: Session, name: str, *, members: Sequence[str] | None = None,
              admins: Sequence[str] | None = None, create: bool = True) -> OrgUnit:
    """Creates or updates a unit: its members (users whose records it holds) and its admins.
    ``None`` leaves that list as it is; a list replaces it."""
    name = name.strip()
    # The name is also a folder name on FTPS (an admin of several units sees one folder each).
    if not name or len(name) > UNIT_NAME_MAX or name in (".", "..") or _BAD_NAME.search(name):
        raise UserError(f"unit name {name!r}: 1-{UNIT_NAME_MAX} characters, no '/', no control characters, "
                        "not '.' or '..'")
    unit = session.scalar(select(OrgUnit).where(OrgUnit.name == name))
    if unit is None:
        if not create:
            raise UserError(f"no organisational unit {name!r}")
        unit = OrgUnit(name=name)
        session.add(unit)
        session.flush()
    if members is not None:
        wanted = _users(session, members)
        for user in session.scalars(select(User).where(User.org_unit_id == unit.id)):
            if user not in wanted:
                user.org_unit_id = None
        for user in wanted:
            user.org_unit_id = unit.id
    if admins is not None:
        wanted = _users(session, admins)
        for user in wanted:
            if not is_admin(user):
                raise UserError(f"{user.login} needs the admin role before administering a unit")
        current = set(session.scalars(select(OrgUnitAdmin.user_id).where(OrgUnitAdmin.unit_id == unit.id)))
        for user in wanted:
            if user.id not in current:
                check_keeps_a_top_admin(session, user, "made a unit admin")
                session.add(OrgUnitAdmin(unit_id=unit.id, user_id=user.id))
                session.flush()
        keep = {u.id for u in wanted}
        session.execute(delete(OrgUnitAdmin).where(OrgUnitAdmin.unit_id == unit.id,
                                                   OrgUnitAdmin.user_id.not_in(keep)))
    session.flush()
    return unit


def remove_unit(session: Session, name: str) -> None:
    unit = _unit(session, name)
    for user in session.scalars(select(User).where(User.org_unit_id == unit.id)):
        user.org_unit_id = None
    session.execute(delete(OrgUnitAdmin).where(OrgUnitAdmin.unit_id == unit.id))
    session.delete(unit)
    session.flush()


@dataclass(frozen=True)
class UnitView:
    id: int
    name: str
    members: tuple[str, ...]
    admins: tuple[str, ...]


def list_units(session: Session) -> list[UnitView]:
    views = []
    for unit in session.scalars(select(OrgUnit).order_by(OrgUnit.name)):
        members = tuple(session.scalars(select(User.login).where(User.org_unit_id == unit.id).order_by(User.login)))
        admins = tuple(session.scalars(select(User.login).join(OrgUnitAdmin, OrgUnitAdmin.user_id == User.id)
                                       .where(OrgUnitAdmin.unit_id == unit.id).order_by(User.login)))
        views.append(UnitView(unit.id, unit.name, members, admins))
    return views
