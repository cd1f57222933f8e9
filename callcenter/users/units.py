"""Organisational units (CDR-5): who belongs to a unit, who manages it, and what a manager sees.

A *manager* is a user with the admin or the supervisor role. What they see is their scope: the units
listed for them in ``org_unit_admins``, or every unit by the explicit ``User.all_units`` grant (a *top*
admin or supervisor). Scopes fail closed: a manager with neither sees nothing and is told why. An
admin's scope limits the records and recordings they see (panel and FTPS), a supervisor's the queues,
agents and campaigns on the wallboard and what they may act on. A record is in a unit's view by the unit
stored on it when it was made (``Recording.unit_id``, ``CdrUser.unit_id``...), never by where its users
are now. There is always at least one admin with the all-units grant: the last one can be neither
removed, nor demoted, nor disabled, nor lose the grant (that would lock everyone out of the settings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ScalarSelect, delete, select
from sqlalchemy.orm import Session

from callcenter.db.models import OrgUnit, OrgUnitAdmin, User
from callcenter.errors import UserError
from callcenter.users.lookup import find_user

UNIT_NAME_MAX = 100
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f]")
# The folders every admin sees at the top of the FTPS tree (and the export writes per unit).
FILE_FOLDERS = ("CDRs", "QueueCalls", "Recordings")
MANAGER_ROLES = ("admin", "supervisor")
NO_SCOPE = ("You manage no organisational unit and have no grant of every unit, so there is nothing to "
            "show. A top admin can give you a unit (Units page, or `callcenter units save`).")


@dataclass(frozen=True)
class UnitRef:
    id: int
    name: str


@dataclass(frozen=True)
class Scope:
    """What one manager may see: every unit (``top``, by explicit grant) or some units, maybe none."""

    login: str
    top: bool
    units: tuple[UnitRef, ...] = ()

    @property
    def unit_ids(self) -> frozenset[int]:
        return frozenset(unit.id for unit in self.units)

    @property
    def empty(self) -> bool:
        """Nothing in scope: the pages say why (``NO_SCOPE``) instead of showing empty lists."""
        return not self.top and not self.units

    def covers(self, unit_id: int | None) -> bool:
        """Whether a record or an agent of ``unit_id`` is in scope; one of no unit only for top scope."""
        return self.top or (unit_id is not None and unit_id in self.unit_ids)

    def file_roots(self, files_dir: Path) -> dict[str, Path]:
        """The FTPS tree of this admin: virtual top-level name -> real directory (none for no scope)."""
        if self.top:
            return {name: files_dir / name for name in FILE_FOLDERS}
        if len(self.units) == 1:
            unit_dir = unit_files_dir(files_dir, self.units[0].id)
            return {name: unit_dir / name for name in FILE_FOLDERS}
        return {unit.name: unit_files_dir(files_dir, unit.id) for unit in self.units}


# The admin pages and FTPS call it by this name; it is the same scope as a supervisor's.
AdminScope = Scope


def unit_files_dir(files_dir: Path, unit_id: int) -> Path:
    """A unit's own copies of the exports and (hard links of) its recordings."""
    return files_dir / "units" / str(unit_id)


def is_admin(user: User) -> bool:
    return "admin" in user.role_list


def is_manager(user: User) -> bool:
    return any(role in user.role_list for role in MANAGER_ROLES)


def _scope(session: Session, user: User) -> Scope:
    units = session.execute(
        select(OrgUnit.id, OrgUnit.name).join(OrgUnitAdmin, OrgUnitAdmin.unit_id == OrgUnit.id)
        .where(OrgUnitAdmin.user_id == user.id).order_by(OrgUnit.name)).all()
    return Scope(user.login, top=bool(user.all_units), units=tuple(UnitRef(i, n) for i, n in units))


def admin_scope(session: Session, user: User) -> Scope | None:
    """The scope of an enabled admin; None for anyone else."""
    if not is_admin(user) or user.disabled:
        return None
    return _scope(session, user)


def supervisor_scope(session: Session, user: User) -> Scope | None:
    """The scope of an enabled supervisor or admin (who supervises too); None for anyone else."""
    if not is_manager(user) or user.disabled:
        return None
    return _scope(session, user)


def unit_of_user(session: Session, user_id: int | None) -> int | None:
    """The unit a user is in now: what a record made now stores as its unit."""
    if user_id is None:
        return None
    return session.scalar(select(User.org_unit_id).where(User.id == user_id))


def unit_when_written(user_id: int | None) -> ScalarSelect[Any]:
    """A user's unit as a subquery for a record's unit column, evaluated when the row is written
    (moments after the event): the record keeps that unit, with no cache of units to go stale."""
    return select(User.org_unit_id).where(User.id == user_id).scalar_subquery()


