"""The call events integrations receive (webhooks/call_events.py), made from the ACD's and the journeys' events
on a real bus and queued in a real outbox: names, the seed's fields, contact lookup, recording links, and the
outbox row written in the same transaction as the fact. End to end with real calls and a receiver:
tests/integration/test_webhooks.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.acd.events import AgentLegEnded, AgentLegStarted
from callcenter.acd.model import AcdCall, Agent, AgentLeg, Direction
from callcenter.bus import Bus
from callcenter.calls.events import CallFinished, CallLeg, CallSummary, DirectCall
from callcenter.customers.models import Customer, CustomerPhone
from callcenter.db.engine import Database
from callcenter.db.models import Recording, User
from callcenter.db.writer import RecordWriter
from callcenter.recording.events import RecordingDone
from callcenter.users.services import add_user
from callcenter.webhooks.admin import create_endpoint
from callcenter.webhooks.call_events import CallNotifications
from callcenter.webhooks.catalog import NAMES
from callcenter.webhooks.models import WebhookDelivery
from callcenter.webhooks.plugin import Webhooks
from callcenter.webhooks.settings import WebhooksSettings

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
NUMBER = "+48601000001"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'cc.db'}")
    database.migrate()
    with database.session() as session:
        add_user(session, name="Ann", extension="2001")
        customer = Customer(name="Known Customer", created_at=T0, updated_at=T0)
        session.add(customer)
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, number=NUMBER))
        create_endpoint(session, name="crm", url="http://127.0.0.1:9/hook", events=NAMES, created_by="test")
    yield database
    database.dispose()


class Floor:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.bus = Bus()
        self.writer = RecordWriter(db, "test records")
        self.webhooks = Webhooks(db, WebhooksSettings(), "http://panel.example", b"k" * 32)
        self.calls = CallNotifications(self.webhooks, self.writer, self.bus, "PL")
        with db.session() as session:
            ann = session.scalar(select(User.id).where(User.extension == "2001"))
        assert ann is not None
        self.ann = Agent(ann, "2001", "Ann")

    def sent(self) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
            return [json.loads(d.payload) for d in rows]


@pytest.fixture
def floor(db: Database) -> Floor:
    return Floor(db)


async def test_an_inbound_calls_events_carry_the_seeds_fields(floor: Floor) -> None:
    call = AcdCall("chan-1", Direction.INBOUND, "sales", "601000001", did="500", entered_at=T0, session_id="chan-1")
    leg = AgentLeg(f"{call.record_id}-1", floor.ann, T0 + timedelta(seconds=4))
    call.legs.append(leg)
    await floor.bus.publish(AgentLegStarted(call, leg))
    leg.ended_at, leg.how = T0 + timedelta(seconds=34), "hangup"
    await floor.bus.publish(AgentLegEnded(call, leg))
    talked = CallLeg(leg.leg_id, floor.ann.user_id, "2001", "Ann", leg.started_at, leg.ended_at, "hangup")
    summary = CallSummary("chan-1", "inbound", "did", "601000001", "500", T0, leg.started_at,
                          T0 + timedelta(seconds=35), (talked,), (floor.ann.user_id,), (call.record_id,), ("sales",),
                          "", "answered")
    await floor.bus.publish(CallFinished(summary))
    await floor.writer.flush()
    accepted, finished_leg, finished = floor.sent()
    assert [accepted["event"], finished_leg["event"], finished["event"]] == [
        "call.accepted", "call.leg_finished", "call.finished"]
    assert finished["notification_name"] == "Call finished" and finished["virtual_phone_number"] == "500"
    assert finished["contact_info"]["contact_full_name"] == "Known Customer"  # found by its national form
    assert finished["employee_info"] == {"employee_full_name": "Ann", "employee_id": floor.ann.user_id}
    info = finished["call_info"]
    assert (info["talk_time_duration"], info["total_time_duration"], info["wait_time_duration"]) == (30.0, 35.0, 4.0)
    assert (info["is_lost"], info["direction"], info["call_session_id"]) == (False, "in", "chan-1")
    assert finished["leg_ids"] == [leg.leg_id] and finished["group_ids"] == ["sales"]
    assert finished_leg["call_info"]["talk_time_duration"] == 30.0 and finished_leg["leg_id"] == leg.leg_id
    assert accepted["call_info"]["call_session_id"] == "chan-1"


async def test_an_agents_own_call_is_told_as_outbound_and_a_recording_with_a_signed_link(floor: Floor) -> None:
    call = AcdCall(None, Direction.OUTBOUND, None, NUMBER, entered_at=T0)
    leg = AgentLeg(f"{call.record_id}-1", floor.ann, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), "hangup")
    call.legs.append(leg)
    await floor.bus.publish(AgentLegStarted(call, leg))  # the customer answering an agent's call: no accepted
    await floor.bus.publish(AgentLegEnded(call, leg))
    with floor.db.session() as session:
        session.add(Recording(id="rec1", linkedid=call.session_id, channel_id="c", acd_call_id=call.record_id,
                              user_id=floor.ann.user_id, sip_username="2001", caller="2001", called=NUMBER,
                              started_at=T0, status="ready", seconds=10, path="Recordings/x.mp3"))
    await floor.bus.publish(RecordingDone("rec1", "ready", 10.0, T0 + timedelta(seconds=25)))
    await floor.writer.flush()
    leg_event, recorded = floor.sent()
    assert (leg_event["event"], leg_event["notification_name"]) == ("call.outbound_leg", "Outbound call leg")
    assert leg_event["call_record_file_info"]["file_link"].startswith("http://panel.example/recordings/rec1/signed?")
    assert recorded["event"] == "call.recording_completed"
    assert recorded["call_info"]["direction"] == "out" and recorded["acd_call_id"] == call.record_id
    assert recorded["call_record_file_info"]["record_file_links"] == [recorded["call_record_file_info"]["file_link"]]


async def test_the_outbox_row_is_written_with_the_fact_or_not_at_all(floor: Floor, db: Database) -> None:
    call = AcdCall("chan-2", Direction.INBOUND, "sales", "601000009", did="500", entered_at=T0, session_id="chan-2")
    leg = AgentLeg(f"{call.record_id}-1", floor.ann, T0, T0 + timedelta(seconds=5), "hangup")

    def refused_fact(_session: Any) -> None:
        raise RuntimeError("the database refused the call's record")
    with floor.writer.together():
        floor.writer.add(refused_fact)
        await floor.bus.publish(AgentLegEnded(call, leg))
    with pytest.raises(RuntimeError):
        await floor.writer.flush()
    assert floor.sent() == []  # the event's row went with the refused record: nothing reports a lost fact


def test_a_call_dialled_from_a_phone_is_an_outbound_call_event(floor: Floor) -> None:
    with floor.db.session() as session:
        floor.calls.direct_call(session, DirectCall("lid-1", floor.ann.user_id, "2001", "601000001", T0,
                                                    T0 + timedelta(seconds=40), True, 30))
    [event] = floor.sent()
    assert (event["event"], event["call_info"]["call_source"], event["call_info"]["talk_time_duration"]) == (
        "call.outbound", "phone", 30.0)
    assert event["contact_info"]["contact_id"] is not None



async def test_an_integrations_external_id_of_a_call_it_placed_comes_back_in_its_events(floor: Floor) -> None:
    import contextlib

    from callcenter.acd.events import CallEnded, OutboundCallStarted
    from callcenter.calls.journeys import Journeys
    Journeys(floor.bus, contextlib.nullcontext, now=lambda: T0 + timedelta(seconds=30))
    call = AcdCall(None, Direction.OUTBOUND, None, NUMBER, entered_at=T0)
    call.extra["external_id"] = "crm-4711"  # what the API's click-to-call was given
    await floor.bus.publish(OutboundCallStarted(call, floor.ann))
    await floor.bus.publish(CallEnded(call, "no_answer"))
    await floor.writer.flush()
    [outbound] = floor.sent()
    assert (outbound["event"], outbound["external_id"]) == ("call.outbound", "crm-4711")
    assert outbound["call_info"]["is_lost"] is True and outbound["call_info"]["outcome"] == "no_answer"
