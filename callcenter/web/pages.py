"""Pages: the template environment every HTML page is drawn with, ``render`` and the pager.

``make_app`` (web/app.py) gives each application one environment (``PAGES``) that finds the shared
templates (web/templates: base.html, refused.html, admin_pager.html) and every template folder a feature
registers with ``add_templates`` when it installs its routes (e.g. callcenter/acd/templates). Folders are
searched in order, the shared one first, so a feature's template names must not repeat another's.

``render(request, template, login, status, **context)`` draws a template with what base.html needs (the
user, the CSRF token, the navigation, the server's clock). ``pager`` builds the links of a paged list
(drawn by admin_pager.html).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from callcenter.web.roles import SUPERVISOR, allowed

if TYPE_CHECKING:
    from callcenter.web.guards import Login

TEMPLATES_DIR = Path(__file__).parent / "templates"

PAGES: web.AppKey[jinja2.Environment] = web.AppKey("pages", jinja2.Environment)


def add_pages(app: web.Application) -> None:
    """The application's template environment, with the shared templates."""
    app[PAGES] = jinja2.Environment(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES_DIR)]),
                                    autoescape=True, undefined=jinja2.StrictUndefined)


def add_templates(app: web.Application, directory: Path) -> None:
    """A feature's own template folder, searched after the ones before it (call it from ``install``)."""
    loader = app[PAGES].loader
    assert isinstance(loader, jinja2.ChoiceLoader)
    loader.loaders = [*loader.loaders, jinja2.FileSystemLoader(directory)]


def render(request: web.Request, template: str, login: Login | None, status: int = 200,
           **context: Any) -> web.Response:
    user = login.user if login else None
    text = request.app[PAGES].get_template(template).render(
        user=user, csrf=login.session.csrf if login else "",
        can_agent=bool(user and user.has("agent")), can_wallboard=bool(user and allowed(user, SUPERVISOR)),
        server_time=int(time.time() * 1000), **context)
    return web.Response(text=text, status=status, content_type="text/html")


# --- the pager -------------------------------------------------------------------------------------------

class Paged(Protocol):
    """One page of a list: page ``page`` of ``pages``, ``total`` rows in all."""

    @property
    def page(self) -> int: ...

    @property
    def pages(self) -> int: ...

    @property
    def total(self) -> int: ...


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    previous: str  # URL of the previous page, "" on the first
    next: str


def pager(path: str, kept: Mapping[str, str], result: Paged) -> Pager:
    """The links to the pages before and after ``result``, keeping the non-empty ``kept`` query fields."""
    def link(page: int) -> str:
        query = {name: value for name, value in kept.items() if value}
        return f"{path}?{urlencode({**query, 'page': page})}"

    return Pager(result.page, result.pages, result.total,
                 link(min(result.page - 1, result.pages)) if result.page > 1 else "",
                 link(result.page + 1) if result.page < result.pages else "")
