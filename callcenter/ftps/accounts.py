"""Who may log in to FTPS and what they see: the panel's admin accounts, each limited to its scope
(the top admin: everything; a unit admin: their units' folders, docs/ftps.md)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.ftps.server import FtpAccount
from callcenter.users.services import verify_password
from callcenter.users.units import admin_scope


class AdminAccounts:
    def __init__(self, db: Database, files_dir: Path) -> None:
        self.db = db
        self.files_dir = files_dir

    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        with self.db.session() as session:
            user = session.scalar(select(User).where(User.login == login))
            if user is None or not verify_password(user.password_hash, password):
                return None
            scope = admin_scope(session, user)
        if scope is None:
            return None
        return FtpAccount(scope.login, scope.file_roots(self.files_dir))
