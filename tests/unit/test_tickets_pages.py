"""The ticket pages (callcenter/tickets/http.py, report_http.py) on aiohttp's test client with the panel's
sessions (set up as tests/unit/test_customers.py does): a ticket from a call and a call attached, the
ticket's forms, click-to-call through the bus, the polled state, recordings, CSRF, roles and unit scopes,
escaping of hostile text; and the report's figures on a small hand-made data set (tickets/report.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd.events import PlaceCall
from callcenter.bus import Bus
from callcenter.db.engine import Database
from callcenter.db.models import AcdCall as AcdCallRow
from callcenter.db.models import Recording, User
from callcenter.errors import ActionRefused
from callcenter.tickets import http as tickets_http
from callcenter.tickets import report_http
from callcenter.tickets.actions import TicketError
from callcenter.tickets.models import CLOSED, INBOUND, INTEGRATION, MISSED, OPEN, OUTBOUND, Ticket, TicketEntry
from callcenter.tickets.report import ticket_report
from callcenter.users.access import AdminScopes
from callcenter.users.accounts import PanelUser
from callcenter.web import admin_pages
from tests.support.webapp import build_app
from tests.unit.test_tickets_actions import STORE, T0, USERS, call, db, template, uid  # noqa: F401  (fixtures)
from tests.unit.test_web import FakeBackend, login

Client = TestClient[web.Request, web.Application]
HOSTILE = "<script>alert(1)</script>"


@dataclass
class Dialled:
    calls: list[PlaceCall] = field(default_factory=list)
    refuse: str = ""

    async def place(self, request: PlaceCall) -> str:
        if self.refuse:
            raise ActionRefused(self.refuse, 409)
        self.calls.append(request)
        return "rec-call"


@dataclass
class World:
    db: Database
    client: Client
    files: Path
    dialled: Dialled

    async def login(self, key: str) -> str:
        self.client.session.cookie_jar.clear()
        return (await login(self.client, key, f"{key}-password")).csrf

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return text

    async def post(self, path: str, data: dict[str, str], status: int = 303) -> str:
        response = await self.client.post(path, data=data, allow_redirects=False)
        text = await response.text()
        assert response.status == status, text
        return response.headers.get("Location", "") if status == 303 else text


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:  # noqa: F811
    panel = FakeBackend()
    with db.session() as session:
        panel.users = {u.id: PanelUser(u.id, u.login, u.name, u.extension, tuple(u.role_list))
                       for u in session.scalars(select(User))}
    panel.passwords = {key: f"{key}-password" for key in USERS}
    bus, dialled = Bus(), Dialled()
    bus.serve(PlaceCall, dialled.place)
    files = tmp_path / "files"
    files.mkdir()
    app = build_app(panel)
    admin_pages.install(app, AdminScopes(db))
    tickets_http.install(app, tickets_http.TicketPages(db, STORE, bus, files))
    report_http.install(app)
    async with TestClient(TestServer(app)) as client:
        yield World(db, client, files, dialled)


def ticket_of(location: str) -> int:
    found = re.fullmatch(r"/tickets/(\d+)\?\w+=1", location)
    assert found, location
    return int(found.group(1))


async def test_an_agent_makes_a_ticket_from_a_call_and_works_on_it(world: World) -> None:
    with world.db.session() as s:
        call(s, "c1", "2001", number=HOSTILE)
        call(s, "c2", "2001", number="030 1234567", ended=True)
    csrf = await world.login("2001")
    html = await world.page("/tickets/new?call=c1")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and HOSTILE not in html
    assert await world.post("/tickets/new", {"call": "c1", "subject": "x"}, 403)  # no CSRF token
    refused = await world.post("/tickets/new", {"csrf": csrf, "call": "c1", "subject": " "}, 400)
    assert 'id="error-subject"' in refused and "Subject is required" in refused
    first = ticket_of(await world.post("/tickets/new", {"csrf": csrf, "call": "c1", "subject": HOSTILE,
                                                        "summary": "<b>said</b>"}))
    html = await world.page(f"/tickets/{first}?created=1")
    assert HOSTILE not in html and "<b>said</b>" not in html and "&lt;b&gt;said&lt;/b&gt;" in html
    assert 'id="call-in-progress"' in html and 'data-waiting="true"' in html and "/static/tickets.js" in html
    # The call of a known number, ended: attached to the first ticket from the create page's list.
    second = ticket_of(await world.post("/tickets/new", {"csrf": csrf, "call": "c2", "subject": "Router"}))
    assert "Ticket created" in await world.page(f"/tickets/{second}?created=1")
    assert 'id="call-on-ticket"' in await world.page("/tickets/new?call=c2")
    with world.db.session() as s:
        call(s, "c3", "2001", number="030 1234567")
    html = await world.page("/tickets/new?call=c3")
    assert f'id="btn-attach-{second}"' in html and 'id="link-customer"' in html
    assert ticket_of(await world.post(f"/tickets/{second}/attach-call", {"csrf": csrf, "call": "c3"})) == second
    await world.post(f"/tickets/{second}/reply", {"csrf": csrf, "body": "We will send a new one"})
    await world.post(f"/tickets/{second}/note", {"csrf": csrf, "body": "Internal"})
    await world.post(f"/tickets/{second}/status", {"csrf": csrf, "status": CLOSED})
    await world.post(f"/tickets/{second}/subject", {"csrf": csrf, "subject": "Router replaced"})
    empty = await world.post(f"/tickets/{second}/reply", {"csrf": csrf, "body": ""}, 400)
    assert 'id="error-reply"' in empty
    bad = await world.post(f"/tickets/{second}/status", {"csrf": csrf, "status": "gone"}, 400)
    assert "Status is one of" in bad
    html = await world.page(f"/tickets/{second}")
    kinds = re.findall(r'data-kind="(\w+)"', html)
    assert kinds == ["call", "call", "reply", "note", "status", "subject"]
    assert 'id="ticket-status">closed<' in html and "Router replaced" in html
    listed = await world.page("/tickets?status=closed")
    assert f'data-ticket="{second}"' in listed and f'data-ticket="{first}"' not in listed
    assert 'id="result-count">1 ticket<' in listed


async def test_click_to_call_asks_the_acd_and_the_agent_saves_the_call_summary(world: World) -> None:
    with world.db.session() as s:
        call(s, "c4", "2001", ended=True)
        me = uid(s, "2001")
    csrf = await world.login("2001")
    ticket_id = ticket_of(await world.post("/tickets/new", {"csrf": csrf, "call": "c4", "subject": "Call me"}))
    location = await world.post(f"/tickets/{ticket_id}/call", {"csrf": csrf})
    assert location == f"/tickets/{ticket_id}?calling=1&call=rec-call"
    assert world.dialled.calls == [PlaceCall(me, "+49301234567", ticket_id)]
    html = await world.page(location)  # the ACD has not written the call's record yet: still placing
    assert "Calling" in html and 'id="call-summary-form"' in html and 'data-call="rec-call"' in html
    assert 'data-waiting="true"' in html
    with world.db.session() as s:
        call(s, "rec-call", "2001", direction="outbound")
    assert ticket_of(await world.post(f"/tickets/{ticket_id}/attach-call", {
        "csrf": csrf, "call": "rec-call", "summary": "Customer will pay on Monday"})) == ticket_id
    html = await world.page(location)
    assert 'id="call-summary-form"' not in html and "Customer will pay on Monday" in html
    assert 'data-call="in_progress"' in html
    live = await (await world.client.get(f"/tickets/{ticket_id}/state?call=rec-call")).json()
    assert live["waiting"] is True
    with world.db.session() as s:
        row = s.get(AcdCallRow, "rec-call")
        assert row is not None
        row.ended_at = T0 + timedelta(minutes=2)
        entry = s.scalar(select(TicketEntry).where(TicketEntry.call_id == "rec-call"))
        assert entry is not None
        entry.in_progress = False  # what the rules do at the end of the leg
    over = await (await world.client.get(f"/tickets/{ticket_id}/state?call=rec-call")).json()
    assert over["waiting"] is False and over["stamp"] != live["stamp"]
    world.dialled.refuse = "Your phone is busy"
    html = await world.post(f"/tickets/{ticket_id}/call", {"csrf": csrf}, 409)
    assert 'id="error-call"' in html and "Your phone is busy" in html
    await world.post(f"/tickets/{ticket_id}/call", {}, 403)  # no CSRF token
    assert len(world.dialled.calls) == 1


async def test_the_state_route_and_the_recording_of_a_call_on_the_ticket(world: World) -> None:
    with world.db.session() as s:
        call(s, "c5", "2001", ended=True)
        s.add(Recording(id="rec-5", linkedid="l5", channel_id="ch5", acd_call_id="c5", user_id=uid(s, "2001"),
                        started_at=T0, status="ready", path="Recordings/rec-5.mp3"))
        s.add(Recording(id="rec-x", linkedid="lx", channel_id="chx", acd_call_id="other", started_at=T0,
                        status="ready", path="Recordings/rec-x.mp3"))
    (world.files / "Recordings").mkdir()
    (world.files / "Recordings" / "rec-5.mp3").write_bytes(b"ID3 audio")
    (world.files / "Recordings" / "rec-x.mp3").write_bytes(b"ID3 other")
    csrf = await world.login("2001")
    ticket_id = ticket_of(await world.post("/tickets/new", {"csrf": csrf, "call": "c5", "subject": "Rec"}))
    html = await world.page(f"/tickets/{ticket_id}")
    assert f'src="/tickets/{ticket_id}/recordings/rec-5"' in html and 'data-waiting="false"' in html
    audio = await world.client.get(f"/tickets/{ticket_id}/recordings/rec-5")
    assert audio.status == 200 and await audio.read() == b"ID3 audio"
    await world.page(f"/tickets/{ticket_id}/recordings/rec-x", 404)  # not a call of this ticket
    state = await world.client.get(f"/tickets/{ticket_id}/state")
    body = await state.json()
    assert state.status == 200 and body["waiting"] is False and len(body["stamp"]) == 16
    await world.login("2002")  # South
    await world.page(f"/tickets/{ticket_id}/recordings/rec-5", 404)
    assert (await world.client.get(f"/tickets/{ticket_id}/state")).status == 404


async def test_roles_units_and_fail_closed(world: World) -> None:
    with world.db.session() as s:
        call(s, "c6", "2001")
    csrf = await world.login("2001")
    ticket_id = ticket_of(await world.post("/tickets/new", {"csrf": csrf, "call": "c6", "subject": "North"}))
    await world.page("/tickets/report", 403)  # agents have no report
    csrf = await world.login("2002")
    await world.page(f"/tickets/{ticket_id}", 404)
    await world.post(f"/tickets/{ticket_id}/note", {"csrf": csrf, "body": "x"}, 404)
    await world.page("/tickets/new?call=c6", 404)  # not their call
    assert f'data-ticket="{ticket_id}"' not in await world.page("/tickets")
    await world.login("2009")
    assert "no organisational unit" in await world.page("/tickets", 403)
    await world.login("lost")
    assert "no grant of every unit" in await world.page("/tickets", 403)
    await world.login("nadmin")
    html = await world.page("/tickets")
    assert f'data-ticket="{ticket_id}"' in html and 'id="nav-tickets"' in html
    response = await world.client.get("/tickets", allow_redirects=False)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_the_list_shows_a_red_handset_for_a_missed_call_and_green_once_called_back(world: World) -> None:
    with world.db.session() as s:
        agent = uid(s, "2001")
        red = STORE.new_ticket(s, subject="Missed call from +4930111", origin=MISSED, number="+4930111", at=T0,
                               assignee_id=agent)
        red.missed_calls = 3
        green = STORE.new_ticket(s, subject="Missed call from +4930222", origin=MISSED, number="+4930222", at=T0,
                                 assignee_id=agent)
        green.answered_back = True
        plain = STORE.new_ticket(s, subject="Incoming", origin=INBOUND, number="+4930333", at=T0, assignee_id=agent)
        ids = red.id, green.id, plain.id
    await world.login("2001")
    html = await world.page("/tickets")
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r'<tr data-ticket="(\d+)"(.*?)</tr>', html, re.S)}
    assert 'data-handset="red"' in rows[ids[0]] and 'data-missed="3"' in rows[ids[0]]
    assert 'data-handset="green"' in rows[ids[1]] and "data-missed" not in rows[ids[1]]
    assert "data-handset" not in rows[ids[2]]
    assert set(re.findall(r'data-ticket="(\d+)"', await world.page("/tickets?origin=missed"))) == {
        str(ids[0]), str(ids[1])}
    assert "Origin is one of" in await world.page("/tickets?origin=nowhere", 400)


# --- the report ------------------------------------------------------------------------------------------

DAY = T0.date()


def at(day_offset: int, hour: int) -> datetime:
    return T0.replace(hour=0) + timedelta(days=day_offset, hours=hour)


def ticket(s: Session, origin: str, made: datetime, assignee: str | None, *, closed: datetime | None = None,
           unit_of: str = "2001") -> Ticket:
    row = Ticket(subject="t", status=CLOSED if closed else OPEN, origin=origin, number="+4930",
                 assignee_id=uid(s, assignee) if assignee else None,
                 org_unit_id=s.scalar(select(User.org_unit_id).where(User.login == unit_of)),
                 created_at=made, updated_at=made, closed_at=closed, grouping=False, missed_calls=0,
                 answered_back=False, reopened=0)
    s.add(row)
    s.flush()
    return row


def entry(s: Session, row: Ticket, kind: str, when: datetime, author: str | None = None, **values: Any) -> None:
    s.add(TicketEntry(ticket_id=row.id, at=when, kind=kind, author_id=uid(s, author) if author else None,
                      body=values.get("body", ""), call_id=values.get("call_id"), in_progress=False,
                      old=values.get("old", ""), new=values.get("new", "")))


def report_data(s: Session) -> dict[str, int]:
    """One day (DAY) of North's call tickets, each an edge of a definition; South's t6 and the integration's
    t5 are outside North's figures."""
    t1 = ticket(s, INBOUND, at(0, 10), "2001", closed=at(0, 12))  # worked on and closed in 2 h
    entry(s, t1, "call", at(0, 10), "2001", call_id="k1")
    entry(s, t1, "reply", at(0, 11), "2001", body="r")
    entry(s, t1, "status", at(0, 12), "2001", old=OPEN, new=CLOSED)
    t2 = ticket(s, OUTBOUND, at(0, 13), "2003", closed=at(0, 13))  # made closed: left out of the close time
    entry(s, t2, "call", at(0, 13), call_id="k2")  # automatic: the assignee's conversation
    t3 = ticket(s, MISSED, at(-1, 3), None, closed=at(0, 9))  # 30 h, no conversation: not "closed", a breach
    entry(s, t3, "missed", at(-1, 3))
    entry(s, t3, "status", at(0, 9), None, old=OPEN, new=CLOSED)  # by the rules: not "in progress"
    t4 = ticket(s, INBOUND, at(-3, 9), "2001")  # reopened in the range
    entry(s, t4, "status", at(-2, 9), "2001", old=OPEN, new=CLOSED)
    entry(s, t4, "status", at(0, 15), "2001", old=CLOSED, new=OPEN)
    t5 = ticket(s, INTEGRATION, at(0, 10), "2001")
    entry(s, t5, "reply", at(0, 10), "2001", body="x")
    t6 = ticket(s, INBOUND, at(0, 10), "2002", unit_of="2002")
    entry(s, t6, "call", at(0, 10), "2002", call_id="k6")
    t7 = ticket(s, INBOUND, at(1, 0), "2001")  # the next day, at midnight: outside
    t8 = ticket(s, INBOUND, at(0, 8), "2001")
    entry(s, t8, "note", at(0, 9), "2003", body="n")
    s.flush()
    return {"t1": t1.id, "t2": t2.id, "t3": t3.id, "t4": t4.id, "t6": t6.id, "t7": t7.id, "t8": t8.id}


