"""`callcenter api-tokens create|list|revoke`: the REST API's tokens (users/tokens.py, docs/api.md). The
secret is printed once, at creation; only its SHA-256 is stored."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from callcenter.cli_support import database, operator, utc

if TYPE_CHECKING:
    from callcenter.config import Settings




def cmd_api_tokens(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.errors import UserError
    from callcenter.users import tokens

    db: Any = database(settings)
    with db.session() as session:
        if args.action == "create":
            expires = None
            if args.expires:
                try:
                    expires = datetime.combine(date.fromisoformat(args.expires), time(), UTC)
                except ValueError:
                    raise UserError("--expires: a date as YYYY-MM-DD") from None
            info, secret = tokens.create_token(session, name=args.name, user=args.user, created_by=operator(),
                                               expires_at=expires)
            print(f"created API token {info.id} {info.name!r}, acting as {info.user}")
            print(f"  {secret}")
            print("  (shown this once: only its SHA-256 is stored)")
        elif args.action == "list":
            print(f"{'id':>4} {'name':<24} {'user':<12} {'state':<8} {'expires':<17} {'last used':<17} created by")
            for t in tokens.list_tokens(session):
                print(f"{t.id:>4} {t.name:<24} {t.user:<12} {t.state:<8} {utc(t.expires_at):<17} "
                      f"{utc(t.last_used_at):<17} {t.created_by}")
        elif args.action == "revoke":
            info = tokens.revoke_token(session, args.id)
            print(f"revoked API token {info.id} {info.name!r}")
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("api-tokens", help="tokens of the REST API (docs/api.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument("name", help="what the token is for")
    create.add_argument("--user", required=True, help="login or extension of the user the token acts as")
    create.add_argument("--expires", metavar="YYYY-MM-DD", help="the day (UTC) it stops working")
    actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id", type=int)
    parser.set_defaults(func=cmd_api_tokens)
