"""The users with a phone, by extension: names and ids every feature looks up on the event loop (the
ACD's agents, monitoring's supervisors, the status page), re-read from the database whenever the users
change (start, `callcenter users ...`)."""

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

    def reload(self, session: Session) -> list[SipUser]:
        """Reads the users again (in a worker thread: it queries the database); returns their SIP accounts."""
        sip_users = users.sip_users(session)
        self.ids = {ext: user_id for ext, user_id in session.execute(
            select(User.extension, User.id).where(User.extension.is_not(None))) if ext}
        self.names = {u.extension: u.name for u in sip_users}
        return sip_users

    def is_user(self, extension: str) -> bool:
        return extension in self.names

    def extensions(self) -> set[str]:
        return set(self.names)
