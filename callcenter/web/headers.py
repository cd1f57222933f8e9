"""The security headers of every page, API and static file: one response hook (``security_headers``),
installed by ``make_app``.

Static files (/static/) are revalidated on every load and never sniffed. The pages and APIs of the
features get the strict set (``CSP``, no framing, same-origin referrer, no sniffing, no-store): each
feature names its path prefixes with ``protect(app, "/agent", ...)`` when it installs its routes. A prefix
ending in "/" also covers the path without it ("/admin/" covers /admin); others match as prefixes.
"""

from __future__ import annotations

from aiohttp import web

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
STATIC = "/static/"


class Protected:
    """The path prefixes that get the strict headers."""

    def __init__(self) -> None:
        self.prefixes: tuple[str, ...] = ()
        self.exact: frozenset[str] = frozenset()

    def add(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes += prefixes
        self.exact |= {p[:-1] for p in prefixes if p.endswith("/") and len(p) > 1}

    def covers(self, path: str) -> bool:
        return path.startswith(self.prefixes) or path in self.exact


PROTECTED: web.AppKey[Protected] = web.AppKey("protected", Protected)


def add_headers(app: web.Application) -> None:
    app[PROTECTED] = Protected()
    app.on_response_prepare.append(security_headers)


def protect(app: web.Application, *prefixes: str) -> None:
    """The strict headers on every path under these prefixes (a feature's pages and APIs)."""
    app[PROTECTED].add(prefixes)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    path = request.path
    if path.startswith(STATIC):
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
    elif request.app[PROTECTED].covers(path):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
