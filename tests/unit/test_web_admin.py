"""The admin pages (recording/, cdr/, retention/ and users/ http.py on web/admin_pages.py) on the real
services and a migrated SQLite database: what a top
admin and a unit admin see of recordings and CDRs, the audio (Range) and CSV downloads, retention
settings and "delete all", organisational units, refusals, bad input and the agent's recording buttons.

Logging in goes through test_web's fake PanelBackend, filled with the database's users."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.cdr import queries as cdr_queries
from callcenter.cdr.http import CDRS
from callcenter.cdr.queries import CdrFilters, CdrQueries
from callcenter.db.engine import Database
from callcenter.db.models import Call, Cdr, CdrUser, PurgeLog, Recording, User
from callcenter.users import units
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import PanelUser
from callcenter.users.events import UnitsChanged
from callcenter.users.services import add_user
from callcenter.users.units_http import UNITS
from callcenter.web import admin_pages
from callcenter.web.admin_pages import ADMIN
from callcenter.web.app import make_app
from tests.support.admin import admin_features, install_admin
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, healthy, login, status

Client = TestClient[web.Request, web.Application]

# login -> (name, extension, roles, unit)
USERS: dict[str, tuple[str, str | None, tuple[str, ...], str | None]] = {
    "root": ("Rita Root", None, ("admin",), None),
    "nadmin": ("Nora North", None, ("admin",), None),
    "sadmin": ("Sam South", None, ("admin",), None),
    "2001": ("Alice Agent", "2001", ("agent",), "North"),
    "2002": ("Bob Agent", "2002", ("agent",), "South"),
    "boss": ("Bea Boss", None, ("supervisor",), None),
}
AUDIO = bytes(range(256)) * 40

NAME_RULE = "1-100 characters, no &#39;/&#39;, no control characters, not &#39;.&#39; or &#39;..&#39;"


def at(day: int, hour: int) -> datetime:
    return datetime(2030, 1, day, hour, tzinfo=UTC)


def password(login_name: str) -> str:
    return f"{login_name}-password"


def seed(db: Database, files: Path) -> None:
    with db.session() as session:
        for login_name, (name, extension, roles, unit) in USERS.items():
            add_user(session, name=name, login=login_name, extension=extension, roles=roles, org_unit=unit,
                     panel_password=password(login_name))
        units.save_unit(session, "North", admins=["nadmin"])
        units.grant_all_units(session, "root", True)
        ids = {u.login: u.id for u in session.scalars(select(User))}
        unit_of = {u.id: u.org_unit_id for u in session.scalars(select(User))}
        north, south = (units.list_units(session)[i].id for i in (0, 1))
        recordings = [
            ("rec-n1", ids["2001"], north, "+4930111", "2001", "sales", at(1, 9), "ready", 65.4),
            ("rec-s1", ids["2002"], south, "+4940222", "2002", "support", at(2, 10), "ready", 3725),
            ("rec-n2", ids["2001"], None, "+4930333", "2001", None, at(3, 11), "recording", None),
            ("rec-x", None, north, "+4950444", "2009", "sales", at(4, 12), "ready", 5),
        ]
        for rid, user_id, unit_id, caller, called, queue, started, state, seconds in recordings:
            path = f"Recordings/{started:%Y-%m-%d}/{rid}.mp3" if state == "ready" else ""
            session.add(Recording(id=rid, linkedid=f"l-{rid}", channel_id=f"c-{rid}", user_id=user_id,
                                  unit_id=unit_id, queue=queue, sip_username="2009" if user_id is None else "",
                                  caller=caller, called=called, started_at=started, seconds=seconds,
                                  size=len(AUDIO) if state == "ready" else None, path=path, status=state))
            if path and rid != "rec-x":  # rec-x's file is missing
                (files / path).parent.mkdir(parents=True, exist_ok=True)
                (files / path).write_bytes(AUDIO)
        cdrs = [
            (1, at(1, 9), "+4930111", "", "2001", "ANSWERED", ["2001"]),
            (2, at(2, 10), "+4940222", "", "2002", "BUSY", ["2002"]),
            (3, at(3, 11), "2001", '"Alice, A." <2001>', "+4930999", "NO ANSWER", ["2001", "2002"]),
            (4, at(4, 12), "+4950000", "", "600", "FAILED", []),
        ]
        for cdr_id, calldate, src, clid, dst, disposition, users in cdrs:
            call = Call(linkedid=f"link-{cdr_id}", started_at=calldate, state="done")
            session.add(call)
            session.flush()
            session.add(Cdr(id=cdr_id, call_id=call.id, linkedid=call.linkedid, calldate=calldate,
                            src_id=f"trunk{cdr_id % 2}", src=src, clid=clid, dst=dst, duration=30, billsec=20,
                            disposition=disposition, destination="local", rate=Decimal("0.012"),
                            charge=Decimal("0.004") if cdr_id == 1 else None, t_cause="16"))
            session.flush()
            session.add_all(CdrUser(cdr_id=cdr_id, user_id=ids[u], unit_id=unit_of[ids[u]]) for u in users)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated and seeded database (and files directory) per module; each test gets a copy."""
    root = tmp_path_factory.mktemp("admin-template")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    (root / "files").mkdir()
    seed(db, root / "files")
    db.dispose()
    return root


