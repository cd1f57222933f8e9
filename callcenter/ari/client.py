"""The one module that talks HTTP to Asterisk: ARI REST calls and the event websocket.

It owns auth, timeouts, reconnect with jittered backoff and the resync hook after every (re)connect
(Asterisk replays no StasisStart for channels already in the app). The websocket reader does nothing
but read and queue: a slow reader is disconnected by Asterisk (ASTERISK-NOTES).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from callcenter import metrics
from callcenter.ari.events import AriEvent, Channel, parse_event
from callcenter.errors import AriError, AriNotFound

log = logging.getLogger(__name__)

EventHandler = Callable[[AriEvent], Awaitable[None]]
ConnectHandler = Callable[[], Awaitable[None]]


class AriClient:
    def __init__(self, base_url: str, user: str, password: str, app: str, *,
                 request_timeout: float = 5.0, reconnect_min: float = 0.2, reconnect_max: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.request_timeout = request_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._session: aiohttp.ClientSession | None = None
        self.connected = asyncio.Event()
        self.last_error = "not connected yet"
        self.connections = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._down_logged = False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self.headers, connector=aiohttp.TCPConnector(limit=100),
                timeout=aiohttp.ClientTimeout(total=self.request_timeout))
        return self._session

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    # -- REST ---------------------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, timeout: float | None = None) -> Any:
        url = f"{self.base_url}/ari{path}"
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        started = time.perf_counter()
        try:
            async with self.session.request(
                    method, url, params=query, json=body,
                    timeout=aiohttp.ClientTimeout(total=timeout or self.request_timeout)) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AriError(method, path, 0, f"{type(exc).__name__}: {exc}") from None
        finally:
            metrics.ARI_REQUESTS.labels(method).observe(time.perf_counter() - started)
        if status >= 400:
            message = text
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(text).get("message", text)
            # A channel named in the query (addChannel's ``channel``) that is gone is a 400 with this message:
            # the party hung up, like a 404 on the path.
            gone = status == 404 or (status == 400 and str(message).startswith("Channel not found"))
            cls = AriNotFound if gone else AriError
            raise cls(method, path, status, message)
        if not text:
            return None
        return json.loads(text)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def play(self, channel_id: str, media: list[str] | str, playback_id: str,
                   lang: str | None = None) -> None:
        media_list = [media] if isinstance(media, str) else media
        await self.request("POST", f"/channels/{channel_id}/play/{playback_id}",
                           params={"media": ",".join(media_list), "lang": lang})

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def playback_exists(self, playback_id: str) -> bool:
        try:
            await self.request("GET", f"/playbacks/{playback_id}")
        except AriNotFound:
            return False
        return True

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str,
                                   priority: int = 1) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue",
                           params={"context": context, "extension": extension, "priority": priority})

    async def originate(self, channel_id: str, endpoint: str, caller_id: str, timeout: int,
                        args: list[str], originator: str | None = None) -> None:
        """Rings ``endpoint``; when it answers, the channel enters our app with ``args``. With an
        ``originator`` the new channel joins that channel's call (its linkedid): one call, one CDR."""
        await self.request("POST", f"/channels/{channel_id}", params={
            "endpoint": endpoint, "app": self.app, "appArgs": ",".join(args), "callerId": caller_id,
            "timeout": timeout, "originator": originator})

    async def subscribe_channel(self, channel_id: str) -> None:
        """Events of ``channel_id`` reach the app even while it runs dialplan outside Stasis."""
        await self.request("POST", f"/applications/{self.app}/subscription",
                           params={"eventSource": f"channel:{channel_id}"})

    async def snoop(self, channel_id: str, snoop_id: str, spy: str, whisper: str, args: list[str]) -> None:
        """A snoop channel on ``channel_id`` enters our app with ``args``: it hears the channel's audio
        (``spy``: none, in, out, both) and speaks into it (``whisper``)."""
        await self.request("POST", f"/channels/{channel_id}/snoop", params={
            "app": self.app, "appArgs": ",".join(args), "spy": spy, "whisper": whisper, "snoopId": snoop_id})

    async def endpoint_channels(self, technology: str, resource: str) -> list[dict[str, Any]]:
        """The channels Asterisk has on an endpoint (a user's phone), as ARI describes them."""
        endpoint = await self.request("GET", f"/endpoints/{technology}/{resource}")
        channels = []
        for channel_id in (endpoint or {}).get("channel_ids", []):
            with contextlib.suppress(AriNotFound):
                channels.append(await self.request("GET", f"/channels/{channel_id}"))
        return channels

    async def record_bridge(self, bridge_id: str, name: str, audio_format: str = "wav") -> None:
        """Records the bridge's mixed audio to ``<spool>/recording/<name>.<format>`` until stopped or
        until the bridge goes (then Asterisk sends RecordingFinished)."""
        await self.request("POST", f"/bridges/{bridge_id}/record", params={
            "name": name, "format": audio_format, "ifExists": "overwrite", "beep": False, "terminateOn": "none"})

    async def mute_recording(self, name: str, muted: bool) -> None:
        """A muted recording goes on writing silence: a pause leaves a gap of the right length."""
        await self.request("POST" if muted else "DELETE", f"/recordings/live/{name}/mute")

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", params={"variable": name, "value": value})

    async def get_variable(self, channel_id: str, name: str) -> str:
        try:
            result = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        except AriNotFound:
            return ""
        return str((result or {}).get("value", ""))

    async def start_moh(self, channel_id: str, moh_class: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def create_bridge(self, bridge_id: str, kind: str) -> None:
        # A two-party mixing bridge goes native RTP and swallows DTMF unless asked for dtmf_events.
        bridge_type = "mixing,dtmf_events" if kind == "mixing" else kind
        await self.request("POST", f"/bridges/{bridge_id}", params={"type": bridge_type, "name": bridge_id})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params={"channel": channel_id})

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id})

    async def bridge_moh(self, bridge_id: str, moh_class: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", params={"mohClass": moh_class})

    async def list_bridges(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/bridges")
        return result

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{channel_id}"))

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def channels_in_app(self) -> set[str]:
        """The channels the app still owns (none when Asterisk does not know the app yet)."""
        try:
            result: dict[str, Any] = await self.request("GET", f"/applications/{self.app}")
        except AriNotFound:
            return set()
        return {str(channel_id) for channel_id in result.get("channel_ids", [])}

    async def reload_module(self, module: str) -> None:
        await self.request("PUT", f"/asterisk/modules/{module}")

    async def asterisk_info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/asterisk/info")
        return result

    # -- events -------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # Full jitter: many controllers (or a restart storm) do not reconnect in lockstep.
        ceiling = min(self.reconnect_max, self.reconnect_min * (2 ** min(attempt, 16)))
        return random.uniform(self.reconnect_min, max(self.reconnect_min, ceiling))

    async def run(self, on_event: EventHandler, on_connect: ConnectHandler) -> None:
        """Reads events until cancelled, reconnecting for ever. ``on_connect`` runs after each
        (re)connection, before queued events are handled, so the domain can resync first."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        dispatcher = asyncio.create_task(self._dispatch(queue, on_event), name="ari-dispatch")
        attempt = 0
        try:
            while True:
                try:
                    await self._read_socket(queue, on_connect)
                    attempt = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                finally:
                    self.connected.clear()
                    metrics.ARI_CONNECTED.set(0)
                if not self._down_logged:
                    log.warning("ARI event socket down (%s); reconnecting", self.last_error)
                    self._down_logged = True
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    async def _read_socket(self, queue: asyncio.Queue[dict[str, Any] | None],
                           on_connect: ConnectHandler) -> None:
        url = self.base_url.replace("http", "ws", 1) + "/ari/events"
        async with self.session.ws_connect(
                url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=20,
                timeout=aiohttp.ClientWSTimeout(ws_close=2), max_msg_size=0,
                compress=0, autoping=True) as ws:
            self._ws = ws
            self.connections += 1
            metrics.ARI_RECONNECTS.inc()
            if self._down_logged:
                log.info("ARI event socket back (connection %d); resyncing", self.connections)
                self._down_logged = False
            # The domain resyncs before events that arrived meanwhile are handled: they wait in the
            # queue behind this marker.
            await on_connect()
            self.connected.set()
            self.last_error = ""
            metrics.ARI_CONNECTED.set(1)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    queue.put_nowait(json.loads(message.data))
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
            self.last_error = f"socket closed ({ws.close_code})"
        self._ws = None

    async def _dispatch(self, queue: asyncio.Queue[dict[str, Any] | None], on_event: EventHandler) -> None:
        while True:
            data = await queue.get()
            if data is None:
                continue
            event = parse_event(data)
            metrics.ARI_EVENTS.labels(event.type).inc()
            try:
                await on_event(event)
            except Exception:  # a bad event must never stop the controller
                log.exception("handling ARI event %s failed", event.type)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
