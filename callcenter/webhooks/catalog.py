"""The events a webhook endpoint may receive. The six call events are CallGear's notifications of seed 001
(same meaning, same JSON field names at the top level of the body); the lead's bus subscribers build their
payloads. docs/webhooks.md lists them with what is sent when."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventKind:
    name: str
    title: str  # the notification_name sent when the payload sets none (CallGear's names for the call events)
    description: str


EVENTS: tuple[EventKind, ...] = (
    EventKind("call.accepted", "Call accepted",
              "An agent answered a call (CallGear's \"Call accepted\")."),
    EventKind("call.leg_finished", "Call leg finished",
              "One leg of a call ended, e.g. the agent who talked before a transfer (\"Call leg finished\")."),
    EventKind("call.finished", "Call finished",
              "A call ended, answered or lost, with its talk, total and wait durations (\"Call finished\")."),
    EventKind("call.recording_completed", "Call recording completed",
              "A call's recording is ready, with a signed, expiring download link (\"Call recording completed\")."),
    EventKind("call.outbound_leg", "Outbound call leg",
              "One leg of a call an agent or the dialer placed ended (\"Outbound call leg\")."),
    EventKind("call.outbound", "Outbound call",
              "A call an agent or the dialer placed ended (\"Outbound call\")."),
    EventKind("ticket.created", "Ticket created", "A ticket was created (by an agent or for a call)."),
    EventKind("ticket.status_changed", "Ticket status changed", "A ticket's status changed."),
    EventKind("webhook.test", "Test event", "Sent by \"send test event\" on the webhooks page or the CLI."),
)
BY_NAME: dict[str, EventKind] = {kind.name: kind for kind in EVENTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
