"""Preview mode and the agents' own callbacks (DIA-5), and what the agents' wrap-up codes do to a contact.

A preview campaign shows each free agent a contact, not yet dialled: the agent dials it (the ACD calls
the number from their phone) or skips it (the contact is tried again in an hour). A callback an agent
promised for themself is shown to them the same way when it is due, in any mode. After a campaign's
call the agent's wrap-up code (the campaign's dispositions) decides when, or whether, its contact is
called again: a callback, done, do-not-call, or a machine after all.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from callcenter.acd.model import AcdCall
from callcenter.db.models import DialerAttempt
from callcenter.dialer import store
from callcenter.dialer.rules import DEFAULT_RETRIES, after_attempt, after_disposition
from callcenter.dialer.state import CampaignRuntime, DialerState, LiveAttempt, customer_card, utc
from callcenter.errors import ActionRefused

log = logging.getLogger(__name__)


class Previews:
    """The contacts shown to agents before they are dialled, and the dispositions after a call."""

    def __init__(self, state: DialerState, *, default_trunk: str) -> None:
        self.state = state
        self.default_trunk = default_trunk

    def _free_without_preview(self, runtime: CampaignRuntime) -> list[int]:
        return [a.user_id for a in self.state.agents_of(runtime)
                if a.user_id not in runtime.previews and self.state.acd.available(a)]

    def _show_previews(self, runtime: CampaignRuntime, shown: Mapping[int, store.ContactRef]) -> None:
        if shown:
            runtime.previews.update(shown)
            self.state.acd.notify()

    async def fill(self, runtime: CampaignRuntime) -> None:
        free = self._free_without_preview(runtime)
        if free:
            contacts = await asyncio.to_thread(self.state.take, runtime, len(free), None)
            self._show_previews(runtime, dict(zip(free, contacts, strict=False)))

    async def offer_agent_callbacks(self, runtime: CampaignRuntime) -> None:
        """A callback an agent promised for themself is shown to them (as a preview) when it is due."""
        free = self._free_without_preview(runtime)
        if free:
            self._show_previews(runtime, await asyncio.to_thread(self._take_agent_callbacks, runtime, free))

    def _take_agent_callbacks(self, runtime: CampaignRuntime, agent_ids: list[int]) -> dict[int, store.ContactRef]:
        """Each agent's next due callback: one query finds the agents who have one (every second, so a
        floor of free agents costs one query, not one each)."""
        name, now = runtime.spec.name, self.state.timers.now()
        taken: dict[int, store.ContactRef] = {}
        with self.state.db.session() as session:
            for agent_id in store.agents_with_due_callbacks(session, name, agent_ids, now):
                contacts = store.take_due(session, name, runtime.spec.hours, now, 1, agent_id=agent_id)
                if contacts:
                    taken[agent_id] = contacts[0]
        return taken

    def preview_for(self, user_id: int) -> dict[str, Any] | None:
        for runtime in self.state.campaigns.values():
            contact = runtime.previews.get(user_id)
            if contact is not None:
                return {"campaign": runtime.spec.name, "number": contact.number, "name": contact.name,
                        "fields": contact.fields, "attempts": contact.attempts - 1,
                        "callback": contact.callback_agent_id is not None}
        return None

    def dispositions_for(self, call: AcdCall | None) -> list[dict[str, str]]:
        runtime = self.state.campaigns.get(call.campaign or "") if call is not None else None
        if runtime is None:
            return []
        return [{"code": code, "action": d.action} for code, d in runtime.spec.dispositions.items()]

    async def preview_dial(self, user_id: int) -> None:
        runtime, contact = self._preview_of(user_id)
        spec = runtime.spec
        del runtime.previews[user_id]
        card = customer_card(spec, contact)
        attempt = LiveAttempt(uuid.uuid4().hex, spec.name, contact, "preview", None, self.state.clock())
        self.state.live[attempt.id] = attempt
        row = {"id": attempt.id, "campaign": spec.name, "contact_id": contact.id, "number": contact.number,
               "mode": "preview", "channel_id": "", "placed_at": utc(attempt.placed), "amd_status": "off",
               "outcome": ""}
        self.state.writer.add(lambda session: session.add(DialerAttempt(**row)))
        try:
            call = await self.state.acd.dial(user_id, contact.number, campaign=spec.name, card=card,
                                       caller_id=spec.caller_id, trunk=spec.trunk or self.default_trunk)
        except ActionRefused:
            await self.state.finish(attempt, "failed")
            raise
        call.extra["contact_id"] = contact.id
        attempt.acd_call_id = call.record_id
        self.state.by_call[call.record_id] = attempt
        self.state.update(attempt, acd_call_id=call.record_id, agent_id=user_id)

    async def preview_skip(self, user_id: int) -> None:
        runtime, _contact = self._preview_of(user_id)
        await self.release(runtime, user_id, "skipped by the agent")
        self.state.acd.notify()

    async def release(self, runtime: CampaignRuntime, user_id: int, reason: str) -> None:
        contact = runtime.previews.pop(user_id)
        later = self.state.timers.now() + timedelta(hours=1) if reason.startswith("skipped") else None
        status = "callback" if contact.callback_agent_id is not None else "pending"
        self.state.writer.add(lambda session: store.put_back(session, contact.id, status, later, reason))

    def _preview_of(self, user_id: int) -> tuple[CampaignRuntime, store.ContactRef]:
        for runtime in self.state.campaigns.values():
            contact = runtime.previews.get(user_id)
            if contact is not None:
                return runtime, contact
        raise ActionRefused("You have no contact to preview.")

    # -- the agent's wrap-up code ---------------------------------------------------------------------------

    async def wrapped_up(self, call: AcdCall) -> None:
        """The agent's wrap-up code decides what becomes of the contact (a callback, do-not-call...)."""
        contact_id = call.extra.get("contact_id")
        runtime = self.state.campaigns.get(call.campaign or "")
        code, record_id = call.wrapup_code, call.record_id
        self.state.writer.add(lambda session: session.execute(
            update(DialerAttempt).where(DialerAttempt.acd_call_id == record_id).values(wrapup_code=code)))
        if runtime is None or contact_id is None:
            return
        if code not in runtime.spec.dispositions:
            return
        if runtime.spec.dispositions[code].action == "machine":
            self._machine_after_all(runtime, call, int(contact_id))
            return
        callback_at = call.extra.get("callback_at")
        try:
            step = after_disposition(code, runtime.spec.dispositions, self.state.timers.now(), callback_at)
        except ValueError as exc:  # a callback code without a time (the panel asks for one)
            log.warning("dialer: wrap-up %s of call %s: %s; the contact stays as it is", code, call.record_id, exc)
            return
        mine = bool(call.extra.get("callback_mine")) and call.agent is not None
        agent_id = call.agent.user_id if mine and call.agent is not None else None
        status = "callback" if step.status == "pending" and callback_at is not None else step.status
        number, spec_name = call.number, runtime.spec.name

        def write(session: Any) -> None:
            store.contact_done(session, int(contact_id), status, step.not_before, step.reason, "",
                               callback_agent_id=agent_id if status == "callback" else None)
            if step.status == "dnc":
                store.add_dnc(session, [number], spec_name, f"agent wrap-up {code}", self.state.timers.now())
        self.state.writer.add(write)

    def _machine_after_all(self, runtime: CampaignRuntime, call: AcdCall, contact_id: int) -> None:
        """The agent found an answering machine AMD had let through: it stops counting as a person in the
        abandon windows, and the contact follows the machine retry rule."""
        human = call.extra.get("human")
        if isinstance(human, float):
            runtime.ledger.machine_answered(human)
        attempt_id = call.extra.get("attempt_id")
        if isinstance(attempt_id, str):
            self.state.update_id(attempt_id, outcome="machine")
        rules = runtime.spec.retries or DEFAULT_RETRIES
        now = self.state.timers.now()

        def write(session: Any) -> None:
            counts = store.counts_of(session, contact_id)
            counts["machine"] = counts.get("machine", 0) + 1
            step = after_attempt("machine", counts, rules, now)
            store.contact_done(session, contact_id, step.status, step.not_before, step.reason, "machine")
        self.state.writer.add(write)