@dataclass
class World:
    db: Database
    files: Path
    backend: FakeBackend
    client: Client

    def ids(self) -> dict[str, int]:
        with self.db.session() as session:
            return {u.login: u.id for u in session.scalars(select(User))}

    async def login(self, login_name: str) -> str:
        """Logs in (dropping any earlier session) and answers the CSRF token."""
        self.client.session.cookie_jar.clear()
        return (await login(self.client, login_name, password(login_name))).csrf

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return text


@pytest.fixture
async def world(template: Path, tmp_path: Path) -> AsyncIterator[World]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    shutil.copytree(template / "files", tmp_path / "files")
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    panel = FakeBackend()
    with db.session() as session:
        panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                       for u in session.scalars(select(User))}
    panel.passwords = {name: password(name) for name in USERS}
    app = install_admin(build_app(panel), admin_features(db, tmp_path / "files"))
    async with TestClient(TestServer(app)) as client:
        yield World(db, tmp_path / "files", panel, client)
    db.dispose()


def row_ids(html: str, attribute: str = "data-id") -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', html)


def cdr_ids(html: str) -> list[str]:
    body = html.split('<table id="cdr"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>(\d+)</td>", body)


def error_of(html: str) -> str:
    found = re.search(r'<p class="error" id="admin-error" role="alert">([^<]*)</p>', html)
    assert found, html
    return found.group(1)


# --- recordings --------------------------------------------------------------------------------------

async def test_top_admin_sees_every_recording_newest_first_and_can_filter(world: World) -> None:
    await world.login("root")
    html = await world.page("/admin/recordings")
    assert row_ids(html) == ["rec-x", "rec-n2", "rec-s1", "rec-n1"]
    assert 'id="nav-retention"' in html and 'id="nav-units"' in html
    # only ready rows get a player and a download link
    assert html.count('<audio controls preload="none"') == 3
    assert 'src="/admin/recordings/rec-n1/audio"' in html and 'href="/admin/recordings/rec-n1/audio?download=1"' in html
    assert "<td>Alice Agent (2001)</td>" in html and "<td>2009</td>" in html  # no user: the SIP name
    assert '<td class="num">1:02:05</td>' in html and '<td class="num">10 KB</td>' in html
    searches = {
        "agent=2001": ["rec-n2", "rec-n1"], "agent=bob": ["rec-s1"], "agent=2009": ["rec-x"],
        "number=4930": ["rec-n2", "rec-n1"], "number=2002": ["rec-s1"], "queue=sales": ["rec-x", "rec-n1"],
        "from=2030-01-02&to=2030-01-03": ["rec-n2", "rec-s1"], "from=2030-01-04": ["rec-x"],
        "to=2030-01-01": ["rec-n1"], "number=%25": [], "agent=2001&queue=support": [],
    }
    for query, expected in searches.items():
        assert row_ids(await world.page(f"/admin/recordings?{query}")) == expected, query


async def test_unit_admin_sees_and_hears_only_their_units_recordings(world: World) -> None:
    await world.login("nadmin")
    html = await world.page("/admin/recordings")
    # By the unit stored on the recording only: rec-n2 has none (only top admins see it), rec-x has North.
    assert row_ids(html) == ["rec-x", "rec-n1"]
    assert 'id="nav-recordings"' in html and 'id="nav-retention"' not in html
    assert (await world.client.get("/admin/recordings/rec-n1/audio")).status == 200
    for other in ("rec-s1", "rec-x", "rec-n2", "nope", "..%2F..%2Fcc.db", "a" * 80):
        response = await world.client.get(f"/admin/recordings/{other}/audio")
        assert response.status == 404, other  # another unit's, missing file, not ready, unknown: all alike
        assert "No such recording" in await response.text()


async def test_audio_answers_range_requests_and_downloads_as_attachment(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    await world.login("root")
    caplog.set_level(logging.INFO, logger="callcenter.recording.http")
    whole = await world.client.get("/admin/recordings/rec-s1/audio")
    assert whole.status == 200 and await whole.read() == AUDIO
    assert whole.headers["Content-Type"] == "audio/mpeg" and whole.headers["Accept-Ranges"] == "bytes"
    assert "Content-Disposition" not in whole.headers
    part = await world.client.get("/admin/recordings/rec-s1/audio", headers={"Range": "bytes=100-199"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    assert await part.read() == AUDIO[100:200]
    tail = await world.client.get("/admin/recordings/rec-s1/audio", headers={"Range": "bytes=-16"})
    assert tail.status == 206 and await tail.read() == AUDIO[-16:]
    download = await world.client.get("/admin/recordings/rec-s1/audio?download=1")
    assert download.status == 200 and await download.read() == AUDIO
    assert download.headers["Content-Disposition"] == 'attachment; filename="rec-s1.mp3"'
    assert download.headers["Content-Security-Policy"].startswith("default-src 'self'")
    logged = [r.getMessage() for r in caplog.records if r.name == "callcenter.recording.http"]
    assert "admin: root downloads recording rec-s1" in logged
    assert logged.count("admin: root plays recording rec-s1") == 1  # seeking (Range) is not logged again


async def test_pages_of_fifty_with_links_that_keep_the_search(world: World) -> None:
    world.client.app[ADMIN].per_page = 2
    await world.login("root")
    first = await world.page("/admin/recordings?queue=&number=%2B49")
    assert row_ids(first) == ["rec-x", "rec-n2"] and "Page 1 of 2" in first
    assert 'href="/admin/recordings?number=%2B49&amp;page=2"' in first
    second = await world.page("/admin/recordings?number=%2B49&page=2")
    assert row_ids(second) == ["rec-s1", "rec-n1"] and 'id="page-next"' not in second
    assert row_ids(await world.page("/admin/recordings?page=9")) == []


@pytest.mark.parametrize(("query", "message"), [
    ("from=2030-13-01", "From: '2030-13-01' is not a date; write it as YYYY-MM-DD"),
    ("to=1.1.2030", "To: '1.1.2030' is not a date; write it as YYYY-MM-DD"),
    ("from=0001-01-01", "From: a date between 1970 and 2999, please"),
    ("from=2030-01-05&to=2030-01-01", "From is after To"),
    ("page=0", "page must be a whole number from 1 to 1000000"),
    ("page=x", "page must be a whole number from 1 to 1000000"),
    ("page=%C2%B2", "page must be a whole number from 1 to 1000000"),
    ("agent=" + "a" * 101, "Agent: at most 100 characters"),
    ("number=1%002", "Number: control characters are not allowed"),
])
async def test_bad_searches_are_400_with_a_message(world: World, query: str, message: str) -> None:
    await world.login("root")
    for path in ("/admin/recordings", "/admin/cdr", "/admin/cdr.csv"):
        if (path != "/admin/recordings" and query.startswith("agent")) or (path.endswith(".csv") and "page" in query):
            continue  # the CDR search has no agent, its CSV no pages
        html = await world.page(f"{path}?{query}", 400)
        assert error_of(html) == message.replace("'", "&#39;"), path


async def test_agents_and_supervisors_are_refused_and_strangers_sent_to_login(world: World) -> None:
    paths = ["/admin", "/admin/recordings", "/admin/recordings/rec-n1/audio", "/admin/cdr", "/admin/cdr.csv",
             "/admin/retention", "/admin/units"]
    for path in paths:
        response = await world.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login?next=/admin")
    for who in ("2001", "boss"):
        csrf = await world.login(who)
        nav = await world.page("/password")
        assert 'id="nav-recordings"' not in nav
        for path in paths:
            html = await world.page(path, 403)
            assert '<h1 id="refused">This page is for admins</h1>' in html, (who, path)
        response = await world.client.post("/admin/retention/delete",
                                           data={"csrf": csrf, "category": "cdrs", "confirm": "YES"})
        assert response.status == 403
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Cdr)) == 4


async def test_admin_pages_have_the_panels_security_headers_and_no_inline_script(world: World) -> None:
    await world.login("root")
    for path in ("/admin/recordings", "/admin/cdr", "/admin/retention", "/admin/units"):
        response = await world.client.get(path)
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
        assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
        html = await response.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"<[^>]+\s(style|on[a-z]+)=", html), path
    assert (await world.client.get("/admin", allow_redirects=False)).headers["Location"] == "/admin/recordings"


# --- CDRs --------------------------------------------------------------------------------------------

async def test_cdr_list_is_newest_first_filtered_and_scoped(world: World) -> None:
    await world.login("root")
    html = await world.page("/admin/cdr")
    assert cdr_ids(html) == ["4", "3", "2", "1"]
    assert "<th>calldate</th>" in html and "<td>2030-01-01 09:00:00</td>" in html and "<td>0.0040</td>" in html
    assert 'href="/admin/cdr.csv"' in html
    searches = {"number=Alice": ["3"], "number=4930": ["3", "1"], "disposition=BUSY": ["2"],
                "disposition=NO+ANSWER": ["3"], "src_id=trunk1": ["3", "1"],
                "from=2030-01-02&to=2030-01-03": ["3", "2"]}
    for query, expected in searches.items():
        page = await world.page(f"/admin/cdr?{query}")
        assert cdr_ids(page) == expected, query
    assert 'href="/admin/cdr.csv?from=2030-01-02&amp;to=2030-01-03"' in page
    assert error_of(await world.page("/admin/cdr?disposition=LOST", 400)).startswith("Disposition: one of ANSWERED")
    await world.login("nadmin")
    assert cdr_ids(await world.page("/admin/cdr")) == ["3", "1"]  # calls a North user took part in


CSV_HEADER = "id,calldate,src_id,src,clid,dst,dst_name,duration,billsec,disposition,destination,rate,charge,t_cause\r\n"
CSV_1 = "1,2030-01-01 09:00:00,trunk1,+4930111,,2001,,30,20,ANSWERED,local,0.0120,0.0040,16\r\n"
CSV_3 = '3,2030-01-03 11:00:00,trunk1,2001,"""Alice, A."" <2001>",+4930999,,30,20,NO ANSWER,local,0.0120,,16\r\n'


async def test_cdr_csv_download_is_the_exact_file_of_the_search(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdr_queries, "CSV_CHUNK_ROWS", 1)  # one chunk per row: the streaming path
    await world.login("nadmin")
    response = await world.client.get("/admin/cdr.csv?from=2030-01-01&to=2030-01-31")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="cdr-2030-01-01-2030-01-31.csv"'
    assert await response.read() == (CSV_HEADER + CSV_1 + CSV_3).encode()
    await world.login("root")
    response = await world.client.get("/admin/cdr.csv?disposition=FAILED")
    assert response.headers["Content-Disposition"] == 'attachment; filename="cdr-all-all.csv"'
    assert await response.text() == (CSV_HEADER +
                                     "4,2030-01-04 12:00:00,trunk0,+4950000,,600,,30,20,FAILED,local,0.0120,,16\r\n")
    empty = await world.client.get("/admin/cdr.csv?from=2031-01-01")
    assert await empty.text() == CSV_HEADER
    head = await world.client.head("/admin/cdr.csv")
    assert head.status == 200 and head.headers["Content-Type"] == "text/csv; charset=utf-8"


async def test_cdr_csv_closes_its_query_when_the_reader_stops(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdr_queries, "CSV_CHUNK_ROWS", 1)
    service = world.client.app[CDRS]
    assert isinstance(service, CdrQueries)
    chunks = service.cdr_csv_chunks(world.ids()["root"], CdrFilters())
    assert (await anext(chunks)).startswith(b"id,calldate")
    assert world.db.engine.pool.checkedout() == 1
    await chunks.aclose()
    assert world.db.engine.pool.checkedout() == 0


# --- retention ---------------------------------------------------------------------------------------

def retention_value(html: str, category: str) -> str:
    found = re.search(rf'name="days-{category}" list="retention-choices"\s+maxlength="10" size="10" value="([^"]*)"',
                      html)
    assert found, html
    return found.group(1)


async def test_retention_is_saved_and_bad_values_are_refused_keeping_what_was_typed(world: World) -> None:
    csrf = await world.login("root")
    html = await world.page("/admin/retention")
    assert retention_value(html, "cdrs") == "forever" and "Nothing purged yet." in html
    saved = await world.client.post("/admin/retention", allow_redirects=False,
                                    data={"csrf": csrf, "days-cdrs": "30", "days-recordings": " 365 ",
                                          "days-work_logs": "forever"})
    assert saved.status == 303 and saved.headers["Location"] == "/admin/retention?saved=1"
    html = await world.page("/admin/retention?saved=1")
    assert "The retention settings were saved." in html
    assert [retention_value(html, c) for c in ("cdrs", "recordings", "work_logs")] == ["30", "365", "forever"]
    for bad in ("0", "1000", "x", "-5", "3.5"):
        response = await world.client.post("/admin/retention", data={"csrf": csrf, "days-cdrs": "7",
                                                                     "days-recordings": bad})
        html = await response.text()
        assert response.status == 400, bad
        shown = bad if bad in ("0", "1000") else f"&#39;{bad}&#39;"
        assert error_of(html) == f"Call recordings: keep {shown}: give a number of days from 1 to 999, or forever"
        assert retention_value(html, "recordings") == bad and retention_value(html, "cdrs") == "7"
    html = await world.page("/admin/retention")
    assert [retention_value(html, c) for c in ("cdrs", "recordings")] == ["30", "365"]  # all or nothing
    kept = await world.client.post("/admin/retention", allow_redirects=False, data={"csrf": csrf, "days-cdrs": "7"})
    assert kept.status == 303  # a category missing from the form stays as it was
    html = await world.page("/admin/retention")
    assert [retention_value(html, c) for c in ("cdrs", "recordings")] == ["7", "365"]
    refused = await world.client.post("/admin/retention", data={"days-cdrs": "1"})
    assert refused.status == 403 and "security token" in await refused.text()


async def test_delete_all_needs_yes_typed_exactly(world: World) -> None:
    csrf = await world.login("root")

    def count() -> int:
        with world.db.session() as session:
            return session.scalar(select(func.count()).select_from(Cdr)) or 0

    for typed in ("yes", "", "YES please"):
        response = await world.client.post("/admin/retention/delete",
                                           data={"csrf": csrf, "category": "cdrs", "confirm": typed})
        assert response.status == 400
        assert error_of(await response.text()).startswith("type YES to delete every Call detail records (CDRs); "
                                                          "nothing was deleted")
    assert count() == 4
    unknown = await world.client.post("/admin/retention/delete", data={"csrf": csrf, "category": "x", "confirm": "YES"})
    assert unknown.status == 400 and error_of(await unknown.text()).startswith("Nothing was deleted: unknown")
    response = await world.client.post("/admin/retention/delete",
                                       data={"csrf": csrf, "category": "cdrs", "confirm": "YES"})
    html = await response.text()
    assert response.status == 200 and "Deleted all cdrs: 4 records and 0 files." in html
    assert count() == 0
    assert re.search(r"<td>cdrs</td><td>delete all</td><td class=\"nowrap\">\u2013</td>\s*"
                     r"<td class=\"num\">4</td><td class=\"num\">0</td><td>root</td>", html)
    with world.db.session() as session:
        logged = [(p.category, p.kind, p.by) for p in session.scalars(select(PurgeLog))]
        assert logged == [("cdrs", "delete_all", "root")]


async def test_retention_and_units_are_for_top_admins_only(world: World) -> None:
    csrf = await world.login("nadmin")
    for path in ("/admin/retention", "/admin/units"):
        assert "This page is for top admins" in await world.page(path, 403)
    for path, data in [("/admin/retention", {"days-cdrs": "1"}), ("/admin/retention/delete", {"category": "cdrs",
                       "confirm": "YES"}), ("/admin/units", {"name": "North", "admins": ""}),
                       ("/admin/units/remove", {"name": "North"})]:
        assert (await world.client.post(path, data={"csrf": csrf, **data})).status == 403, path
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Cdr)) == 4
        assert [u.name for u in units.list_units(session)] == ["North", "South"]


