"""What every admin page shares: the scope check (``admin_page``: the admin role, then the admin's scope,
which fails closed), the page frame (``page``), the admin menu (``add_menu_entry``), the form helpers (``text``,
``day``, ``days``, ``page_number``...), and how times, lengths and sizes are written.

Each feature serves its own admin pages (recording/http.py, cdr/http.py, retention/http.py,
users/units_http.py, monitor/http.py, dialer/http.py) and installs them after ``install`` here, adding its
entry to the admin menu (``add_menu_entry``). docs/panel.md describes the pages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web
from multidict import MultiMapping

from callcenter.errors import ActionRefused, CallcenterError
from callcenter.users.access import AdminAccess
from callcenter.users.units import NO_SCOPE
from callcenter.web.guards import WEB, Handler, Login, guard, redirect
from callcenter.web.headers import protect
from callcenter.web.pages import PAGES, render

PER_PAGE = 50
MAX_PAGE = 1_000_000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NOT_ADMIN = "This page is for admins"
NOT_TOP = "This page is for top admins: its settings apply to every unit"


class Scopes(Protocol):
    """The admin's scope, read for every request (users/access.py ``AdminScopes``)."""

    async def scope(self, user_id: int) -> AdminAccess | None:
        """None when the user is gone or not an admin."""


@dataclass(frozen=True)
class MenuEntry:
    """A link of the admin menu: ``top`` ones are shown to top admins only; ``order`` places it."""

    path: str
    label: str
    id: str
    top: bool = False
    order: int = 100


class AdminPages:
    """What the admin pages of one application share (``ADMIN``)."""

    def __init__(self, scopes: Scopes) -> None:
        self.scopes = scopes
        self.per_page = PER_PAGE
        self.menu: list[MenuEntry] = []


ADMIN: web.AppKey[AdminPages] = web.AppKey("admin", AdminPages)

AdminHandler = Callable[[web.Request, Login, AdminAccess], Awaitable[web.StreamResponse]]


class BadInput(Exception):
    """A search field or form value the page refuses, with the message shown above the form (400)."""


def install(app: web.Application, scopes: Scopes) -> None:
    """The admin home (/admin) and what the features' admin pages share; needs the panel's sessions."""
    if WEB not in app:
        raise ValueError("the admin pages need the panel: give make_app the accounts")
    app[ADMIN] = AdminPages(scopes)
    protect(app, "/admin/")  # every admin page, audio and CSV (and /admin itself)
    # base.html draws the menu on every page (an admin's links also on the agent page and the wallboard).
    app[PAGES].globals["admin_menu"] = app[ADMIN].menu
    app.router.add_get("/admin", admin_home)


def add_menu_entry(app: web.Application, entry: MenuEntry) -> None:
    """A feature's page in the admin menu; ``install`` must have run (it raises KeyError otherwise)."""
    menu = app[ADMIN].menu
    menu.append(entry)
    menu.sort(key=lambda e: e.order)


# A string key, as before: web.RequestKey needs aiohttp 3.14 (pyproject asks for 3.9).
ACCESS = "admin_access"


def admin_page(*, top: bool = False, body_limit: Callable[[], int] | None = None,
               too_large: Callable[[web.Request], str] | None = None) -> Callable[[AdminHandler], Handler]:
    """The panel's ``guard`` with the admin role and scope checked before any body is read, then CSRF on
    POST; ``top`` pages are for top admins only. Anyone else gets the panel's 403 page. ``body_limit()``:
    an upload may be that large (only once the user is known to be allowed); a larger one goes back to
    the page ``too_large(request)`` names with a message (``?error=too-large``)."""

    async def authorise(request: web.Request, login: Login) -> web.StreamResponse | None:
        access = await request.app[ADMIN].scopes.scope(login.user.id) if login.user.has("admin") else None
        if access is None or (top and not access.top):
            return render(request, "refused.html", login, 403, message=NOT_TOP if access else NOT_ADMIN)
        if access.empty:  # fail closed, and say why
            return render(request, "refused.html", login, 403, message=NO_SCOPE)
        request[ACCESS] = access
        return None

    def wrap(handler: AdminHandler) -> Handler:
        @guard(authorise=authorise, body_limit=body_limit)
        @functools.wraps(handler)
        async def checked(request: web.Request, login: Login) -> web.StreamResponse:
            return await handler(request, login, request[ACCESS])

        if body_limit is None or too_large is None:
            return checked

        @functools.wraps(checked)
        async def upload(request: web.Request) -> web.StreamResponse:
            try:
                return await checked(request)
            except web.HTTPRequestEntityTooLarge:
                return redirect(f"{too_large(request)}?error=too-large")

        return upload

    return wrap


