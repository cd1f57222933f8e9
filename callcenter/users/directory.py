"""The users with a phone, by extension: names and ids every feature looks up on the event loop (the
ACD's agents, monitoring's supervisors, the status page), re-read from the database whenever the users
change (start, `callcenter users ...`), their units also when the units page changes one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.asterisk.render import SipUser
from callcenter.db.models import User
from callcenter.users import services as users


class UserDirectory:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # extension -> name
        self.ids: dict[str, int] = {}  # extension -> user id
        self.units: dict[int, int | None] = {}  # user id -> organisational unit (also after a units change)

    def reload(self, session: Session) -> list[SipUser]:
        """Reads the users again (in a worker thread: it queries the database); returns their SIP accounts."""
        sip_users = users.sip_users(session)
        self.ids = {ext: user_id for ext, user_id in session.execute(
            select(User.extension, User.id).where(User.extension.is_not(None))) if ext}
        self.names = {u.extension: u.name for u in sip_users}
        self.reload_units(session)
        return sip_users

    def reload_units(self, session: Session) -> None:
        self.units = {user_id: unit for user_id, unit in session.execute(select(User.id, User.org_unit_id))}

    def unit_of(self, user_id: int) -> int | None:
        return self.units.get(user_id)

    def is_user(self, extension: str) -> bool:
        return extension in self.names

    def extensions(self) -> set[str]:
        return set(self.names)
