"""The dialer's admin pages (dialer/http.py: campaigns, list import, report, do-not-call list) on the real
DialerAdmin and a migrated SQLite database: the two-step import with bad rows, duplicates and
do-not-call numbers reported by line, the report and its CSV, adding and removing do-not-call numbers,
and who may see what (top admins only).

Logging in goes through test_web's fake PanelBackend, filled with the database's users."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from callcenter.db.engine import Database
from callcenter.db.models import (
    DialerAttempt,
    DialerContact,
    DialerList,
    DialerListProblem,
    DoNotCall,
    Queue,
    QueueMember,
    User,
)
from callcenter.dialer import http as dialer_http
from callcenter.dialer import store
from callcenter.dialer.http import DIALER
from callcenter.dialer.settings import CampaignSpec
from callcenter.users import units
from callcenter.users.accounts import PanelUser
from callcenter.users.services import add_user
from tests.support.admin import admin_features, install_admin
from tests.support.webapp import build_app
from tests.unit.test_web import FakeBackend, login
from tests.unit.test_web_admin import error_of

Client = TestClient[web.Request, web.Application]

USERS: dict[str, tuple[str, str | None, tuple[str, ...], str | None]] = {
    "root": ("Rita Root", None, ("admin",), None),
    "nadmin": ("Nora North", None, ("admin",), None),
    "2001": ("Alice Agent", "2001", ("agent",), "North"),
}
CAMPAIGNS = {
    "sales": CampaignSpec(name="sales", queue="sales_q", caller_id="+48221000000", region="PL",
                          timezone="Europe/Warsaw", abandon_target=3.0, abandon_windows=("30d", "24h"),
                          amd=True, amd_false_positive_rate=10.0),
    "uk": CampaignSpec(name="uk", queue="sales_q", caller_id="+442079460000", region="GB",
                       abandon_windows=("24h",)),
}
TODAY = date(2030, 3, 2)
LIST_CSV = (
    "phone;Name;Tz;Plan\n"
    "22 123 45 67;Anna;;gold\n"                 # 2: imported (Warsaw, from the number)
    "abc;Bob;;silver\n"                         # 3: not a number
    "+48 22 123 45 67;Anna again;;gold\n"       # 4: duplicate of line 2
    "+48 22 765 43 21;Dee;;\n"                  # 5: on the global do-not-call list
    "+48 22 111 22 33;Eve;Mars/Base;\n"         # 6: unknown time zone
    "+48 22 111 22 34;Fay;;x;y\n"               # 7: five cells
    "\n"
    "+44 20 7946 0018;Gus;Europe/London;gold\n"  # 9: imported
    "601 234 567;Hal;;bronze\n"                 # 10: already a contact of the campaign
)


def password(name: str) -> str:
    return f"{name}-password"


def seed(db: Database) -> None:
    with db.session() as session:
        for login_name, (name, extension, roles, unit) in USERS.items():
            add_user(session, name=name, login=login_name, extension=extension, roles=roles, org_unit=unit,
                     panel_password=password(login_name))
        units.save_unit(session, "North", admins=["nadmin"])
        units.grant_all_units(session, "root", True)
        agent = session.scalar(select(User.id).where(User.login == "2001"))
        assert agent is not None
        queue = Queue(name="sales_q", strategy="longest_idle", ring_timeout=15, wrapup=10, max_wait=300,
                      service_level=20, announce_every=30)
        session.add(queue)
        session.flush()
        session.add(QueueMember(queue_id=queue.id, user_id=agent))
        now = datetime(2030, 2, 1, tzinfo=UTC)
        store.add_dnc(session, ["+48227654321"], "", "import", now)
        store.add_dnc(session, ["+442079460099"], "uk", "import", now)
        store.add_contact(session, "sales", "+48601234567", "Hal", ["Europe/Warsaw"], {})
        day = datetime(2030, 3, 1, 10, tzinfo=UTC)
        session.add_all([
            DialerAttempt(id="a1", campaign="sales", number="+48601234567", mode="predictive", placed_at=day,
                          answered_at=day, human_at=day, connected_at=day.replace(second=1), outcome="human",
                          amd_status="HUMAN", talk_seconds=90),
            DialerAttempt(id="a2", campaign="sales", number="+48601234568", mode="predictive", placed_at=day,
                          answered_at=day, human_at=day, abandoned_at=day.replace(second=2),
                          message_at=day.replace(second=2), outcome="abandoned", amd_status="HUMAN"),
            DialerAttempt(id="a3", campaign="sales", number="+48601234569", mode="predictive", placed_at=day,
                          answered_at=day, outcome="machine", amd_status="MACHINE"),
        ])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dialer-admin")
    db = Database(f"sqlite:///{root / 'cc.db'}")
    db.migrate()
    seed(db)
    db.dispose()
    return root


@dataclass
class World:
    db: Database
    uploads: Path
    client: Client

    async def login(self, name: str) -> str:
        self.client.session.cookie_jar.clear()
        return (await login(self.client, name, password(name))).csrf

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return text

    def count(self, model: Any, *conditions: Any) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


Factory = Callable[[], Awaitable[World]]


@pytest.fixture
async def make_world(template: Path, tmp_path: Path) -> AsyncIterator[Factory]:
    shutil.copy(template / "cc.db", tmp_path / "cc.db")
    db = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    clients: list[Client] = []

    async def make() -> World:
        panel = FakeBackend()
        with db.session() as session:
            panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                           for u in session.scalars(select(User))}
        panel.passwords = {name: password(name) for name in USERS}
        features = admin_features(db, tmp_path / "files", campaigns=CAMPAIGNS)
        client: Client = TestClient(TestServer(install_admin(build_app(panel), features)))
        await client.start_server()
        clients.append(client)
        client.app[DIALER].today = lambda: TODAY
        return World(db, tmp_path / "dialer-uploads", client)

    yield make
    for client in clients:
        await client.close()
    db.dispose()


@pytest.fixture
async def world(make_world: Factory) -> World:
    return await make_world()


def upload(csrf: str, content: bytes, name: str = "spring.csv", **fields: str) -> FormData:
    form = FormData()
    form.add_field("csrf", csrf)
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("file", content, filename=name, content_type="text/csv")
    return form


def token_of(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def selected(html: str, name: str) -> str:
    select_html = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    found = re.search(r'<option value="([^"]*)" selected>', select_html)
    return found.group(1) if found else ""


def problems(html: str) -> list[tuple[int, str, str]]:
    return [(int(line), kind, reason) for line, kind, reason in re.findall(
        r'<tr data-line="(\d+)" data-kind="([^"]+)"><td class="num">\d+</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>',
        html)]


# --- campaigns ---------------------------------------------------------------------------------------

async def test_campaign_list_shows_contacts_lists_and_do_not_call_counts(world: World) -> None:
    await world.login("root")
    html = await world.page("/admin/campaigns")
    assert 'id="nav-campaigns"' in html
    assert re.findall(r'<tr data-campaign="([^"]+)">', html) == ["sales", "uk"]
    sales = html.split('<tr data-campaign="sales">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-status="pending">1</td>' in sales and '<td class="num total">1</td>' in sales
    uk = html.split('<tr data-campaign="uk">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num dnc">1</td>' in uk and "stopped" in uk
    assert '<b id="dnc-global">1</b>' in html
    assert "No campaign &#39;nope&#39; is configured" in await world.page("/admin/campaigns/nope", 404)


async def test_import_reports_every_row_not_taken_with_its_line(world: World) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", allow_redirects=False,
                                       data=upload(csrf, LIST_CSV.encode()))
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert location.startswith("/admin/campaigns/sales/import?token=")
    assert len(list(world.uploads.glob("*.csv"))) == 1
    assert world.count(DialerList) == 0  # nothing imported yet
    html = await world.page(location)
    assert "spring.csv" in html and "4 columns" in html
    assert [selected(html, n) for n in ("number", "contact_name", "timezone")] == ["phone", "Name", "Tz"]
    assert 'value="Plan" checked' in html
    token = token_of(html)
    done = await world.client.post("/admin/campaigns/sales/import", allow_redirects=False, data={
        "csrf": csrf, "token": token, "list_name": "Spring leads", "number": "phone", "contact_name": "Name",
        "timezone": "Tz", "keep": "Plan"})
    assert done.status == 303, await done.text()
    assert re.fullmatch(r"/admin/campaigns/sales/lists/\d+\?imported=1", done.headers["Location"])
    html = await world.page(done.headers["Location"])
    assert ("Imported Spring leads: 2 imported, 3 rejected, 2 duplicates, 1 on the do-not-call list."
            in html.replace("&#39;", "'"))
    assert problems(html.replace("&#39;", "'")) == [
        (3, "rejected", "'abc' is not a phone number"),
        (4, "duplicate", "+48221234567 is already on line 2"),
        (5, "dnc", "+48227654321 is on the do-not-call list"),
        (6, "rejected", "unknown time zone 'Mars/Base'"),
        (7, "rejected", "row has 5 cells, the header has 4"),
        (10, "duplicate", "+48601234567 is already in the list"),
    ]
    assert not list(world.uploads.glob("*.csv")) and not list(world.uploads.glob("*.json"))
    with world.db.session() as session:
        contacts = {c.number: (c.name, c.timezones, c.fields) for c in session.scalars(
            select(DialerContact).where(DialerContact.list_id.is_not(None)))}
        assert session.scalar(select(func.count()).select_from(DialerListProblem)) == 6
    assert contacts == {"+48221234567": ("Anna", "Europe/Warsaw", '{"Plan": "gold"}'),
                        "+442079460018": ("Gus", "Europe/London", '{"Plan": "gold"}')}
    page = await world.page("/admin/campaigns/sales")
    assert re.search(r'<tr data-list="\d+"><td><a href="/admin/campaigns/sales/lists/\d+">Spring leads</a>', page)
    # the same token cannot be imported twice
    again = await world.client.post("/admin/campaigns/sales/import", data={
        "csrf": csrf, "token": token, "number": "phone", "contact_name": "", "timezone": ""})
    assert again.status == 404 and "upload it again" in error_of(await again.text())
    assert world.count(DialerList) == 1


async def test_problems_are_paged_by_line(world: World) -> None:
    world.client.app[DIALER].problems_per_page = 4
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, LIST_CSV.encode()))
    token = token_of(await response.text())
    done = await world.client.post("/admin/campaigns/sales/import", data={
        "csrf": csrf, "token": token, "number": "phone", "contact_name": "Name", "timezone": "Tz"})
    first = await done.text()
    assert [p[0] for p in problems(first)] == [3, 4, 5, 6] and "Page 1 of 2" in first
    path = str(done.url.path)
    second = await world.page(f"{path}?page=2")
    assert [p[0] for p in problems(second)] == [7, 10] and 'id="page-next"' not in second
    assert "Showing 5\N{EN DASH}6." in second


async def test_a_wrong_mapping_keeps_the_file_and_what_was_chosen(world: World) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, LIST_CSV.encode()))
    token = token_of(await response.text())
    cases = [
        ({"number": "", "contact_name": "Name"}, "Number: choose the column that holds the phone numbers"),
        ({"number": "nope"}, "Number: the file has no column &#39;nope&#39;"),
        ({"number": "phone", "contact_name": "phone"}, "Number, name and time zone must be different columns"),
        ({"number": "phone", "keep": "Ghost"}, "Keep: the file has no column &#39;Ghost&#39;"),
        ({"number": "phone", "list_name": "x\x01"}, "List name: control characters are not allowed"),
    ]
    for fields, message in cases:
        bad = await world.client.post("/admin/campaigns/sales/import",
                                      data={"csrf": csrf, "token": token, "contact_name": "", "timezone": "",
                                            **fields})
        html = await bad.text()
        assert bad.status == 400 and error_of(html) == message, fields
        assert token_of(html) == token
    html = await (await world.client.post("/admin/campaigns/sales/import", data={
        "csrf": csrf, "token": token, "number": "Name", "contact_name": "Tz", "timezone": "Tz", "keep": "Plan",
        "list_name": "Typed"})).text()
    # the mapping as chosen is shown again
    assert [selected(html, n) for n in ("number", "contact_name", "timezone")] == ["Name", "Tz", "Tz"]
    assert 'value="Plan" checked' in html and 'value="phone" checked' not in html and 'value="Typed"' in html
    assert world.count(DialerList) == 0 and len(list(world.uploads.glob("*.csv"))) == 1
    ok = await world.client.post("/admin/campaigns/sales/import", allow_redirects=False, data={
        "csrf": csrf, "token": token, "number": "phone", "contact_name": "", "timezone": "Tz"})
    assert ok.status == 303 and world.count(DialerList) == 1


async def test_bad_files_are_refused_with_a_message(world: World) -> None:
    csrf = await world.login("root")
    cases = [
        (b"", "empty.csv: the file is empty: its first line must name the columns (nothing was imported)"),
        ("phone\n22 123 45 67 \xe9\n".encode("latin-1"),
         "latin.csv: the file is not UTF-8 text (byte 20): in Excel, save it as \u201cCSV UTF-8\u201d "
         "(nothing was imported)"),
    ]
    for content, message in cases:
        name = message.split(":", 1)[0]
        response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, content, name))
        assert response.status == 400 and error_of(await response.text()) == message
    no_file = FormData()
    no_file.add_field("csrf", csrf)
    no_file.add_field("file", b"", filename="", content_type="text/csv")
    response = await world.client.post("/admin/campaigns/sales/upload", data=no_file)
    assert response.status == 400 and error_of(await response.text()) == "Choose a CSV file to upload"
    assert not list(world.uploads.glob("*.csv"))
    gone = await world.page("/admin/campaigns/sales/import?token=abc", 404)
    assert "upload it again" in error_of(gone)


async def test_a_file_too_large_comes_back_with_a_message(make_world: Factory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialer_http, "LIST_UPLOAD_MAX", 2048)
    world = await make_world()
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", allow_redirects=False,
                                       data=upload(csrf, b"phone\n" + b"221234567\n" * 400))
    assert response.status == 303 and response.headers["Location"] == "/admin/campaigns/sales?error=too-large"
    html = await world.page("/admin/campaigns/sales?error=too-large", 413)
    assert error_of(html) == "The file is too large: at most 2 KB; split it into smaller files."
    small = await world.client.post("/admin/campaigns/sales/upload", allow_redirects=False,
                                    data=upload(csrf, b"phone\n221234567\n"))
    assert small.status == 303


async def test_an_upload_can_be_discarded_and_is_only_its_uploaders(world: World) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, LIST_CSV.encode()))
    token = token_of(await response.text())
    other = await world.client.get(f"/admin/campaigns/uk/import?token={token}")
    assert other.status == 404  # another campaign's form cannot use it
    discarded = await world.client.post("/admin/campaigns/sales/discard", allow_redirects=False,
                                        data={"csrf": csrf, "token": token})
    assert discarded.status == 303 and discarded.headers["Location"] == "/admin/campaigns/sales?done=discarded"
    assert "nothing was imported" in await world.page("/admin/campaigns/sales?done=discarded")
    assert not list(world.uploads.iterdir())


# --- the report --------------------------------------------------------------------------------------

async def test_report_defaults_to_the_last_week_and_downloads_as_csv(world: World) -> None:
    await world.login("root")
    html = await world.page("/admin/campaigns/sales")
    assert re.findall(r'<tr data-day="([^"]+)">', html) == [f"2030-03-0{d}" for d in (2, 1)] + [
        f"2030-02-{d}" for d in (28, 27, 26, 25, 24)]
    assert 'href="/admin/campaigns/sales/report.csv?from=2030-02-24&amp;to=2030-03-02"' in html
    day = html.split('<tr data-day="2030-03-01">', 1)[1].split("</tr>", 1)[0]
    # 3 attempts, 2 people, 1 abandoned with its message; 24h: (1 + 0.1) / (2 + 0.1)
    assert '<td class="num">3</td>' in day and '<td class="num">1 (1)</td>' in day
    assert '<td class="num over" data-window="24h"' in day and "52.38" in day
    assert '<td class="num over" data-window="30d"' in day and "50.00" in day
    csv_response = await world.client.get("/admin/campaigns/sales/report.csv?from=2030-03-01&to=2030-03-01")
    assert csv_response.status == 200
    assert csv_response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert csv_response.headers["Content-Disposition"] == \
        'attachment; filename="campaign-sales-2030-03-01-2030-03-01.csv"'
    lines = (await csv_response.text()).split("\r\n")
    assert lines[0].startswith("campaign,day,attempts,answered,reached,connects,abandoned,") and lines[2] == ""
    assert lines[1].startswith("sales,2030-03-01,3,3,2,1,1,1,3.00,52.38,1.10,2.10,0.10,yes,50.00,1.00,2.00,yes,")
    for query, message in [("from=2030-03-05&to=2030-03-01", "From is after To"),
                           ("from=2020-01-01&to=2030-01-01", "a report covers at most 366 days"),
                           ("to=March", "To: &#39;March&#39; is not a date; write it as YYYY-MM-DD")]:
        assert error_of(await world.page(f"/admin/campaigns/sales?{query}", 400)) == message
        assert error_of(await world.page(f"/admin/campaigns/sales/report.csv?{query}", 400)) == message


# --- the do-not-call list ----------------------------------------------------------------------------

def dnc_numbers(world: World, campaign: str) -> set[str]:
    with world.db.session() as session:
        return set(session.scalars(select(DoNotCall.number).where(DoNotCall.campaign == campaign)))


async def test_numbers_are_added_and_bad_lines_reported_with_their_number(world: World) -> None:
    csrf = await world.login("root")
    typed = "601 234 567\n\n+48 22 765 43 21\nnot a number\n0048 601 234 999\n12\n"
    response = await world.client.post("/admin/dnc", data={"csrf": csrf, "campaign": "sales", "region": "",
                                                           "numbers": typed})
    html = await response.text()
    assert response.status == 400
    assert error_of(html) == "2 lines were not added (listed below): correct them and add again."
    assert re.findall(r'<li data-line="(\d+)">([^<]*)</li>', html.replace("&#39;", "'")) == [
        ("4", "line 4: 'not a number' is not a phone number"), ("6", "line 6: '12' is not a valid number for PL")]
    assert "3 numbers added, 0 already on the list." in html  # +48227654321 is on the global list, not sales'
    assert f">{typed}</textarea>" in html  # what was typed stays
    assert dnc_numbers(world, "sales") == {"+48601234567", "+48227654321", "+48601234999"}
    with world.db.session() as session:  # the contact of the campaign is closed
        assert session.scalar(select(DialerContact.status).where(DialerContact.number == "+48601234567")) == "dnc"
    again = await world.client.post("/admin/dnc", allow_redirects=False, data={
        "csrf": csrf, "campaign": "sales", "region": "", "numbers": "601 234 567\n"})
    assert again.status == 303 and again.headers["Location"] == "/admin/dnc?added=0&already=1"
    assert "0 numbers added, 1 already on the list." in await world.page(again.headers["Location"])
    # the global list has no region of its own: the campaigns have two
    response = await world.client.post("/admin/dnc", data={"csrf": csrf, "campaign": "", "numbers": "601 234 567"})
    assert response.status == 400
    assert error_of(await response.text()).startswith("Region: give the country")
    response = await world.client.post("/admin/dnc", data={"csrf": csrf, "campaign": "", "region": "XX",
                                                           "numbers": "601 234 567"})
    assert error_of(await response.text()).startswith("Region: unknown region &#39;XX&#39;")
    response = await world.client.post("/admin/dnc", allow_redirects=False, data={
        "csrf": csrf, "campaign": "", "region": "gb", "numbers": "020 7946 0019"})
    assert response.status == 303 and "+442079460019" in dnc_numbers(world, "")
    unknown = await world.client.post("/admin/dnc", data={"csrf": csrf, "campaign": "nope", "numbers": "1"})
    assert unknown.status == 404 and error_of(await unknown.text()) == "No campaign &#39;nope&#39; is configured"


async def test_a_do_not_call_file_is_added_and_numbers_removed_and_found(world: World) -> None:
    csrf = await world.login("root")
    content = b"msisdn,note\n+44 20 7946 0011,x\nnope,y\n020 7946 0012,z\n"
    response = await world.client.post("/admin/dnc/upload", data=upload(csrf, content, "dnc.csv", campaign="uk"))
    html = await response.text()
    assert response.status == 400 and "2 numbers added, 0 already on the list." in html
    assert re.findall(r'<li data-line="(\d+)">', html) == ["3"]
    assert dnc_numbers(world, "uk") == {"+442079460099", "+442079460011", "+442079460012"}
    clean = await world.client.post("/admin/dnc/upload", allow_redirects=False,
                                    data=upload(csrf, b"+44 20 7946 0013\n", "one.txt", campaign="uk"))
    assert clean.status == 303 and clean.headers["Location"] == "/admin/dnc?added=1&already=0"

    found = await world.page("/admin/dnc?campaign=uk&q=0011")
    assert re.findall(r'<tr data-number="([^"]+)" data-list="([^"]*)">', found) == [("+442079460011", "uk")]
    every = await world.page("/admin/dnc")
    assert {n for n, _ in re.findall(r'<tr data-number="([^"]+)" data-list="([^"]*)">', every)} == {
        "+48227654321", "+442079460099", "+442079460011", "+442079460012", "+442079460013"}
    only_global = await world.page("/admin/dnc?campaign=")
    assert re.findall(r'<tr data-number="([^"]+)"', only_global) == ["+48227654321"]

    removed = await world.client.post("/admin/dnc/remove", allow_redirects=False,
                                      data={"csrf": csrf, "campaign": "uk", "number": "+442079460011"})
    assert removed.status == 303
    assert "+442079460011 was removed" in await world.page(removed.headers["Location"])
    assert "+442079460011" not in dnc_numbers(world, "uk")
    missing = await world.client.post("/admin/dnc/remove", data={"csrf": csrf, "campaign": "",
                                                                  "number": "+442079460099"})
    assert missing.status == 400  # on uk's list, not the global one
    assert error_of(await missing.text()) == "+442079460099 is not on the global do-not-call list"


# --- who may see what --------------------------------------------------------------------------------

PAGES = ["/admin/campaigns", "/admin/campaigns/sales", "/admin/campaigns/sales/report.csv",
         "/admin/campaigns/sales/lists/1", "/admin/campaigns/sales/import?token=x", "/admin/dnc"]
POSTS: list[tuple[str, dict[str, str]]] = [
    ("/admin/dnc", {"campaign": "", "region": "PL", "numbers": "601 234 567"}),
    ("/admin/dnc/remove", {"campaign": "", "number": "+48227654321"}),
    ("/admin/campaigns/sales/discard", {"token": "x"}),
    ("/admin/campaigns/sales/import", {"token": "x", "number": "phone"}),
]


async def test_only_top_admins_may_use_the_dialer_pages(world: World) -> None:
    for path in PAGES:
        response = await world.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login?next=/admin"), path
    for who, message in (("2001", "This page is for admins"), ("nadmin", "This page is for top admins")):
        csrf = await world.login(who)
        for path in PAGES:
            assert message in await world.page(path, 403), (who, path)
        for path, data in POSTS:
            assert (await world.client.post(path, data={"csrf": csrf, **data})).status == 403, (who, path)
        response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, LIST_CSV.encode()))
        assert response.status == 403
        response = await world.client.post("/admin/dnc/upload", data=upload(csrf, b"601 234 567\n", campaign=""))
        assert response.status == 403
    assert 'id="nav-campaigns"' not in await world.page("/admin/recordings")  # a unit admin has no link
    assert dnc_numbers(world, "") == {"+48227654321"} and world.count(DialerList) == 0
    assert not world.uploads.exists() or not list(world.uploads.iterdir())


async def test_forms_need_the_csrf_token(world: World) -> None:
    await world.login("root")
    refused = await world.client.post("/admin/dnc", data={"campaign": "", "region": "PL", "numbers": "601 234 567"})
    assert refused.status == 403 and "security token" in await refused.text()
    response = await world.client.post("/admin/campaigns/sales/upload", data=upload("wrong", LIST_CSV.encode()))
    assert response.status == 403
    assert dnc_numbers(world, "") == {"+48227654321"} and not world.uploads.exists()


async def test_dialer_pages_have_the_security_headers_and_no_inline_script(world: World) -> None:
    csrf = await world.login("root")
    response = await world.client.post("/admin/campaigns/sales/upload", data=upload(csrf, LIST_CSV.encode()))
    paths = ["/admin/campaigns", "/admin/campaigns/sales", "/admin/dnc", str(response.url.relative())]
    for path in paths:
        response = await world.client.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
        html = await response.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"<[^>]+\s(style|on[a-z]+)=", html), path
