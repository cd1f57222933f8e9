"""The controller's health (/health: can it reach Asterisk over ARI and AMI, and its database?) and its
status (the index page and /api/phones: users' phones and the calls in the Stasis app)."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.ami.client import AmiClient
from callcenter.ari.client import AriClient
from callcenter.calls.ledger import CelIngestor
from callcenter.calls.services import CallService
from callcenter.config import SipSettings
from callcenter.db.engine import Database
from callcenter.errors import AriError
from callcenter.users.directory import UserDirectory
from callcenter.users.presence import PhonePresence


class ControllerStatus:
    def __init__(self, ari: AriClient, ami: AmiClient, db: Database, ingestor: CelIngestor, calls: CallService,
                 directory: UserDirectory, presence: PhonePresence, sip: SipSettings) -> None:
        self.ari = ari
        self.ami = ami
        self.db = db
        self.ingestor = ingestor
        self.calls = calls
        self.directory = directory
        self.presence = presence
        self.sip = sip

    async def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {}
        try:
            await asyncio.wait_for(self.ari.asterisk_info(), 2)
            ari_ok = self.ari.connected.is_set()
            report["ari"] = {"ok": ari_ok, **({} if ari_ok else {"error": self.ari.last_error})}
        except (AriError, TimeoutError) as exc:
            report["ari"] = {"ok": False, "error": str(exc)}
        ami_ok = self.ami.logged_in.is_set()
        report["ami"] = {"ok": ami_ok, **({} if ami_ok else {"error": self.ami.last_error})}
        try:
            await asyncio.wait_for(asyncio.to_thread(self.db.ping), 2)
            # Reachable, but the call ledger's last write may still have failed: that is not healthy.
            error = self.ingestor.error
            report["database"] = {"ok": not error, **({"error": error} if error else {})}
        except Exception as exc:
            report["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return report

    def status(self) -> dict[str, Any]:
        return {
            "sip": f"udp {self.sip.bind}:{self.sip.port}",
            "stasis_calls": len(self.calls.calls),
            "phones": [{"extension": ext, "name": name, "state": self.presence.states.get(ext, "UNAVAILABLE")}
                       for ext, name in sorted(self.directory.names.items())],
        }
