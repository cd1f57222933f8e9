"""Permission groups (MON-2): which users may monitor which extensions.

A group names supervisors and agents (or every agent). A user may monitor an extension when some
group has the user among its supervisors and the extension among its agents. Groups named in the
configuration are written to the database at every start (like queues); others are made in the
admin page or with ``callcenter monitor-groups``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db.models import MonitorGroup, MonitorGroupMember, User
from callcenter.errors import UserError
from callcenter.monitor.settings import MonitorGroupSpec
from callcenter.users.lookup import find_user

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class GroupView:
    name: str
    supervisors: tuple[str, ...]  # extensions (or logins of users without one)
    agents: tuple[str, ...]
    all_agents: bool
    from_config: bool


@dataclass(frozen=True)
class Permissions:
    """Who may monitor whom, in memory: checked on every #44 without a database round trip."""

    # supervisor extension -> extensions they may monitor; None: every extension.
    allowed: Mapping[str, frozenset[str] | None]

    def may_monitor(self, supervisor: str, agent: str) -> bool:
        if supervisor not in self.allowed:
            return False
        targets = self.allowed[supervisor]
        return targets is None or agent in targets

    def targets(self, supervisor: str) -> frozenset[str] | None:
        return self.allowed.get(supervisor, frozenset())


def _key(user: User) -> str:
    return user.extension or user.login


def _users(session: Session, keys: Sequence[str], what: str) -> list[User]:
    return [find_user(session, key, what) for key in keys]


def save_group(session: Session, name: str, supervisors: Sequence[str], agents: Sequence[str],
               *, from_config: bool = False) -> MonitorGroup:
    """Creates or replaces a group. ``agents`` may be ``["*"]``: every extension."""
    if not _NAME.match(name):
        raise UserError(f"group name {name!r}: 1-40 letters, digits, _ or -")
    if not supervisors:
        raise UserError("a group needs at least one supervisor")
    all_agents = "*" in agents
    agent_users = _users(session, [a for a in agents if a != "*"], "agents")
    if not all_agents and not agent_users:
        raise UserError('a group needs agents (extensions, or "*" for every agent)')
    supervisor_users = _users(session, supervisors, "supervisors")
    for user in supervisor_users:
        if not user.extension:
            raise UserError(f"{user.login} has no extension, so no phone to monitor with")
    group = session.scalar(select(MonitorGroup).where(MonitorGroup.name == name))
    if group is None:
        group = MonitorGroup(name=name)
        session.add(group)
    group.all_agents, group.from_config = all_agents, from_config
    # The old members go first: the unit of work would insert the new rows before deleting the old.
    group.members = []
    session.flush()
    group.members = [MonitorGroupMember(user_id=u.id, role="supervisor") for u in dict.fromkeys(supervisor_users)]
    group.members += [MonitorGroupMember(user_id=u.id, role="agent") for u in dict.fromkeys(agent_users)]
    session.flush()
    return group


def remove_group(session: Session, name: str) -> None:
    group = session.scalar(select(MonitorGroup).where(MonitorGroup.name == name))
    if group is None:
        raise UserError(f"no monitoring group {name!r}")
    session.delete(group)
    session.flush()


def list_groups(session: Session) -> list[GroupView]:
    views = []
    for group in session.scalars(select(MonitorGroup).order_by(MonitorGroup.name)):
        rows = session.execute(select(MonitorGroupMember.role, User).join(User, User.id == MonitorGroupMember.user_id)
                               .where(MonitorGroupMember.group_id == group.id)).all()
        views.append(GroupView(group.name, tuple(sorted(_key(u) for role, u in rows if role == "supervisor")),
                               tuple(sorted(_key(u) for role, u in rows if role == "agent")),
                               group.all_agents, group.from_config))
    return views


def sync_groups(session: Session, specs: Mapping[str, MonitorGroupSpec]) -> list[str]:
    """The configured groups into the database; returns problems (an unknown extension) to log."""
    problems = []
    for spec in specs.values():
        known = set(session.scalars(select(User.extension).where(User.extension.in_(
            [*spec.supervisors, *spec.agents]))))
        missing = [e for e in (*spec.supervisors, *spec.agents) if e not in known]
        if missing:
            problems.append(f"monitoring group {spec.name}: no user with extension {', '.join(missing)} (left out)")
        supervisors = [e for e in spec.supervisors if e in known]
        if not supervisors:
            continue
        agents = [e for e in spec.agents if e in known] + (["*"] if spec.all_agents else [])
        try:
            save_group(session, spec.name, supervisors, agents, from_config=True)
        except UserError as exc:
            problems.append(f"monitoring group {spec.name}: {exc}")
    return problems


def load_permissions(session: Session) -> Permissions:
    allowed: dict[str, set[str] | None] = {}
    for view in list_groups(session):
        for supervisor in view.supervisors:
            if view.all_agents:
                allowed[supervisor] = None
            elif allowed.get(supervisor, set()) is not None:
                current = allowed.setdefault(supervisor, set())
                assert current is not None
                current.update(view.agents)
    return Permissions({s: (frozenset(t) if t is not None else None) for s, t in allowed.items()})
