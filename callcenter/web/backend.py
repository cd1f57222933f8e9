"""What the panel needs from the rest of the controller. The web layer knows only these protocols; the
composition root (app.py) hands it the real implementations (``PanelBackend``: callcenter/acd/panel.py,
``AdminBackend``: callcenter/admin/backend.py), unit tests a fake or the real one on SQLite.

Views are plain JSON-able dicts (documented in docs/panel.md); actions raise ``ActionRefused`` with a
message meant for the user (shown in the page, HTTP 400/403/404 by its ``http_status``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PanelUser:
    id: int
    login: str
    name: str
    extension: str | None
    roles: tuple[str, ...]
    session_epoch: int = 0  # a session issued under another epoch has ended (web/sessions.py)

    def has(self, role: str) -> bool:
        return role in self.roles


class ViewFilter(Protocol):
    """The part of the wallboard one supervisor may see; supervisors with the same ``key`` see the same."""

    @property
    def key(self) -> Hashable: ...

    @property
    def apply(self) -> Callable[[dict[str, Any]], dict[str, Any]]: ...


class PanelBackend(Protocol):
    async def authenticate(self, login: str, password: str) -> PanelUser | None:
        """The user when the login and password match, else None (argon2, off the event loop)."""

    async def user(self, user_id: int) -> PanelUser | None:
        """The user behind a session (None when removed or disabled since)."""

    async def account(self, typed: str) -> str:
        """One name per account for the login throttle (a login typed as the extension is the same)."""

    async def end_sessions(self, user_id: int) -> None:
        """Ends every session of the user, everywhere and across restarts (logout)."""

    async def change_password(self, user_id: int, old: str, new: str) -> int:
        """Changes the password and ends every session of the user; returns the new session epoch.
        Raises ActionRefused (403) when ``old`` is wrong, (400) when ``new`` is too weak."""

    def agent_view(self, user_id: int) -> dict[str, Any]:
        """Everything the agent page shows: agent state, call card, wrap-up and pause choices,
        callbacks, transfer targets. Cheap: built from memory."""

    def wallboard(self) -> dict[str, Any]:
        """Per-queue and per-agent figures for the wallboard (docs/wallboard.md: figures and formulas), all
        of them: each viewer is shown them through their ``wallboard_filter``."""

    async def wallboard_filter(self, user_id: int) -> ViewFilter:
        """What of the wallboard this supervisor may see (their units' queues, agents and campaigns), read
        from the database now."""

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """An agent acts on their own state or call (login, ready, pause, wrapup, dial, hold...)."""

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """A supervisor approves or denies a pause, logs an agent out, or monitors a call (``monitor_start``
        {extension, mode}, ``monitor_mode`` {mode}, ``monitor_stop``)."""

    def monitor_view(self, user_id: int) -> dict[str, Any]:
        """The supervisor's own monitoring: ``{"session": null | {"id", "agent", "agent_name", "mode":
        silent|whisper|barge, "state": ringing|active}, "can_monitor": bool}``. Cheap: built from memory;
        every change of it grows ``version``."""

    @property
    def version(self) -> int:
        """Grows on every change the panel could show."""

    async def wait_change(self, version: int, timeout: float) -> int:
        """Returns the current version as soon as it differs from ``version`` (or at ``timeout``)."""


# --- the admin pages (web/admin.py) ------------------------------------------------------------------

@dataclass(frozen=True)
class AdminAccess:
    """What an admin may see: everything (a top admin) or the users of some units."""

    login: str
    top: bool
    units: tuple[str, ...] = ()
    empty: bool = False  # no unit and no grant of every unit: nothing to see (users/units.py NO_SCOPE)


@dataclass(frozen=True)
class RecordingFilters:
    """A recording search; empty strings and None match everything. Days are UTC and inclusive."""

    day_from: date | None = None
    day_to: date | None = None
    agent: str = ""  # an extension or login (exact) or part of a name
    number: str = ""  # part of the caller or the called number
    queue: str = ""  # a queue's name (exact)


@dataclass(frozen=True)
class RecordingRow:
    id: str
    started_at: datetime
    agent: str
    caller: str
    called: str
    queue: str
    seconds: float | None
    size: int | None
    status: str  # recording, ready, failed


@dataclass(frozen=True)
class CdrFilters:
    day_from: date | None = None
    day_to: date | None = None
    number: str = ""  # part of src, dst or clid
    disposition: str = ""  # ANSWERED, BUSY, NO ANSWER, FAILED, CONGESTION
    src_id: str = ""  # exact


@dataclass(frozen=True)
class ResultPage(Generic[T]):
    """One page of a list, newest first: ``rows`` of ``total`` matches, page ``page`` of ``pages``."""

    rows: tuple[T, ...]
    page: int
    pages: int
    total: int
    header: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetentionRow:
    category: str
    label: str
    days: int | None  # None: kept for ever


@dataclass(frozen=True)
class PurgeRow:
    at: datetime
    category: str
    kind: str  # expired, delete_all
    cutoff: datetime | None
    rows: int
    files: int
    by: str


@dataclass(frozen=True)
class RetentionView:
    policies: tuple[RetentionRow, ...]
    purges: tuple[PurgeRow, ...]


@dataclass(frozen=True)
class UnitRow:
    name: str
    members: tuple[str, ...]  # logins
    admins: tuple[str, ...]  # logins


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


class AdminBackend(Protocol):
    """What the admin pages need. Every method takes the id of the logged-in user and limits what it
    reads to that admin's scope; retention, units and monitoring groups are for top admins only. Refusals raise
    ``ActionRefused`` (403), bad input ``CallcenterError`` subclasses with a message for the user (400)."""

    async def scope(self, user_id: int) -> AdminAccess | None:
        """The admin's scope; None when the user is gone or not an admin."""

    async def search_recordings(self, user_id: int, filters: RecordingFilters, page: int,
                                per_page: int) -> ResultPage[RecordingRow]:
        """The recordings the admin may hear that match, newest first."""

    async def recording_file(self, user_id: int, recording_id: str) -> tuple[Path, str] | None:
        """(the MP3's path, its file name) of a ready recording in the admin's scope whose file exists,
        else None (the caller answers 404 whether it is missing or out of scope)."""

    async def list_cdr(self, user_id: int, filters: CdrFilters, page: int,
                       per_page: int) -> ResultPage[tuple[str, ...]]:
        """CDR rows as CSV fields (``header`` holds the column names), newest first."""

    def cdr_csv_chunks(self, user_id: int, filters: CdrFilters) -> AsyncGenerator[bytes, None]:
        """The CSV file (UTF-8, CRLF) of every matching CDR, oldest first, in chunks read in a thread."""

    async def retention(self, user_id: int) -> RetentionView:
        """The retention policy of every category and the latest purges."""

    async def set_retention(self, user_id: int, days: Mapping[str, str]) -> None:
        """Sets the categories' policies from the form's text ("forever" or 1-999 days); all or none."""

    async def delete_all(self, user_id: int, category: str, confirmation: str) -> PurgeRow:
        """Deletes every record (and file) of a category; refused unless ``confirmation`` is "YES"."""

    async def units(self, user_id: int) -> list[UnitRow]:
        """The organisational units by name."""

    async def save_unit(self, user_id: int, name: str, members: Sequence[str], admins: Sequence[str]) -> None:
        """Creates or updates a unit; ``members`` (logins or extensions) and ``admins`` replace the lists."""

    async def unit_managers(self, user_id: int, name: str) -> list[str]:
        """The logins of the admins and supervisors who manage a unit."""

    async def remove_unit(self, user_id: int, name: str, *, managers_to: str | None = None,
                          drop_managers: bool = False) -> None:
        """Removes a unit (its users stay, without a unit). A unit with managers needs ``managers_to`` (they
        manage that unit instead) or ``drop_managers`` (they lose it), else UserError."""

    async def monitor_groups(self, user_id: int) -> list[MonitorGroupRow]:
        """The monitoring permission groups by name (top admins)."""

    async def save_monitor_group(self, user_id: int, name: str, supervisors: Sequence[str],
                                 agents: Sequence[str]) -> None:
        """Creates or replaces a group: ``supervisors`` and ``agents`` are extensions or logins, ``agents``
        may be ``["*"]`` (every agent). The running controller reloads the permissions afterwards."""

    async def remove_monitor_group(self, user_id: int, name: str) -> None:
        """Removes a group (top admins)."""

    async def monitor_log(self, user_id: int, page: int, per_page: int) -> ResultPage[MonitorLogRow]:
        """The monitoring sessions the admin may see (a unit admin: those whose supervisor or agent is in
        one of their units), newest first."""