# --- units -------------------------------------------------------------------------------------------

def unit_rows(html: str) -> dict[str, tuple[str, str]]:
    """Unit -> (members, admins) as listed; an empty list (shown as a dash) is ""."""
    return {name: (members.strip("\N{EN DASH}"), admins.strip("\N{EN DASH}")) for name, members, admins in re.findall(
        r'<tr data-unit="([^"]+)">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>', html)}


async def test_units_are_listed_created_edited_and_removed(world: World) -> None:
    heard: list[UnitsChanged] = []
    world.client.app[UNITS].bus.subscribe(UnitsChanged, heard.append)  # open wallboards rescope on it
    csrf = await world.login("root")
    html = await world.page("/admin/units")
    assert unit_rows(html) == {"North": ("2001", "nadmin"), "South": ("2002", "")}
    created = await world.client.post("/admin/units", allow_redirects=False,
                                      data={"csrf": csrf, "name": "East", "members": "2001, 2002", "admins": ""})
    assert created.status == 303 and created.headers["Location"] == "/admin/units?done=saved"
    html = await world.page("/admin/units?done=saved")
    assert "The unit was saved." in html
    assert unit_rows(html) == {"East": ("2001, 2002", ""), "North": ("", "nadmin"), "South": ("", "")}
    edit = await world.page("/admin/units?edit=East")
    assert 'value="East"' in edit and ">2001, 2002</textarea>" in edit and "Edit the unit" in edit
    moved = await world.client.post("/admin/units", allow_redirects=False,
                                    data={"csrf": csrf, "name": "North", "members": "2001", "admins": "nadmin"})
    assert moved.status == 303
    removed = await world.client.post("/admin/units/remove", allow_redirects=False,
                                      data={"csrf": csrf, "name": "South"})
    assert removed.status == 303 and removed.headers["Location"] == "/admin/units?done=removed"
    assert unit_rows(await world.page("/admin/units")) == {"East": ("2002", ""), "North": ("2001", "nadmin")}
    assert heard == [UnitsChanged("East"), UnitsChanged("North"), UnitsChanged("South")]


