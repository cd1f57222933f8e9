import asyncio
import json
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from callcenter.ami.client import AmiClient, _ForgetUnlessIdempotent, _Utf8Protocol
from callcenter.ari.client import AriClient
from callcenter.ari.events import ChannelDtmfReceived, PlaybackFinished, StasisStart, parse_event
from callcenter.bus import Bus
from callcenter.errors import AmiError, AriError, AriNotFound
from callcenter.users.events import PhoneStateChanged, PhoneStatesReplaced
from callcenter.users.presence import PhonePresence


def test_events_become_typed_objects() -> None:
    start = parse_event({"type": "StasisStart", "application": "cc", "timestamp": "t", "args": ["did", "1000"],
                         "channel": {"id": "c1", "name": "PJSIP/pstn-1", "state": "Ring",
                                     "caller": {"number": "0049", "name": "X"},
                                     "dialplan": {"context": "from-pstn", "exten": "1000"}}})
    assert isinstance(start, StasisStart)
    assert start.args == ("did", "1000")
    assert (start.channel.caller_number, start.channel.exten) == ("0049", "1000")
    dtmf = parse_event({"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 120, "channel": {"id": "c1"}})
    assert isinstance(dtmf, ChannelDtmfReceived) and dtmf.digit == "5"
    done = parse_event({"type": "PlaybackFinished", "playback": {"id": "p1", "state": "done"}})
    assert isinstance(done, PlaybackFinished) and done.playback.id == "p1"
    assert type(parse_event({"type": "SomethingNew"})).__name__ == "AriEvent"


class FakeAri:
    """A small ARI stand-in: the only way to cut the socket at will and count reconnects."""

    def __init__(self) -> None:
        self.sockets: list[web.WebSocketResponse] = []
        self.connects = 0

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        assert request.query["app"] == "cc"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connects += 1
        self.sockets.append(ws)
        start = {"type": "StasisStart", "args": ["did", "1000"], "channel": {"id": f"c{self.connects}"}}
        await ws.send_str(json.dumps(start))
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    async def channel(self, request: web.Request) -> web.Response:
        if request.match_info["id"] == "missing":
            return web.json_response({"message": "Channel not found"}, status=404)
        if request.match_info["id"] == "broken":
            return web.json_response({"message": "Internal"}, status=500)
        return web.json_response({"id": request.match_info["id"], "name": "PJSIP/x", "state": "Up"})

    async def add_channel(self, request: web.Request) -> web.Response:
        # Asterisk 22: a channel named in the query that is gone is a 400, not a 404.
        if request.query["channel"] == "gone":
            return web.json_response({"message": "Channel not found"}, status=400)
        return web.json_response({"message": "Channel not in Stasis application"}, status=422)


@pytest.fixture
async def fake_ari(aiohttp_unused_port: Any = None) -> Any:
    fake = FakeAri()
    app = web.Application()
    app.router.add_get("/ari/events", fake.events)
    app.router.add_get("/ari/channels/{id}", fake.channel)
    app.router.add_post("/ari/bridges/{id}/addChannel", fake.add_channel)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_ari_client_reconnects_and_resyncs_before_handling_events(fake_ari: Any) -> None:
    fake, url = fake_ari
    client = AriClient(url, "u", "p", "cc", reconnect_min=0.01, reconnect_max=0.05)
    order: list[str] = []

    async def on_event(event: Any) -> None:
        order.append(f"event {event.channel.id}")

    async def on_connect() -> None:
        order.append("resync")

    task = asyncio.create_task(client.run(on_event, on_connect))
    for _ in range(100):
        if order[-1:] == ["event c1"]:
            break
        await asyncio.sleep(0.01)
    await fake.sockets[0].close()  # the network drops
    for _ in range(200):
        if order[-1:] == ["event c2"]:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    assert order == ["resync", "event c1", "resync", "event c2"]
    assert client.connections == 2


async def test_ari_rest_errors_are_typed(fake_ari: Any) -> None:
    _fake, url = fake_ari
    client = AriClient(url, "u", "p", "cc")
    assert (await client.get_channel("c9")).state == "Up"
    with pytest.raises(AriNotFound):
        await client.get_channel("missing")
    with pytest.raises(AriError) as error:
        await client.get_channel("broken")
    assert error.value.status == 500 and "Internal" in str(error.value)
    # A party that hung up while being bridged is "not found" too, so callers treat it as gone.
    with pytest.raises(AriNotFound):
        await client.add_to_bridge("b1", "gone")
    with pytest.raises(AriError) as error:
        await client.add_to_bridge("b1", "elsewhere")
    assert error.value.status == 422 and not isinstance(error.value, AriNotFound)
    await client.close()
    dead = AriClient("http://127.0.0.1:9", "u", "p", "cc", request_timeout=0.5)
    with pytest.raises(AriError) as error:
        await dead.get_channel("c1")
    assert error.value.status == 0
    await dead.close()


def test_ami_decodes_a_character_split_across_reads() -> None:
    received: list[dict[str, str]] = []

    class Factory:
        save_stream = None

        def dispatch(self, message: Any) -> None:
            received.append(dict(message))

    protocol = _Utf8Protocol()
    protocol.connection_made(type("T", (), {"write": lambda *_: None, "close": lambda *_: None})())
    protocol.factory = Factory()
    protocol.encoding = "utf-8"
    data = "Event: DeviceStateChange\r\nDevice: PJSIP/2001\r\nName: Zoë Šimić\r\n\r\n".encode()
    split = data.index("ë".encode()) + 1
    protocol.data_received(data[:split])
    protocol.data_received(data[split:])
    assert received and received[0]["Name"] == "Zoë Šimić"


def test_ami_resends_only_read_only_actions_after_a_reconnect() -> None:
    forget = _ForgetUnlessIdempotent()
    assert "originate" in forget and "redirect" in forget and "login" in forget
    assert "devicestatelist" not in forget and "coreshowchannels" not in forget


async def test_ami_action_without_connection_fails_clearly() -> None:
    client = AmiClient("127.0.0.1", 9, "u", "p")
    from callcenter.errors import AmiError
    with pytest.raises(AmiError, match="not connected"):
        await client.action({"Action": "DeviceStateList"})


def test_phone_presence_follows_device_states() -> None:
    presence = PhonePresence()
    presence.device_state("PJSIP/2001", "NOT_INUSE")
    presence.device_state("Queue:sales", "INUSE")
    presence.device_state("PJSIP/2002", "BOGUS")
    assert presence.states == {"2001": "NOT_INUSE"}
    assert presence.registered("2001") and not presence.registered("2002")
    presence.replace_all([{"Event": "DeviceStateChange", "Device": "PJSIP/2002", "State": "INUSE"},
                          {"Event": "DeviceStateListComplete"}])
    assert presence.states == {"2002": "INUSE"}


async def test_phone_presence_tells_the_bus_about_users_phones_only_and_resyncs_after_login() -> None:
    """Before: the composition root (app.py _device_state, _ami_resync) handed device states to monitoring
    and the ACD itself."""
    bus = Bus()
    heard: list[object] = []
    bus.subscribe(PhoneStateChanged, heard.append)
    bus.subscribe(PhoneStatesReplaced, heard.append)

    async def device_list() -> list[dict[str, str]]:
        return [{"Event": "DeviceStateChange", "Device": "PJSIP/2001", "State": "INUSE"},
                {"Event": "DeviceStateChange", "Device": "PJSIP/pstn", "State": "NOT_INUSE"}]

    presence = PhonePresence(bus, lambda extension: extension.isdigit(), device_list)
    await presence.on_device_state({"Device": "PJSIP/2002", "State": "RINGING"})
    await presence.on_device_state({"Device": "PJSIP/pstn", "State": "INUSE"})  # a trunk, no user
    await presence.resync()
    assert heard == [PhoneStateChanged("2002", "RINGING"), PhoneStatesReplaced({"2001": "INUSE"})]
    assert presence.states == {"2001": "INUSE", "pstn": "NOT_INUSE"}

    async def ami_down() -> list[dict[str, str]]:
        raise AmiError("AMI not connected: refused")

    presence.device_states = ami_down
    await presence.resync()  # logged, what we knew stays
    assert presence.states == {"2001": "INUSE", "pstn": "NOT_INUSE"}