def page(request: web.Request, login: Login, access: AdminAccess, template: str, status: int = 200,
         **context: Any) -> web.Response:
    """An admin page: base.html adds the top admins' menu entries when ``admin_top``."""
    return render(request, template, login, status, admin_top=access.top, **context)


def refusal(error: CallcenterError) -> tuple[int, str]:
    """(status, message) of a refusal from a feature's service."""
    message = error.message if isinstance(error, ActionRefused) else str(error)
    return error.http_status, message


@admin_page()
async def admin_home(request: web.Request, login: Login, access: AdminAccess) -> web.StreamResponse:
    """The first page of the admin menu this admin may open."""
    menu = [entry for entry in request.app[ADMIN].menu if access.top or not entry.top]
    if not menu:
        return render(request, "refused.html", login, 404, message="No admin page is installed")
    return redirect(menu[0].path)


# --- input -------------------------------------------------------------------------------------------

def text(values: Mapping[str, str], name: str, label: str, longest: int) -> str:
    found = values.get(name, "").strip()
    if len(found) > longest:
        raise BadInput(f"{label}: at most {longest} characters")
    if CONTROL.search(found):
        raise BadInput(f"{label}: control characters are not allowed")
    return found


def day(values: Mapping[str, str], name: str, label: str) -> date | None:
    typed = text(values, name, label, 10)
    if not typed:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", typed):
            raise ValueError(typed)
        found = date.fromisoformat(typed)
    except ValueError:
        raise BadInput(f"{label}: {typed!r} is not a date; write it as YYYY-MM-DD") from None
    if not 1970 <= found.year <= 2999:
        raise BadInput(f"{label}: a date between 1970 and 2999, please")
    return found


def days(values: Mapping[str, str]) -> tuple[date | None, date | None]:
    """The From and To fields (UTC days, inclusive)."""
    day_from, day_to = day(values, "from", "From"), day(values, "to", "To")
    if day_from and day_to and day_from > day_to:
        raise BadInput("From is after To")
    return day_from, day_to


def page_number(values: Mapping[str, str]) -> int:
    typed = values.get("page", "").strip() or "1"
    if not typed.isascii() or not typed.isdigit() or not 1 <= int(typed) <= MAX_PAGE:
        raise BadInput(f"page must be a whole number from 1 to {MAX_PAGE}")
    return int(typed)


def kept(values: Mapping[str, str], fields: tuple[tuple[str, str, int], ...]) -> dict[str, str]:
    """The search fields as typed (shown again in the form), cut to a sane length."""
    return {name: values.get(name, "")[:longest + 20] for name, _, longest in fields}


def query(values: MultiMapping[str]) -> dict[str, str]:
    return {name: values.get(name, "") for name in values}


def names(typed: str) -> list[str]:
    """The names of a list field (commas, spaces or line breaks between them)."""
    return [part for part in re.split(r"[,\s]+", typed) if part]


# --- how values are written ----------------------------------------------------------------------------

def utc_text(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def length_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def content_disposition(name: str) -> str:
    """``attachment`` with the file name: plain ASCII as is, anything else also RFC 5987-encoded."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "recording.mp3"
    if plain == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