async def test_units_refuse_the_last_top_admin_and_unknown_users(world: World) -> None:
    csrf = await world.login("root")
    cases = {
        ("North", "", "2001"): "2001 needs the admin or supervisor role before managing a unit",
        ("East", "2001 ghost", ""): "no user with extension or login &#39;ghost&#39;",
        ("a/b", "", ""): "unit name &#39;a/b&#39;: " + NAME_RULE,
        ("   ", "", ""): "unit name &#39;&#39;: " + NAME_RULE,
        ("East", "1," * 2600, ""): "Members: at most 5000 characters",
    }
    for (name, members, admins), message in cases.items():
        response = await world.client.post("/admin/units", data={"csrf": csrf, "name": name, "members": members,
                                                                 "admins": admins})
        html = await response.text()
        assert response.status == 400, name
        assert error_of(html) == message
        assert f'value="{name}"' in html  # the form keeps what was typed
    gone = await world.client.post("/admin/units/remove", data={"csrf": csrf, "name": "Nowhere"})
    assert gone.status == 400 and error_of(await gone.text()) == "no organisational unit &#39;Nowhere&#39;"
    with world.db.session() as session:
        assert [(u.name, u.members, u.admins) for u in units.list_units(session)] == [
            ("North", ("2001",), ("nadmin",)), ("South", ("2002",), ())]


