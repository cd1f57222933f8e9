"""The ACD's panel service (acd/http.py ``PanelBackend``): what the agent page and the wallboard show, and
the actions agents and supervisors take. Views are built from memory; what every agent's view shares (pause
reasons, wrap-up codes, callbacks, transfer targets) is built once per ACD version (``FloorLists``).
Logins, sessions and passwords are the users' (users/accounts.py).

Campaign calls (the outbound dialer, ``callcenter/dialer``) add the contact's list columns to the call
card, a preview card for preview mode, the callback time an agent picks at wrap-up and the campaigns'
figures and start/stop on the wallboard; without a dialer (``dialer`` None) none of it shows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from callcenter.acd import scope as floor
from callcenter.acd.model import AcdCall, Agent, AgentState, CallState, CustomerCard
from callcenter.acd.services import AcdService
from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.dialer.pacing import over_target_figures
from callcenter.errors import ActionRefused
from callcenter.monitor.services import Mode, MonitorError, MonitorService, UserRef
from callcenter.recording.services import RecordingService
from callcenter.users.accounts import PanelUser, UserAccounts
from callcenter.users.units import Scope, supervisor_scope


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# A callback time may lie this far in the past (the page picks whole minutes) and this far ahead.
CALLBACK_GRACE = timedelta(minutes=1)
CALLBACK_HORIZON = timedelta(days=366)
TRUE_WORDS = ("1", "true", "on", "yes")


class PanelDialer(Protocol):
    """What the panel uses of the outbound dialer (``callcenter.dialer.services.DialerService``)."""

    def preview_for(self, user_id: int) -> dict[str, Any] | None: ...
    def dispositions_for(self, call: AcdCall | None) -> list[dict[str, str]]: ...
    async def preview_dial(self, user_id: int) -> None: ...
    async def preview_skip(self, user_id: int) -> None: ...
    def status(self) -> list[dict[str, Any]]: ...
    async def start_campaign(self, name: str, by: str) -> None: ...
    async def stop_campaign(self, name: str, by: str) -> None: ...


class UserLookup(Protocol):
    """Who a user is (users/accounts.py ``UserAccounts``): the panel names supervisors and agents by login."""

    async def user(self, user_id: int) -> PanelUser | None: ...


@dataclass(frozen=True)
class FloorLists:
    """The parts of the agent view that are the same for every agent, built once per ACD version."""

    key: tuple[int, tuple[str, ...]]  # (ACD version, IVR flows): the flows reload without a version change
    pause_reasons: list[dict[str, Any]]
    wrapup_codes: list[dict[str, str]]
    callbacks: list[dict[str, Any]]
    agents: list[tuple[int, dict[str, str]]]  # (user id, transfer target) of every logged-in agent
    queues: list[dict[str, str]]
    ivr: list[dict[str, str]]


def parse_callback_at(raw: str, now: datetime) -> datetime:
    """The wrap-up's "Call back at" (ISO 8601 with the browser's UTC offset, ``2026-12-01T14:30:00+01:00``)
    as an aware UTC datetime; ActionRefused when it is not a time, has no offset, is past or over a year ahead."""
    text = raw.strip()
    try:
        if len(text) > 40:
            raise ValueError(text)
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ActionRefused(f"Call back at: {text[:40]!r} is not a date and time.") from None
    if at.utcoffset() is None:
        raise ActionRefused("Call back at: the time needs its UTC offset (e.g. 2026-12-01T14:30:00+01:00).")
    at = at.astimezone(UTC)
    if at < now - CALLBACK_GRACE:
        raise ActionRefused("Call back at: that time has passed; pick a time in the future.")
    if at > now + CALLBACK_HORIZON:
        raise ActionRefused("Call back at: pick a time within a year.")
    return at


def customer_view(card: CustomerCard | None) -> dict[str, Any] | None:
    """The caller on the card: name and notes; for a customer of the database (``id``) also what the
    profile pane shows after the answer (numbers, e-mail, company, every non-empty custom field)."""
    if card is None or not card.name:
        return None
    found: dict[str, Any] = {"name": card.name, "note": card.note}
    if card.customer_id is not None:
        found.update(id=card.customer_id, email=card.email, company=card.company, phones=list(card.phones),
                     profile=[[label, value] for label, value in card.profile.items()])
    return found


def history_view(card: CustomerCard | None) -> list[dict[str, Any]]:
    """The last calls, a ready recording as the link the customer's page plays it at (agents in scope)."""
    if card is None:
        return []
    return [{**item, "recording": f"/customers/{card.customer_id}/recordings/{item['recording']}"
             if item.get("recording") and card.customer_id is not None else ""} for item in card.history]


