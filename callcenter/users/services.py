"""Users: who may log in to the panel and which SIP phone (extension) each one has."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callcenter.asterisk.render import SipUser, sip_ha1
from callcenter.db.models import OrgUnit, OrgUnitAdmin, User
from callcenter.errors import UserError
from callcenter.secrets import new_password
from callcenter.users.lookup import find_user, user_by_key
from callcenter.users.units import MANAGER_ROLES, check_keeps_a_top_admin, save_unit

ROLES = ("agent", "supervisor", "admin")
EXTENSION_RE = re.compile(r"^[1-9][0-9]{1,9}$")
LOGIN_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_hasher = PasswordHasher()

DEMO_USERS = (
    ("2001", "Agent Alice", ("agent",)),
    ("2002", "Agent Bob", ("agent",)),
    ("2003", "Agent Carol", ("agent",)),
    ("2004", "Agent Dave", ("agent",)),
    ("2005", "Supervisor Sam", ("supervisor",)),
    ("2006", "Agent Erin", ("agent",)),
)


@dataclass(frozen=True)
class NewUser:
    user: User
    sip_password: str | None
    panel_password: str | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verified against when a login is unknown, so an unknown login costs the same argon2 work as a
# known one and the answer's timing does not tell which logins exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_login(session: Session, key: str, password: str) -> User | None:
    """The enabled user whose login or extension is ``key`` when ``password`` is theirs, else None.
    Always one argon2 verification, whether or not the user exists (no user enumeration by timing)."""
    user = user_by_key(session, key)
    if user is None or not user.password_hash:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or user.disabled:
        return None
    return user


def account_key(session: Session, key: str) -> str:
    """One name per account for the login throttle: a user's login, whether they typed it or their
    extension; what was typed (case-folded) when no user has it."""
    user = user_by_key(session, key)
    return (user.login if user is not None else key).casefold()


def _check_roles(roles: Sequence[str]) -> str:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise UserError(f"roles must be among {', '.join(ROLES)}; got {', '.join(roles) or 'none'}")
    return ",".join(dict.fromkeys(roles))


def _org_unit(session: Session, name: str | None) -> OrgUnit | None:
    if not name:
        return None
    unit = session.scalar(select(OrgUnit).where(OrgUnit.name == name))
    if unit is None:
        unit = OrgUnit(name=name)
        session.add(unit)
    return unit


def add_user(session: Session, *, name: str, extension: str | None = None, login: str | None = None,
             roles: Sequence[str] = ("agent",), org_unit: str | None = None,
             sip_password: str | None = None, panel_password: str | None = None) -> NewUser:
    """Creates a user; passwords not given are generated (and returned, to be shown once)."""
    if extension is not None and not EXTENSION_RE.match(extension):
        raise UserError(f"extension {extension!r}: 2-10 digits, not starting with 0")
    login = login or extension
    if not login or not LOGIN_RE.match(login):
        raise UserError(f"login {login!r}: 1-64 letters, digits or _.@-")
    if not name.strip():
        raise UserError("name must not be empty")
    if extension and session.scalar(select(User.id).where(User.extension == extension)) is not None:
        raise UserError(f"extension {extension} is taken")
    if session.scalar(select(User.id).where(User.login == login)) is not None:
        raise UserError(f"login {login} is taken")
    if sip_password is not None and not re.fullmatch(r"[A-Za-z0-9._~!-]{8,64}", sip_password):
        raise UserError("SIP password: 8-64 characters among letters, digits and ._~!-")
    sip_password = sip_password or new_password() if extension else None
    panel_password = panel_password or new_password(12)
    user = User(login=login, extension=extension, name=name.strip(),
                sip_ha1=sip_ha1(extension, sip_password) if extension and sip_password else "",
                password_hash=hash_password(panel_password), roles=_check_roles(roles),
                org_unit=_org_unit(session, org_unit), created_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    return NewUser(user, sip_password, panel_password)


def set_passwords(session: Session, key: str, *, sip_password: str | None = None,
                  panel_password: str | None = None, generate: bool = False) -> NewUser:
    user = find_user(session, key)
    if generate:
        sip_password = sip_password or (new_password() if user.extension else None)
        panel_password = panel_password or new_password(12)
    if sip_password:
        if not user.extension:
            raise UserError(f"{user.login} has no extension, so no SIP password")
        user.sip_ha1 = sip_ha1(user.extension, sip_password)
    if panel_password:
        user.password_hash = hash_password(panel_password)
        user.session_epoch += 1  # a reset password ends every panel session of the user
    if not sip_password and not panel_password:
        raise UserError("give --sip-password, --password or --generate")
    return NewUser(user, sip_password, panel_password)


def remove_user(session: Session, key: str) -> User:
    user = find_user(session, key)
    check_keeps_a_top_admin(session, user, "removed")
    session.delete(user)
    return user


def set_roles(session: Session, key: str, roles: Sequence[str]) -> User:
    """Changes a user's roles and ends their sessions (what they may do changed). One who is no longer
    an admin or supervisor manages no unit any more and loses the grant of every unit."""
    user = find_user(session, key)
    new_roles = _check_roles(roles).split(",")
    if "admin" not in new_roles:
        check_keeps_a_top_admin(session, user, "demoted")
    if not any(role in new_roles for role in MANAGER_ROLES):
        session.execute(delete(OrgUnitAdmin).where(OrgUnitAdmin.user_id == user.id))
        user.all_units = False
    if user.role_list != new_roles:
        user.session_epoch += 1
    user.roles = ",".join(new_roles)
    session.flush()
    return user


def set_disabled(session: Session, key: str, disabled: bool) -> User:
    """Disables a user (no login anywhere, every session ended) or enables them again."""
    user = find_user(session, key)
    if disabled and not user.disabled:
        check_keeps_a_top_admin(session, user, "disabled")
        user.session_epoch += 1
    user.disabled = disabled
    session.flush()
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """Ends every panel session of a user, in every controller process and across restarts."""
    user = session.get(User, user_id)
    if user is not None:
        user.session_epoch += 1


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.extension.is_(None), User.extension, User.login)))


def sip_users(session: Session) -> list[SipUser]:
    rows = session.execute(select(User.extension, User.name, User.sip_ha1)
                           .where(User.extension.is_not(None))).all()
    return [SipUser(ext, name, ha1) for ext, name, ha1 in rows if ext]


def seed_demo(session: Session) -> list[NewUser] | None:
    """On an empty database: the admin and the demo agents 2001-2004 and 2006, and supervisor 2005.
    Returns them with their generated passwords (the admin first), or None when users already existed."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    admin = add_user(session, name="Administrator", login="admin", roles=("admin", "supervisor"))
    admin.user.all_units = True  # the one explicit top grant a new install starts with
    # Each demo user gets a SIP and a different panel password (add_user generates both): one leaked
    # from a phone's settings does not open the panel, nor the other way round.
    created = [add_user(session, name=name, extension=extension, roles=roles, org_unit="Demo")
               for extension, name, roles in DEMO_USERS]
    # The demo supervisor supervises the demo unit: its queues, agents and campaigns.
    save_unit(session, "Demo", admins=["2005"])
    return [admin, *created]
