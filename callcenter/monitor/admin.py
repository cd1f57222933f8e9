"""The monitoring pages' side of the database (monitor/http.py): the permission groups (MON-2, groups.py),
which only top admins see or change, and the log of monitoring sessions, limited to an admin's scope by
the units the supervisor and the agent were in when the session started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, aliased

from callcenter.db.engine import Database
from callcenter.db.models import MonitorEvent, MonitorGroup, MonitorSession, User
from callcenter.db.queries import ResultPage, in_thread, paging
from callcenter.monitor import groups as monitor_groups
from callcenter.users.access import require_admin, user_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorGroupRow:
    """A permission group (MON-2): its supervisors may monitor its agents (or every agent)."""

    name: str
    supervisors: tuple[str, ...]  # extensions (logins of users without one)
    agents: tuple[str, ...]
    all_agents: bool
    from_config: bool  # written from the configuration at every start


@dataclass(frozen=True)
class MonitorLogRow:
    """One monitoring session of the audit, with the modes it went through."""

    id: str
    started_at: datetime
    supervisor: str  # "Name (extension)", or the extension when the user is gone
    agent: str
    customer: str
    origin: str  # feature, panel
    modes: tuple[tuple[str, datetime], ...]  # (silent|whisper|barge, when), in order
    ended_at: datetime | None
    outcome: str


class MonitorAdmin:
    """Groups and the log on the database. ``on_groups_changed`` runs (in a worker thread, after the
    commit: it reads the database) when a group was saved or removed, so the running controller reloads who
    may monitor whom. Every method takes the id of the logged-in user; refusals raise ``ActionRefused``
    (403), bad input ``UserError`` (400)."""

    def __init__(self, db: Database, *, on_groups_changed: Callable[[], None] | None = None) -> None:
        self.db = db
        self._on_groups_changed = on_groups_changed

    async def monitor_groups(self, user_id: int) -> list[MonitorGroupRow]:
        """The monitoring permission groups by name (top admins)."""
        def read(session: Session) -> list[MonitorGroupRow]:
            require_admin(session, user_id, top=True)
            return [MonitorGroupRow(g.name, g.supervisors, g.agents, g.all_agents, g.from_config)
                    for g in monitor_groups.list_groups(session)]

        return await in_thread(self.db, read)

    async def _groups_changed(self) -> None:
        if self._on_groups_changed is None:
            return
        try:
            await asyncio.to_thread(self._on_groups_changed)
        except Exception:  # the change is saved; the next start (or change) loads it
            log.exception("admin: reloading the monitoring permissions failed")

    async def save_monitor_group(self, user_id: int, name: str, supervisors: Sequence[str],
                                 agents: Sequence[str]) -> None:
        """Creates or replaces a group: ``supervisors`` and ``agents`` are extensions or logins, ``agents``
        may be ``["*"]`` (every agent). The running controller reloads the permissions afterwards."""
        def save(session: Session) -> None:
            login = require_admin(session, user_id, top=True).login
            name_ = name.strip()
            group = session.scalar(select(MonitorGroup).where(MonitorGroup.name == name_))
            # A group from the configuration stays marked as such: the next start writes it again.
            from_config = group is not None and group.from_config
            monitor_groups.save_group(session, name_, list(supervisors), list(agents), from_config=from_config)
            log.info("admin: %s saved monitoring group %s: supervisors %s, agents %s", login, name_,
                     ",".join(supervisors) or "-", ",".join(agents) or "-")

        await in_thread(self.db, save)
        await self._groups_changed()

    async def remove_monitor_group(self, user_id: int, name: str) -> None:
        """Removes a group (top admins)."""
        def remove(session: Session) -> None:
            login = require_admin(session, user_id, top=True).login
            monitor_groups.remove_group(session, name)
            log.info("admin: %s removed monitoring group %s", login, name)

        await in_thread(self.db, remove)
        await self._groups_changed()

    async def monitor_log(self, user_id: int, page: int, per_page: int) -> ResultPage[MonitorLogRow]:
        """The monitoring sessions the admin may see (a unit admin: those whose supervisor or agent is in
        one of their units), newest first."""
        def read(session: Session) -> ResultPage[MonitorLogRow]:
            scope = require_admin(session, user_id)
            conditions: list[ColumnElement[bool]] = []
            if not scope.top:  # both users' units when the session started
                in_scope = sorted(scope.unit_ids)
                conditions.append(or_(MonitorSession.supervisor_unit_id.in_(in_scope),
                                      MonitorSession.agent_unit_id.in_(in_scope)))
            total = session.scalar(select(func.count()).select_from(MonitorSession).where(*conditions)) or 0
            pages, offset = paging(page, per_page, total)
            supervisor, agent = aliased(User), aliased(User)
            found = session.execute(
                select(MonitorSession, supervisor.name, agent.name)
                .outerjoin(supervisor, supervisor.id == MonitorSession.supervisor_id)
                .outerjoin(agent, agent.id == MonitorSession.agent_id)
                .where(*conditions).order_by(MonitorSession.started_at.desc(), MonitorSession.id.desc())
                .offset(offset).limit(per_page)).all()
            modes: dict[str, list[tuple[str, datetime]]] = {}
            ids = [row[0].id for row in found]
            if ids:
                for event in session.scalars(select(MonitorEvent).where(MonitorEvent.session_id.in_(ids))
                                             .order_by(MonitorEvent.at, MonitorEvent.id)):
                    modes.setdefault(event.session_id, []).append((event.mode, event.at))
            rows = tuple(
                MonitorLogRow(ms.id, ms.started_at, user_label(supervisor_name, ms.supervisor, ms.supervisor),
                              user_label(agent_name, ms.agent, ms.agent), ms.customer, ms.origin,
                              tuple(modes.get(ms.id, ())), ms.ended_at, ms.outcome)
                for ms, supervisor_name, agent_name in found)
            return ResultPage(rows, page, pages, total)

        return await in_thread(self.db, read)