class AcdPanel:
    def __init__(self, acd: AcdService, db: Database, ivr_flows: Callable[[], list[str]], *,
                 accounts: UserLookup | None = None, recording: RecordingService | None = None,
                 monitor: MonitorService | None = None, dialer: PanelDialer | None = None,
                 phone_states: Callable[[], Mapping[str, str]] = dict,
                 user_names: Callable[[], Mapping[str, str]] = dict,
                 user_ids: Callable[[], Mapping[str, int]] = dict,
                 unit_of: Callable[[int], int | None] = lambda _user_id: None) -> None:
        self.acd = acd
        # An agent's organisational unit: the card shows them the caller's open tickets of that unit only.
        self.unit_of = unit_of
        self.db = db
        self.ivr_flows = ivr_flows
        # Who a user is (their login, for the logs of supervisors' and agents' actions).
        self.accounts: UserLookup = accounts if accounts is not None else UserAccounts(db)
        # Recording of connected calls: state and pause/resume.
        self.recording = recording
        # Monitoring and what it needs to know about users and phones.
        self.monitor = monitor
        self.phone_states = phone_states
        self.user_names = user_names
        self.user_ids = user_ids
        # The outbound dialer: previews, dispositions, campaigns.
        self.dialer = dialer
        self._floor: FloorLists | None = None

    # -- views --------------------------------------------------------------------------------------

    def _call_view(self, call: AcdCall, unit: int | None) -> dict[str, Any]:
        state = call.state
        shown = {CallState.RINGING: "ringing", CallState.CALLBACK_WAITING: "ringing", CallState.DIALING: "dialing",
                 CallState.HELD: "held", CallState.CONSULTING: "consulting"}.get(state, "connected")
        consult = None
        if call.consult is not None:
            consult = {"target": f"{call.consult.agent.name} ({call.consult.agent.extension})",
                       "state": "connected" if call.consult_channel else "ringing"}
        card = call.card
        return {
            "id": call.record_id, "direction": call.direction.value, "number": call.number, "queue": call.queue,
            "state": shown, "since": _iso(call.state_since or call.entered_at),
            "customer": customer_view(card),
            "caller_name": call.name,
            "history": history_view(card),
            "tickets": [{k: v for k, v in t.items() if k != "unit_id"} for t in (card.tickets if card else [])
                        if unit is not None and t.get("unit_id") == unit],
            "consult": consult,
            "recording": self.recording.state(call.record_id) if self.recording else None,
            "campaign": call.campaign,
            "contact_fields": [[name, value] for name, value in card.fields.items()] if card else [],
            "dispositions": self._dispositions(call),
        }

    def _dispositions(self, call: AcdCall) -> list[dict[str, str]]:
        """What the campaign does with each wrap-up code of its calls (``[{code, action}]``; [] otherwise)."""
        if self.dialer is None or not call.campaign:
            return []
        return self.dialer.dispositions_for(call)

    def agent_view(self, user_id: int) -> dict[str, Any]:
        agent = self.acd.agents.get(user_id)
        if agent is None:
            raise ActionRefused("You are not an agent with an extension; ask an admin.", 403)
        call = agent.current
        last = agent.last_call
        floor = self.floor_lists()
        return {
            "agent": {
                "id": agent.user_id, "name": agent.name, "extension": agent.extension, "state": agent.state.value,
                "reason": agent.reason, "since": _iso(agent.since), "pending_pause": agent.pending_pause,
                "awaiting_approval": agent.awaiting_approval, "calls_today": agent.calls_today,
                "wrapup_deadline": _iso(agent.wrapup_deadline), "missed_in_row": agent.missed_in_row,
                "queues": sorted(agent.skills),
            },
            "call": self._call_view(call, self.unit_of(user_id)) if call is not None else None,
            "last_call": {"id": last.record_id, "number": last.number, "wrapup_code": last.wrapup_code,
                          "note": last.note, "campaign": last.campaign,
                          "dispositions": self._dispositions(last)} if last is not None else None,
            "preview": self.dialer.preview_for(user_id) if self.dialer is not None else None,
            "session": self._session_view(user_id),
            "message": self.acd.messages.get(user_id),
            "pause_reasons": floor.pause_reasons,
            "wrapup_codes": floor.wrapup_codes,
            "callbacks": floor.callbacks,
            "transfer_targets": {
                "agent": [target for other, target in floor.agents if other != agent.user_id],
                "queue": floor.queues,
                "ivr": floor.ivr,
            },
        }

    def floor_lists(self) -> FloorLists:
        """What every agent's view shares, built again only when the ACD's version (or the IVR flows) moved:
        50 agents' views after one change sort the callbacks and label the agents once, not 50 times."""
        flows = tuple(self.ivr_flows())
        key = (self.acd.version, flows)
        if self._floor is not None and self._floor.key == key:
            return self._floor
        acd = self.acd
        self._floor = FloorLists(
            key=key,
            pause_reasons=[{"code": r.code, "label": r.label, "needs_approval": r.needs_approval}
                           for r in acd.pause_reasons.values()],
            wrapup_codes=[{"code": code, "label": label} for code, label in acd.wrapup_codes.items()],
            callbacks=sorted(acd.callbacks.values(), key=lambda c: str(c["last_at"]), reverse=True)[:100],
            agents=[(a.user_id, {"id": a.extension,
                                 "label": f"{a.name} ({a.extension}) - {a.state.value.replace('_', ' ')}"})
                    for a in sorted(acd.agents.values(), key=lambda a: a.extension) if a.logged_in],
            queues=[{"id": name, "label": name} for name in sorted(acd.queues)],
            ivr=[{"id": name, "label": name} for name in flows],
        )
        return self._floor

    def _session_view(self, user_id: int) -> dict[str, Any] | None:
        """The agent's kept phone line (a session-mode campaign), while there is one."""
        session = self.acd.session_of(user_id)
        if session is None:
            return None
        return {"label": session.label, "state": "connected" if session.up else "calling",
                "since": _iso(session.answered_at or session.started_at), "in_call": session.lent}

    def _agent_row(self, agent: Agent) -> dict[str, Any]:
        state, since, direct = agent.state.value, agent.since, None
        call = self.monitor.direct.of(agent.extension) if self.monitor is not None else None
        if agent.state is AgentState.READY and call is not None:
            # Ready for the ACD but on a call of their own, which the ACD offers nothing during: on call,
            # since the answer (while it still rings the far end: since the phone became busy).
            state, since = AgentState.ON_CALL.value, call.answered_at or call.busy_since
            direct = {"number": call.number, "answered": call.answered_at is not None}
        return {"id": agent.user_id, "name": agent.name, "extension": agent.extension, "state": state,
                "reason": agent.reason, "since": _iso(since), "calls_today": agent.calls_today,
                "queues": sorted(agent.skills), "direct_call": direct}

    def wallboard(self) -> dict[str, Any]:
        now = self.acd.timers.now()
        return {
            "generated_at": now.isoformat(),
            "queues": self.acd.queue_figures(),
            "agents": [self._agent_row(a) for a in sorted(self.acd.agents.values(), key=lambda a: a.extension)],
            "approvals": [{"agent_id": a.user_id, "name": a.name, "reason": a.awaiting_approval,
                           "since": _iso(a.awaiting_since)}
                          for a in self.acd.agents.values() if a.awaiting_approval],
            "live_calls": self._live_calls(),
            # The dialer's figures move without a version change: they are as of the last change or ping.
            "campaigns": self.dialer.status() if self.dialer is not None else [],
        }

    # -- actions ------------------------------------------------------------------------------------

    async def agent_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        acd = self.acd
        acd.messages.pop(user_id, None)

        def param(name: str) -> str:
            value = params.get(name)
            if not isinstance(value, str) or not value:
                raise ActionRefused(f"Missing {name}.")
            return value
        if action == "login":
            await acd.login(user_id)
        elif action == "logout":
            await acd.logout(user_id)
        elif action == "ready":
            await acd.ready(user_id)
        elif action == "pause":
            await acd.pause(user_id, param("reason"))
        elif action == "wrapup":
            note = params.get("note", "")
            code = param("code")
            self._callback_choice(user_id, code, params)
            await acd.wrapup(user_id, code, note if isinstance(note, str) else "")
        elif action == "dial":
            external = params.get("external_id")
            await acd.dial(user_id, param("number"),
                           external_id=external[:100] if isinstance(external, str) and external else None)
        elif action == "hold":
            await acd.hold(user_id)
        elif action == "unhold":
            await acd.unhold(user_id)
        elif action == "hangup":
            await acd.hangup(user_id)
        elif action == "transfer":
            await acd.transfer(user_id, params.get("mode", "blind"), param("kind"), param("target"))
        elif action == "transfer_complete":
            await acd.transfer_complete(user_id)
        elif action == "transfer_cancel":
            await acd.transfer_cancel(user_id)
        elif action == "callback_call":
            await acd.callback_call(user_id, param("id"))
        elif action == "callback_remove":
            await acd.callback_remove(user_id, param("id"))
        elif action in ("record_pause", "record_resume"):
            await self._pause_recording(user_id, action == "record_pause")
        elif action == "preview_dial":
            await self._need_dialer().preview_dial(user_id)
        elif action == "preview_skip":
            await self._need_dialer().preview_skip(user_id)
        else:
            raise ActionRefused(f"Unknown action {action!r}.")
        acd.notify()

    def _need_dialer(self) -> PanelDialer:
        if self.dialer is None:
            raise ActionRefused("There is no dialer.")
        return self.dialer

    def _callback_choice(self, user_id: int, code: str, params: Mapping[str, str]) -> None:
        """Puts the agent's callback choice on the campaign call being wrapped up (the same call
        ``AcdService.wrapup`` picks), where the dialer's ``wrapped_up`` reads it: ``callback_at`` (aware
        UTC) and ``callback_mine``, for a code whose action is ``callback``; other codes clear them."""
        agent = self.acd.agents.get(user_id)
        if agent is None or self.dialer is None or code not in self.acd.wrapup_codes:
            return  # AcdService.wrapup refuses it, or there is nothing to tell the dialer
        current = agent.current
        call = current if current is not None and current.agent is agent else agent.last_call
        if call is None or not call.campaign:
            return
        actions = {d["code"]: d["action"] for d in self.dialer.dispositions_for(call)}
        if actions.get(code) != "callback":
            call.extra.pop("callback_at", None)
            call.extra.pop("callback_mine", None)
            return
        raw = params.get("callback_at", "")
        if not isinstance(raw, str) or not raw.strip():
            raise ActionRefused("Pick when to call back (Call back at).")
        at = parse_callback_at(raw, self.acd.timers.now())
        mine = params.get("callback_mine", "")
        call.extra["callback_at"] = at
        call.extra["callback_mine"] = isinstance(mine, str) and mine.strip().lower() in TRUE_WORDS

    async def _pause_recording(self, user_id: int, paused: bool) -> None:
        agent = self.acd.agents.get(user_id)
        call = agent.current if agent is not None else None
        if call is None or self.recording is None or self.recording.state(call.record_id) is None:
            raise ActionRefused("Your call is not being recorded.")
        who = await self.accounts.user(user_id)
        by = who.login if who is not None else str(user_id)
        changed = await (self.recording.pause(call.record_id, by, "agent") if paused
                         else self.recording.resume(call.record_id, by))
        if not changed:
            raise ActionRefused("The recording is already paused." if paused else "The recording is not paused.")

    # -- scope (acd/scope.py) ------------------------------------------------------------------------

    def _scope_now(self, user_id: int) -> tuple[Scope | None, floor.UnitDirectory]:
        """The supervisor's scope and who is in which unit, read from the database now."""
        with self.db.session() as session:
            user = session.get(User, user_id)
            scope = supervisor_scope(session, user) if user is not None else None
            return scope, floor.load_directory(session, {n: q.spec for n, q in self.acd.queues.items()})

    async def wallboard_filter(self, user_id: int) -> floor.WallboardFilter:
        scope, directory = await asyncio.to_thread(self._scope_now, user_id)
        return floor.wallboard_filter(scope, directory)

    async def _check_scope(self, user_id: int, *, agent_id: int | None = None, extension: str | None = None,
                           queue: str | None = None) -> None:
        scope, directory = await asyncio.to_thread(self._scope_now, user_id)
        try:
            if agent_id is not None:
                floor.check_agent(scope, directory, agent_id)
            if extension is not None:
                floor.check_extension(scope, directory, extension)
            if queue is not None:
                floor.check_queue(scope, directory, queue)
        except floor.OutOfScope as refused:
            raise ActionRefused(str(refused), 403) from None

    def _campaign_queue(self, name: str) -> str:
        found = next((row for row in self._need_dialer().status() if row.get("name") == name), None)
        if found is None:
            raise ActionRefused(f"No campaign {name!r} is configured.", 404)
        return str(found.get("queue", ""))

    async def supervisor_action(self, user_id: int, action: str, params: Mapping[str, str]) -> None:
        """Every action is checked against the supervisor's scope first, read afresh."""
        supervisor = await self.accounts.user(user_id)
        name = supervisor.login if supervisor else str(user_id)
        if action.startswith("monitor_"):
            if action == "monitor_start":
                await self._check_scope(user_id, extension=str(params.get("extension", "")))
            await self._monitor_action(user_id, supervisor, action, params)
            return
        if action in ("campaign_start", "campaign_stop"):
            campaign = params.get("name", "")
            if not isinstance(campaign, str) or not campaign:
                raise ActionRefused("Missing name.")
            await self._check_scope(user_id, queue=self._campaign_queue(campaign))
            dialer = self._need_dialer()
            if action == "campaign_start":
                # Starting or resuming a campaign over its abandon target takes a second "yes": the page
                # shows the figures and sends ``confirm`` (DIA-3; the pacer brakes while it is over).
                row = next((r for r in dialer.status() if r.get("name") == campaign), {})
                over = over_target_figures(row)
                if over and str(params.get("confirm", "")).lower() not in TRUE_WORDS:
                    raise ActionRefused(f"Campaign {campaign} is over its abandon target of {row['target']:g}% "
                                     f"({', '.join(over)}). Confirm to start it anyway.", 409)
                await dialer.start_campaign(campaign, by=name)
            else:
                await dialer.stop_campaign(campaign, by=name)
            self.acd.notify()
            return
        raw = params.get("agent_id", "")
        if not isinstance(raw, str | int) or not str(raw).isdigit():
            raise ActionRefused("Missing agent_id.")
        agent_id = int(raw)
        if action not in ("approve_pause", "deny_pause", "logout_agent"):
            raise ActionRefused(f"Unknown action {action!r}.")
        await self._check_scope(user_id, agent_id=agent_id)
        if action == "approve_pause":
            await self.acd.decide_pause(name, agent_id, approve=True)
        elif action == "deny_pause":
            await self.acd.decide_pause(name, agent_id, approve=False)
        elif action == "logout_agent":
            await self.acd.logout(agent_id, by=name)
        else:
            raise ActionRefused(f"Unknown action {action!r}.")

    # -- monitoring (MON-3) -------------------------------------------------------------------------

    def _live_calls(self) -> list[dict[str, Any]]:
        """Calls supervisors can monitor: the ACD's connected calls, and answered direct calls (users'
        calls without the ACD: to each other, a DID routed to an extension, out through the trunk) with
        the other party's number and the answer time. A supervisor's own monitoring call is neither."""
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for agent in sorted(self.acd.agents.values(), key=lambda a: a.extension):
            call = agent.current
            if self.acd.live_leg(agent.extension) is not None and call is not None:
                rows.append({"agent": agent.extension, "agent_name": agent.name, "number": call.number,
                             "queue": call.queue, "direction": call.direction.value,
                             "since": _iso(call.answered_at or call.state_since)})
                seen.add(agent.extension)
        names = self.user_names()
        monitor = self.monitor
        for direct in monitor.direct.answered() if monitor is not None else []:
            if direct.extension in seen or direct.extension not in names or (
                    monitor is not None and monitor.supervising(direct.extension)):
                continue
            rows.append({"agent": direct.extension, "agent_name": names[direct.extension], "number": direct.number,
                         "queue": None, "direction": "direct", "since": _iso(direct.answered_at)})
        for row in rows:
            row["monitored_by"] = self.monitor.watchers(row["agent"]) if self.monitor else []
        return rows

    def monitor_view(self, user_id: int) -> dict[str, Any]:
        monitor = self.monitor
        session = monitor.session_of_supervisor(user_id) if monitor else None
        return {
            "session": None if session is None else {
                "id": session.id, "agent": session.agent.extension, "agent_name": session.agent.name,
                "mode": session.mode.value, "state": session.state},
            "can_monitor": bool(monitor and self._supervisor_ref(user_id) is not None),
        }

    def _supervisor_ref(self, user_id: int) -> UserRef | None:
        extension = next((ext for ext, uid in self.user_ids().items() if uid == user_id), None)
        if extension is None:
            return None
        return UserRef(user_id, extension, self.user_names().get(extension, extension))

    async def _monitor_action(self, user_id: int, supervisor: PanelUser | None, action: str,
                              params: Mapping[str, str]) -> None:
        monitor = self.monitor
        if monitor is None or supervisor is None:
            raise ActionRefused("Monitoring is not available.")

        def mode() -> Mode:
            try:
                return Mode(str(params.get("mode", "")))
            except ValueError:
                raise ActionRefused("Mode must be silent, whisper or barge.") from None
        try:
            if action == "monitor_start":
                me = self._supervisor_ref(user_id)
                if me is None:
                    raise ActionRefused("You need an extension (a phone) to monitor calls.")
                await monitor.start_from_panel(me, str(params.get("extension", "")), mode())
            elif action in ("monitor_mode", "monitor_stop"):
                session = monitor.session_of_supervisor(user_id)
                if session is None:
                    raise ActionRefused("You are not monitoring a call.")
                if action == "monitor_mode":
                    await monitor.set_mode(session, mode(), "panel")
                else:
                    await monitor.stop(session)
            else:
                raise ActionRefused(f"Unknown action {action!r}.")
        except MonitorError as exc:
            raise ActionRefused(str(exc)) from None
        self.acd.notify()

    # -- changes ------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.acd.version

    async def wait_change(self, version: int, timeout: float) -> int:
        return await self.acd.wait_change(version, timeout)
