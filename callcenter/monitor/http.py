"""The monitoring admin pages: the permission groups (top admins; who may monitor whom, MON-2) and the
log of monitoring sessions in the admin's scope (queries: monitor/admin.py). docs/monitoring.md
describes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from aiohttp import web

from callcenter.errors import CallcenterError
from callcenter.monitor.admin import MonitorAdmin, MonitorGroupRow, MonitorLogRow
from callcenter.users.access import AdminAccess
from callcenter.web.admin_pages import (
    ADMIN,
    CONTROL,
    BadInput,
    MenuEntry,
    add_menu_entry,
    admin_page,
    names,
    page,
    page_number,
    query,
    refusal,
    utc_text,
)
from callcenter.web.guards import Login, redirect
from callcenter.web.pages import add_templates, pager

GROUP_NAME_MAX = 40
GROUP_LIST_MAX = 5000  # characters of the supervisors or the agents field
MODE_LABELS = {"silent": "listen", "whisper": "whisper", "barge": "three-way"}

MONITORING: web.AppKey[MonitorAdmin] = web.AppKey("monitoring", MonitorAdmin)
routes = web.RouteTableDef()


def install(app: web.Application, admin: MonitorAdmin) -> None:
    """/admin/monitoring and /admin/monitoring/log; the shared admin pages (web/admin_pages.py) first."""
    app[MONITORING] = admin
    add_templates(app, Path(__file__).parent / "templates")
    add_menu_entry(app, MenuEntry("/admin/monitoring/log", "Monitoring log", "nav-monitor-log", order=30))
    add_menu_entry(app, MenuEntry("/admin/monitoring", "Monitoring", "nav-monitoring", top=True, order=60))
    app.router.add_routes(routes)


# --- permission groups -----------------------------------------------------------------------------------

def _group_form(group: MonitorGroupRow | None) -> dict[str, str]:
    if group is None:
        return {"name": "", "supervisors": "", "agents": ""}
    return {"name": group.name, "supervisors": ", ".join(group.supervisors),
            "agents": "*" if group.all_agents else ", ".join(group.agents)}


async def _monitoring_page(request: web.Request, login: Login, access: AdminAccess, *, status: int = 200,
                           error: str = "", done: str = "", form: Mapping[str, str] | None = None) -> web.Response:
    groups = await request.app[MONITORING].monitor_groups(login.user.id)
    if form is None:
        form = _group_form(next((g for g in groups if g.name == request.query.get("edit")), None))
    return page(request, login, access, "admin_monitoring.html", status, error=error, done=done, groups=groups,
                form=form, editing=any(g.name == form["name"] for g in groups))


@routes.get("/admin/monitoring")
@admin_page(top=True)
async def monitoring_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    done = {"saved": "The group was saved; it applies at once.",
            "removed": "The group was removed; it applies at once."}.get(request.query.get("done", ""), "")
    return await _monitoring_page(request, login, access, done=done)


def monitor_group_input(form: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """(name, supervisors, agents) from the form; raises BadInput with the message shown above it."""
    name = form["name"].strip()
    if len(name) > GROUP_NAME_MAX:
        raise BadInput(f"Name: at most {GROUP_NAME_MAX} characters (letters, digits, _ or -)")
    if CONTROL.search(name):
        raise BadInput("Name: control characters are not allowed")
    for field, label in (("supervisors", "Supervisors"), ("agents", "Agents")):
        if len(form[field]) > GROUP_LIST_MAX:
            raise BadInput(f"{label}: at most {GROUP_LIST_MAX} characters")
        if CONTROL.search(re.sub(r"[\r\n\t]", " ", form[field])):  # a textarea's line breaks separate names
            raise BadInput(f"{label}: control characters are not allowed")
    supervisors, agents = names(form["supervisors"]), names(form["agents"])
    if "*" in supervisors:
        raise BadInput('Supervisors: extensions or logins; "*" is only for the agents')
    if "*" in agents and len(agents) > 1:
        raise BadInput('Agents: either "*" (every agent) or a list of extensions, not both')
    return name, supervisors, agents


def _cut(form: Mapping[str, str]) -> dict[str, str]:
    """The form as typed, to show again (cut to a sane length)."""
    return {name: value[:GROUP_LIST_MAX + 20] for name, value in form.items()}


@routes.post("/admin/monitoring")
@admin_page(top=True)
async def monitor_group_save(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in ("name", "supervisors", "agents")}
    try:
        name, supervisors, agents = monitor_group_input(form)
        await request.app[MONITORING].save_monitor_group(login.user.id, name, supervisors, agents)
    except BadInput as error:
        return await _monitoring_page(request, login, access, status=400, error=str(error), form=_cut(form))
    except CallcenterError as error:
        status, message = refusal(error)
        return await _monitoring_page(request, login, access, status=status, error=message, form=_cut(form))
    return redirect("/admin/monitoring?done=saved")


@routes.post("/admin/monitoring/remove")
@admin_page(top=True)
async def monitor_group_remove(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    posted = await request.post()
    name = str(posted.get("name", ""))[:200]
    try:
        await request.app[MONITORING].remove_monitor_group(login.user.id, name)
    except CallcenterError as error:
        status, message = refusal(error)
        return await _monitoring_page(request, login, access, status=status, error=message)
    return redirect("/admin/monitoring?done=removed")


# --- the log -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonitorLogLine:
    id: str
    started: str
    supervisor: str
    agent: str
    customer: str
    origin: str
    modes: str  # "listen 10:00:01, whisper 10:00:09"
    ended: str
    outcome: str

    @classmethod
    def of(cls, row: MonitorLogRow) -> MonitorLogLine:
        modes = ", ".join(f"{MODE_LABELS.get(mode, mode)} {at.astimezone(UTC):%H:%M:%S}" for mode, at in row.modes)
        return cls(row.id, utc_text(row.started_at), row.supervisor, row.agent, row.customer, row.origin, modes,
                   utc_text(row.ended_at), row.outcome.replace("_", " "))


@routes.get("/admin/monitoring/log")
@admin_page()
async def monitor_log_page(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The monitoring sessions (audit) in the admin's scope, newest first."""
    values = query(request.query)
    try:
        number = page_number(values)
        result = await request.app[MONITORING].monitor_log(login.user.id, number, request.app[ADMIN].per_page)
    except BadInput as error:
        return page(request, login, access, "admin_monitor_log.html", 400, error=str(error), lines=None,
                    pager=None)
    except CallcenterError as error:
        status, message = refusal(error)
        return page(request, login, access, "admin_monitor_log.html", status, error=message, lines=None,
                    pager=None)
    return page(request, login, access, "admin_monitor_log.html", error="",
                lines=[MonitorLogLine.of(row) for row in result.rows],
                pager=pager("/admin/monitoring/log", {}, result))
