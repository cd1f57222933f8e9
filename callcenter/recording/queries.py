"""The recordings an admin may find and hear (the Recordings page, recording/http.py): a search limited to
the admin's scope by the unit stored on each recording when it was made, and the MP3 of one of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from callcenter.db.engine import Database
from callcenter.db.models import Recording, User
from callcenter.db.queries import ResultPage, day_conditions, in_thread, paging
from callcenter.recording.files import mp3_path
from callcenter.users.access import require_admin, scope_of, user_label
from callcenter.users.units import AdminScope


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


def recording_conditions(scope: AdminScope, filters: RecordingFilters) -> list[ColumnElement[bool]]:
    conditions = day_conditions(Recording.started_at, filters.day_from, filters.day_to)
    if not scope.top:  # the unit the recording was made in, wherever its agent is now
        conditions.append(Recording.unit_id.in_(sorted(scope.unit_ids)))
    if filters.agent:
        agent = filters.agent
        agents = select(User.id).where(or_(User.extension == agent, User.login == agent,
                                           User.name.icontains(agent, autoescape=True)))
        conditions.append(or_(Recording.user_id.in_(agents), Recording.sip_username == agent))
    if filters.number:
        conditions.append(or_(Recording.caller.contains(filters.number, autoescape=True),
                              Recording.called.contains(filters.number, autoescape=True)))
    if filters.queue:
        conditions.append(Recording.queue == filters.queue)
    return conditions


class RecordingQueries:
    """The recordings in the database; ``files_dir`` holds their MP3s (``Recording.path``). Every method
    takes the id of the logged-in user; anyone but an admin gets ``ActionRefused`` (403)."""

    def __init__(self, db: Database, files_dir: Path) -> None:
        self.db = db
        self.files_dir = files_dir

    async def search_recordings(self, user_id: int, filters: RecordingFilters, page: int,
                                per_page: int) -> ResultPage[RecordingRow]:
        """The recordings the admin may hear that match, newest first."""
        def read(session: Session) -> ResultPage[RecordingRow]:
            conditions = recording_conditions(require_admin(session, user_id), filters)
            total = session.scalar(select(func.count()).select_from(Recording).where(*conditions)) or 0
            pages, offset = paging(page, per_page, total)
            found = session.execute(
                select(Recording, User.name, User.extension).outerjoin(User, User.id == Recording.user_id)
                .where(*conditions).order_by(Recording.started_at.desc(), Recording.id.desc())
                .offset(offset).limit(per_page)).all()
            rows = tuple(
                RecordingRow(rec.id, rec.started_at, user_label(name, extension, rec.sip_username), rec.caller,
                             rec.called, rec.queue or "", float(rec.seconds) if rec.seconds is not None else None,
                             rec.size, rec.status)
                for rec, name, extension in found)
            return ResultPage(rows, page, pages, total)

        return await in_thread(self.db, read)

    async def recording_file(self, user_id: int, recording_id: str) -> tuple[Path, str] | None:
        """(the MP3's path, its file name) of a ready recording in the admin's scope whose file exists,
        else None (the caller answers 404 whether it is missing or out of scope)."""
        def find(session: Session) -> tuple[Path, str] | None:
            scope = scope_of(session, user_id)
            recording = session.get(Recording, recording_id)
            if scope is None or recording is None or not scope.covers(recording.unit_id):
                return None
            if recording.status != "ready" or not recording.path:
                return None
            path = mp3_path(self.files_dir, recording.path)
            return (path, path.name) if path is not None else None

        return await in_thread(self.db, find)
