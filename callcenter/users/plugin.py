"""The users feature: panel accounts and login (users/accounts.py, users/http.py), organisational units
(users/units_http.py), the admin home page, and the demo users a new install starts with."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callcenter.db.engine import Database
from callcenter.features import Core
from callcenter.users import first_start, tokens_http, units_http
from callcenter.users import http as login_http
from callcenter.users import services as users
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import UserAccounts
from callcenter.users.events import UnitsChanged
from callcenter.users.throttle import LoginThrottle
from callcenter.users.tokens import ApiTokens
from callcenter.users.units_admin import UnitsAdmin
from callcenter.web import admin_pages, api


@dataclass
class Users:
    accounts: UserAccounts
    # The passwords this start generated, until the banner has shown them once.
    generated: list[first_start.Account] | None = field(default=None)

    def passwords_to_show(self) -> list[first_start.Account] | None:
        shown, self.generated = self.generated, None
        return shown

    def phones(self, db: Database) -> list[tuple[str, str]]:
        """(extension, name) of every user with a phone, for the banner."""
        with db.session() as session:
            return [(u.extension, u.name) for u in users.list_users(session) if u.extension]


def load(core: Core, throttle: LoginThrottle) -> Users:
    """``throttle``: the count of failed logins the panel shares with FTPS."""
    feature = Users(UserAccounts(core.db))

    def seed() -> None:
        """On an empty database, the admin and the demo users, their passwords in the first-start file."""
        with core.db.session() as session:
            created = users.seed_demo(session)
        if created:
            accounts = [first_start.Account(c.user.login, c.user.extension, c.user.name, c.sip_password,
                                            c.panel_password or "") for c in created]
            first_start.write(core.settings.var_dir, accounts, datetime.now(UTC))
            feature.generated = accounts

    core.prepare(seed)
    core.pages(lambda app: login_http.install(app, feature.accounts, throttle))
    core.pages(lambda app: admin_pages.install(app, AdminScopes(core.db)))
    core.pages(lambda app: units_http.install(app, UnitsAdmin(core.db, core.bus)))
    api_tokens = ApiTokens(core.db)
    core.pages(lambda app: api.install(app, api_tokens))  # the REST API's token check (docs/api.md)
    core.pages(lambda app: tokens_http.install(app, api_tokens))
    core.drain(api_tokens.settle)  # last_used_at writes in flight

    async def units_changed(_event: UnitsChanged) -> None:
        def read() -> None:
            with core.db.session() as session:
                core.directory.reload_units(session)
        await asyncio.to_thread(read)
    core.bus.subscribe(UnitsChanged, units_changed)
    return feature
