"""A user by what people type for them: their extension or their login name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db.models import User
from callcenter.errors import UserError


def user_by_key(session: Session, key: str) -> User | None:
    """The user whose extension or login is ``key``; None when nobody's is (or ``key`` is empty)."""
    if not key:
        return None
    return session.scalar(select(User).where((User.extension == key) | (User.login == key)))


def find_user(session: Session, key: str, what: str = "") -> User:
    """Like ``user_by_key``, but a missing user is a UserError (``what``: the field it came from)."""
    user = user_by_key(session, key)
    if user is None:
        raise UserError(f"{what + ': ' if what else ''}no user with extension or login {key!r}")
    return user
