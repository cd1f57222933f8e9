"""API tokens (docs/api.md): created by admins for a user the token acts as, shown once, stored as SHA-256.

Why SHA-256 and not argon2 like the passwords: the secret is 32 random bytes (256 bits), so no dictionary
or brute force can reach it and a slow hash would add nothing; and every API request looks the token up by
its hash, which must be fast and exact (an index), not a slow verify against every row."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.db.queries import in_thread
from callcenter.errors import ActionRefused, UserError
from callcenter.users.lookup import find_user
from callcenter.users.token_models import ApiToken

PREFIX = "cc_"
NAME_MAX = 100
# last_used_at is written at most this often per token (a busy integration does not write on every request)
TOUCH_EVERY = timedelta(minutes=1)


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A token as admins see it: never its secret."""

    id: int
    name: str
    user: str  # the login of the user it acts as
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


@dataclass(frozen=True)
class TokenUser:
    """Who a valid token acts as."""

    token_id: int
    user_id: int
    login: str
    roles: tuple[str, ...]


def _info(token: ApiToken, login: str) -> TokenInfo:
    return TokenInfo(token.id, token.name, login, token.created_by, token.created_at, token.expires_at,
                     token.last_used_at, token.revoked_at)


def create_token(session: Session, *, name: str, user: str, created_by: str,
                 expires_at: datetime | None = None, now: datetime | None = None) -> tuple[TokenInfo, str]:
    """A new token for ``user`` (extension or login); answers it and its secret, which is never shown again."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX or any(ord(c) < 32 for c in name):
        raise UserError(f"name: 1-{NAME_MAX} characters, no control characters")
    owner = find_user(session, user.strip(), "user")
    now = now or datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise UserError("expires: must be in the future")
    secret = new_secret()
    token = ApiToken(name=name, user_id=owner.id, secret_hash=hash_secret(secret), created_by=created_by,
                     created_at=now, expires_at=expires_at)
    session.add(token)
    session.flush()
    return _info(token, owner.login), secret


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token, newest first."""
    found = session.execute(select(ApiToken, User.login).join(User, User.id == ApiToken.user_id)
                            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
    return [_info(token, login) for token, login in found]


def revoke_token(session: Session, token_id: int, now: datetime | None = None) -> TokenInfo:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise ActionRefused(f"No API token {token_id}", 404)
    if token.revoked_at is None:
        token.revoked_at = now or datetime.now(UTC)
    owner = session.get(User, token.user_id)
    return _info(token, owner.login if owner is not None else "?")


def token_user(session: Session, secret: str, now: datetime) -> TokenUser | None:
    """The user a presented secret acts as; None when it is unknown, revoked, expired, or its user is gone
    or disabled (fail closed)."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.secret_hash == hash_secret(secret)))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    user = session.get(User, token.user_id)
    if user is None or user.disabled:
        return None
    return TokenUser(token.id, user.id, user.login, tuple(user.role_list))


class ApiTokens:
    """The token checks of the REST API (web/api.py) and the admin page's reads and writes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._touched: dict[int, datetime] = {}
        self._pending: set[asyncio.Task[None]] = set()

    async def authenticate(self, secret: str) -> TokenUser | None:
        now = datetime.now(UTC)
        found = await in_thread(self.db, lambda session: token_user(session, secret, now))
        if found is not None:
            self._touch(found.token_id, now)
        return found

    def _touch(self, token_id: int, now: datetime) -> None:
        """Writes last_used_at in the background, at most every ``TOUCH_EVERY`` per token."""
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[token_id] = now

        def write(session: Session) -> None:
            token = session.get(ApiToken, token_id)
            if token is not None:
                token.last_used_at = now

        task = asyncio.get_running_loop().create_task(in_thread(self.db, write))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Waits for the last_used_at writes in flight (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def list(self) -> list[TokenInfo]:
        return await in_thread(self.db, list_tokens)

    async def create(self, *, name: str, user: str, created_by: str,
                     expires_at: datetime | None = None) -> tuple[TokenInfo, str]:
        return await in_thread(self.db, lambda session: create_token(
            session, name=name, user=user, created_by=created_by, expires_at=expires_at))

    async def revoke(self, token_id: int) -> TokenInfo:
        return await in_thread(self.db, lambda session: revoke_token(session, token_id))