def test_the_report_figures_and_their_edges(db: Database) -> None:  # noqa: F811
    with db.session() as s:
        t = report_data(s)
        report = ticket_report(s, uid(s, "nadmin"), DAY, DAY, close_target_hours=24)
        f = report.total
        assert (f.new, f.new_customer, f.new_outbound) == ({t["t1"], t["t2"], t["t8"]}, {t["t1"], t["t8"]}, {t["t2"]})
        assert f.reopened == {t["t4"]} and f.new_or_reopened == 4
        assert f.in_progress == {t["t1"], t["t4"], t["t8"]}
        assert f.with_reply == {t["t1"], t["t2"]} and f.replies == 3
        assert f.closed == {t["t1"], t["t2"]}
        assert sorted(f.close_seconds) == [7200, 30 * 3600] and f.average_close_seconds == (7200 + 30 * 3600) / 2
        assert f.breaches == 1 and f.average_replies_to_close == 1.5
        agents = {a.name: a.figures for a in report.agents}
        assert set(agents) == {"Alice Agent", "Carl Colleague"}
        alice, carl = agents["Alice Agent"], agents["Carl Colleague"]
        assert (alice.new, alice.reopened, alice.in_progress) == ({t["t1"], t["t8"]}, {t["t4"]}, {t["t1"], t["t4"]})
        assert (alice.closed, alice.replies, alice.average_close_seconds, alice.breaches) == ({t["t1"]}, 2, 7200, 0)
        assert (carl.new_outbound, carl.in_progress, carl.with_reply, carl.closed) == (
            {t["t2"]}, {t["t8"]}, {t["t2"]}, {t["t2"]})
        assert carl.average_close_seconds is None and carl.average_replies_to_close == 1
        # A wider target: no breach; root sees South too; the unit filter; another unit is refused.
        assert ticket_report(s, uid(s, "nadmin"), DAY, DAY, close_target_hours=30).total.breaches == 0
        assert ticket_report(s, uid(s, "root"), DAY, DAY).total.new == {t["t1"], t["t2"], t["t8"], t["t6"]}
        south = s.scalar(select(User.org_unit_id).where(User.login == "2002"))
        assert ticket_report(s, uid(s, "root"), DAY, DAY, south).total.new == {t["t6"]}
        with pytest.raises(TicketError) as refused:
            ticket_report(s, uid(s, "nadmin"), DAY, DAY, south)
        assert refused.value.http_status == 404
        assert ticket_report(s, uid(s, "nadmin"), DAY + timedelta(days=1), DAY + timedelta(days=1)).total.new == {
            t["t7"]}
        with pytest.raises(TicketError):
            ticket_report(s, uid(s, "nadmin"), DAY, date(2029, 1, 1))


async def test_the_report_page(world: World) -> None:
    with world.db.session() as s:
        report_data(s)
    await world.login("boss")
    html = await world.page(f"/tickets/report?from={DAY}&to={DAY}")
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', html))
    assert (figures["new"], figures["reopened"], figures["closed"], figures["close_breaches"]) == ("3", "1", "2", "1")
    assert figures["average_close_seconds"] == "16:00:00" and figures["average_replies_to_close"] == "1.5"
    assert html.count("not applicable to call tickets") >= 5 and 'data-agent="' in html
    assert "From is after To" in await world.page(f"/tickets/report?from={DAY}&to=2029-01-01", 400)
