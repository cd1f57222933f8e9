"""What the admin pages need from the rest of the controller. The web layer knows only this protocol; the
composition root (app.py) hands it the real implementation (``AdminBackend``: callcenter/admin/backend.py),
unit tests a fake or the real one on SQLite. (The panel's ``PanelBackend`` is acd/http.py's now, its user
``PanelUser`` users/accounts.py's.)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


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