async def test_records_stay_with_the_unit_they_were_made_in_when_a_user_moves(world: World) -> None:
    """Before: the panel scoped by the user's current unit, so moving 2001 to South carried their
    recordings and CDRs to South's admins and away from North's."""
    with world.db.session() as session:
        units.save_unit(session, "South", members=["2001", "2002"], admins=["sadmin"])
    await world.login("nadmin")
    assert row_ids(await world.page("/admin/recordings")) == ["rec-x", "rec-n1"]
    assert cdr_ids(await world.page("/admin/cdr")) == ["3", "1"]
    assert (await world.client.get("/admin/recordings/rec-n1/audio")).status == 200
    await world.client.post("/logout", data={"csrf": await world.login("nadmin")})
    await world.login("sadmin")
    assert row_ids(await world.page("/admin/recordings")) == ["rec-s1"]
    assert cdr_ids(await world.page("/admin/cdr")) == ["3", "2"]  # 3: 2002 was in South at the time
    assert (await world.client.get("/admin/recordings/rec-n1/audio")).status == 404


async def test_an_admin_whose_units_are_gone_sees_nothing_and_is_told_why(world: World) -> None:
    """Before: removing nadmin's only unit made them a top admin, who sees every record."""
    csrf = await world.login("root")
    asked = await world.client.post("/admin/units/remove", data={"csrf": csrf, "name": "North"})
    html = await asked.text()
    assert asked.status == 200 and 'id="unit-remove-form"' in html and "nadmin" in html
    with world.db.session() as session:  # nothing removed until the root says what becomes of nadmin
        assert [u.name for u in units.list_units(session)] == ["North", "South"]
    done = await world.client.post("/admin/units/remove", data={"csrf": csrf, "name": "North", "managers": "drop"},
                                   allow_redirects=False)
    assert done.status == 303
    await world.client.post("/logout", data={"csrf": csrf})
    await world.login("nadmin")
    for path in ("/admin/recordings", "/admin/cdr", "/admin/cdr.csv", "/admin/monitoring/log",
                 "/admin/recordings/rec-n1/audio"):
        response = await world.client.get(path)
        assert response.status == 403, path
        assert "You manage no organisational unit" in await response.text()


async def test_removing_a_unit_can_move_its_managers_to_another(world: World) -> None:
    csrf = await world.login("root")
    moved = await world.client.post("/admin/units/remove", data={
        "csrf": csrf, "name": "North", "managers": "move", "managers_to": "South"}, allow_redirects=False)
    assert moved.status == 303
    with world.db.session() as session:
        assert [(u.name, u.admins) for u in units.list_units(session)] == [("South", ("nadmin",))]


# --- wiring and the agent page -----------------------------------------------------------------------

def test_admin_pages_need_the_panel(tmp_path: Path) -> None:
    scopes = AdminScopes(Database(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ValueError, match="need the panel"):
        admin_pages.install(make_app(healthy, status), scopes)


async def test_agent_page_has_the_recording_indicator_and_buttons(world: World) -> None:
    await world.login("2001")
    html = await world.page("/agent")
    for element in ('id="call-rec"', 'id="btn-record-pause"', 'id="btn-record-resume"'):
        assert element in html
    script = (Path(__file__).parents[2] / "callcenter/web/static/agent.js").read_text()
    assert '"record_pause"' in script and '"record_resume"' in script