def top_admin_ids(session: Session) -> set[int]:
    return {u.id for u in session.scalars(select(User).where(User.all_units.is_(True)))
            if is_admin(u) and not u.disabled}


def check_keeps_a_top_admin(session: Session, losing: User, action: str) -> None:
    """Refuses an action that would leave no enabled admin with the all-units grant."""
    tops = top_admin_ids(session)
    if tops == {losing.id}:
        raise UserError(f"{losing.login} is the last top admin and cannot be {action}: "
                        "give another admin every unit first")


def grant_all_units(session: Session, key: str, granted: bool) -> User:
    """Gives or takes the explicit grant of every unit (top scope) to an admin or supervisor."""
    user = find_user(session, key)
    if granted and not is_manager(user):
        raise UserError(f"{user.login} needs the admin or supervisor role before being given every unit")
    if not granted and user.all_units:
        check_keeps_a_top_admin(session, user, "lose the grant of every unit")
    user.all_units = granted
    session.flush()
    return user


def _unit(session: Session, name: str) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.name == name))
    if unit is None:
        raise UserError(f"no organisational unit {name!r}")
    return unit


def _users(session: Session, keys: Sequence[str]) -> list[User]:
    return [find_user(session, key) for key in keys]


def save_unit(session: Session, name: str, *, members: Sequence[str] | None = None,
              admins: Sequence[str] | None = None, create: bool = True) -> OrgUnit:
    """Creates or updates a unit: its members (users whose records it holds) and its managers (admins
    and supervisors whose scope it is in). ``None`` leaves that list as it is; a list replaces it."""
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
            if not is_manager(user):
                raise UserError(f"{user.login} needs the admin or supervisor role before managing a unit")
        current = set(session.scalars(select(OrgUnitAdmin.user_id).where(OrgUnitAdmin.unit_id == unit.id)))
        for user in wanted:
            if user.id not in current:
                session.add(OrgUnitAdmin(unit_id=unit.id, user_id=user.id))
                session.flush()
        keep = {u.id for u in wanted}
        session.execute(delete(OrgUnitAdmin).where(OrgUnitAdmin.unit_id == unit.id,
                                                   OrgUnitAdmin.user_id.not_in(keep)))
    session.flush()
    return unit


def unit_managers(session: Session, name: str) -> list[str]:
    """The logins of the admins and supervisors who manage a unit."""
    unit = _unit(session, name)
    return list(session.scalars(select(User.login).join(OrgUnitAdmin, OrgUnitAdmin.user_id == User.id)
                                .where(OrgUnitAdmin.unit_id == unit.id).order_by(User.login)))


def remove_unit(session: Session, name: str, *, managers_to: str | None = None,
                drop_managers: bool = False) -> None:
    """Removes a unit; its members stay, with no unit. When it has managers the caller must say what
    becomes of them: ``managers_to`` another unit (they manage it instead), or ``drop_managers`` (they
    lose this unit; one left with no unit sees nothing). Records made in the unit keep no unit and are
    seen only by top admins."""
    unit = _unit(session, name)
    managers = unit_managers(session, name)
    if managers and managers_to is None and not drop_managers:
        raise UserError(f"unit {name} is managed by {', '.join(managers)}: say what becomes of them "
                        "(move them to another unit, or let them lose this one)")
    if managers_to is not None:
        target = _unit(session, managers_to)
        if target.id == unit.id:
            raise UserError("move the managers to another unit than the one removed")
        already = set(session.scalars(select(OrgUnitAdmin.user_id).where(OrgUnitAdmin.unit_id == target.id)))
        for user_id in session.scalars(select(OrgUnitAdmin.user_id).where(OrgUnitAdmin.unit_id == unit.id)):
            if user_id not in already:
                session.add(OrgUnitAdmin(unit_id=target.id, user_id=user_id))
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
    admins: tuple[str, ...]  # its managers: admins and supervisors


def list_units(session: Session) -> list[UnitView]:
    views = []
    for unit in session.scalars(select(OrgUnit).order_by(OrgUnit.name)):
        members = tuple(session.scalars(select(User.login).where(User.org_unit_id == unit.id).order_by(User.login)))
        admins = tuple(session.scalars(select(User.login).join(OrgUnitAdmin, OrgUnitAdmin.user_id == User.id)
                                       .where(OrgUnitAdmin.unit_id == unit.id).order_by(User.login)))
        views.append(UnitView(unit.id, unit.name, members, admins))
    return views
