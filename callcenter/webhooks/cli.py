"""`callcenter webhooks add|list|remove|deliveries|resend|test` (docs/webhooks.md). The secret is printed
once, when the endpoint is added; the pages can rotate it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from callcenter.cli_support import database, operator, utc

if TYPE_CHECKING:
    from callcenter.config import Settings




def cmd_webhooks(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.webhooks import admin
    from callcenter.webhooks.catalog import EVENTS

    db: Any = database(settings)
    with db.session() as session:
        if args.action == "add":
            events = [e for e in args.events.split(",") if e] if args.events != "all" else [e.name for e in EVENTS]
            info, secret = admin.create_endpoint(session, name=args.name, url=args.url, events=events,
                                                 active=not args.inactive, created_by=operator())
            print(f"added webhook endpoint {info.id} {info.name!r} -> {info.url}")
            print(f"  events: {', '.join(info.events)}")
            print(f"  signing secret: {secret}")
            print("  (shown this once; rotate it on the webhooks page)")
        elif args.action == "list":
            print(f"{'id':>4} {'name':<20} {'active':<6} {'pending':>7} {'failed':>6}  url / events")
            for e in admin.list_endpoints(session):
                print(f"{e.id:>4} {e.name:<20} {'yes' if e.active else 'no':<6} {e.pending:>7} {e.failed:>6}  "
                      f"{e.url}\n{'':>48}{', '.join(e.events)}")
        elif args.action == "remove":
            info = admin.delete_endpoint(session, args.id)
            print(f"removed webhook endpoint {info.id} {info.name!r} and its deliveries")
        elif args.action == "test":
            admin.send_test(session, args.id, operator())
            print(f"queued a webhook.test for endpoint {args.id}")
        elif args.action == "deliveries":
            found = admin.deliveries(session, args.endpoint, 1, args.limit, status=args.status or "")
            print(f"{found.total} deliveries; newest {len(found.rows)}:")
            for d in found.rows:
                print(f"{d.id:>6} {utc(d.created_at, seconds=True)} ep {d.endpoint_id:<3} {d.event:<26} {d.status:<9} "
                      f"attempts {d.attempts:<3} {d.event_id} {d.last_error}")
        elif args.action == "resend":
            d = admin.resend(session, args.id)
            print(f"delivery {d.id} ({d.event}, event id {d.event_id}) is pending again")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("webhooks", help="outgoing webhooks: endpoints and deliveries (docs/webhooks.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an endpoint; its signing secret is printed once")
    add.add_argument("name")
    add.add_argument("url", help="http:// or https:// address the events are POSTed to")
    add.add_argument("--events", required=True,
                     help="comma-separated event names (callcenter/webhooks/catalog.py), or 'all'")
    add.add_argument("--inactive", action="store_true", help="add it switched off")
    actions.add_parser("list", help="list endpoints (never their secrets)")
    remove = actions.add_parser("remove", help="remove an endpoint and its deliveries")
    remove.add_argument("id", type=int)
    test = actions.add_parser("test", help="queue a webhook.test event for an endpoint")
    test.add_argument("id", type=int)
    deliveries = actions.add_parser("deliveries", help="the newest deliveries")
    deliveries.add_argument("--endpoint", type=int, help="of this endpoint only")
    deliveries.add_argument("--status", choices=("pending", "delivered", "failed"))
    deliveries.add_argument("--limit", type=int, default=20)
    resend = actions.add_parser("resend", help="send a delivery again (same body, same event id)")
    resend.add_argument("id", type=int)
    parser.set_defaults(func=cmd_webhooks)
