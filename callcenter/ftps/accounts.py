"""Who may log in to FTPS and what they see: the panel's admin accounts, each limited to its scope
(the top admin: everything; a unit admin: their units' folders, docs/ftps.md)."""

from __future__ import annotations

from pathlib import Path

from callcenter.db.engine import Database
from callcenter.ftps.server import FtpAccount
from callcenter.users.services import account_key, check_login
from callcenter.users.units import NO_SCOPE, admin_scope


class AdminAccounts:
    def __init__(self, db: Database, files_dir: Path) -> None:
        self.db = db
        self.files_dir = files_dir

    def account_key(self, login: str) -> str:
        with self.db.session() as session:
            return account_key(session, login)

    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        with self.db.session() as session:
            # The panel's own check: one argon2 verification whether or not the login exists (the
            # answer's timing does not tell which logins exist), and disabled users are refused.
            user = check_login(session, login, password)
            if user is None:
                return None
            scope = admin_scope(session, user)
        if scope is None:
            return None
        return FtpAccount(scope.login, scope.file_roots(self.files_dir), NO_SCOPE if scope.empty else "")
