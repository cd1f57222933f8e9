from pathlib import Path

import pytest

from callcenter.bus import Bus
from callcenter.calls.services import CallService, CallState, OwnedChannel
from callcenter.calls.settings import DidRoute
from callcenter.errors import AriError, AriNotFound
from callcenter.ivr.events import StartIvr
from callcenter.ivr.prompts import PromptCatalog


class FakeControl:
    def __init__(self) -> None:
        self.actions: list[tuple[str, ...]] = []
        self.playbacks: set[str] = set()
        self.fail: dict[str, Exception] = {}

    async def _do(self, *action: str) -> None:
        if action[0] in self.fail:
            raise self.fail[action[0]]
        self.actions.append(action)

    async def answer(self, channel_id: str) -> None:
        await self._do("answer", channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self._do("hangup", channel_id)

    async def play(self, channel_id: str, media: list[str] | str, playback_id: str, lang: str | None = None) -> None:
        await self._do("play", channel_id, str(media))
        self.playbacks.add(playback_id)

    async def playback_exists(self, playback_id: str) -> bool:
        return playback_id in self.playbacks

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str, priority: int = 1) -> None:
        await self._do("continue", channel_id, context, extension)


@pytest.fixture
def control() -> FakeControl:
    return FakeControl()


@pytest.fixture
def service(control: FakeControl, tmp_path: Path) -> CallService:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "welcome.wav").write_bytes(b"RIFF")
    dids = {"1000": DidRoute("Demo", "greeting:welcome"), "1001": DidRoute("Sales", "extension:2002"),
            "1002": DidRoute("IVR", "ivr:main"), "1003": DidRoute("Missing", "ivr:nope")}
    bus = Bus()
    ivr = FakeIvr()
    bus.serve(StartIvr, ivr.start_requested)
    service = CallService(control, dids, PromptCatalog(tmp_path, "/srv/sounds", None), bus)
    service.ivr = ivr  # type: ignore[attr-defined]  # what the tests look at
    return service


class FakeIvr:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, str, str, bool]] = []

    async def start_requested(self, request: StartIvr) -> bool:
        if request.flow != "main":
            return False
        self.started.append((request.channel_id, request.flow, request.caller, request.did, request.answered))
        return True


async def test_did_routed_to_an_ivr_flow_starts_it_or_says_no_service(service: CallService,
                                                                     control: FakeControl) -> None:
    await service.start("ch7", ("did", "1002"), caller="0049")
    assert service.ivr.started == [("ch7", "main", "0049", "1002", False)]  # type: ignore[union-attr]
    assert service.calls["ch7"].state is CallState.IVR
    await service.start("ch8", ("did", "1003"))
    assert ("play", "ch8", "sound:no-service") in control.actions


async def test_greeting_answers_plays_our_prompt_and_hangs_up_when_it_ends(service: CallService,
                                                                             control: FakeControl) -> None:
    await service.start("ch1", ("did", "1000"))
    assert control.actions == [("answer", "ch1"), ("play", "ch1", "sound:/srv/sounds/en/welcome")]
    call = service.calls["ch1"]
    assert call.state is CallState.PLAYING
    await service.playback_finished("some-other-playback")
    assert call.state is CallState.PLAYING
    await service.playback_finished(call.playback_id or "")
    assert control.actions[-1] == ("hangup", "ch1")
    service.ended("ch1")
    assert service.calls == {}
    assert call.history == [CallState.ANSWERING, CallState.PLAYING, CallState.HANGING_UP]


async def test_unknown_number_hears_no_service_from_our_prompts_or_asterisks(service: CallService,
                                                                            control: FakeControl) -> None:
    await service.start("ch2", ("did", "4711"))
    await service.start("ch3", ("feature", "*99"))
    plays = [a for a in control.actions if a[0] == "play"]
    assert plays == [("play", "ch2", "sound:no-service"), ("play", "ch3", "sound:no-service")]


async def test_did_routed_to_an_extension_goes_back_to_the_dialplan(service: CallService,
                                                                    control: FakeControl) -> None:
    await service.start("ch4", ("did", "1001"))
    assert control.actions == [("continue", "ch4", "users", "2002")]
    assert service.calls["ch4"].state is CallState.ROUTING


async def test_caller_gone_before_answer_is_forgotten(service: CallService, control: FakeControl) -> None:
    control.fail["answer"] = AriNotFound("POST", "/channels/ch5/answer", 404, "Channel not found")
    await service.start("ch5", ("did", "1000"))
    assert service.calls == {}


async def test_asterisk_refusing_a_step_hangs_the_call_up(service: CallService, control: FakeControl) -> None:
    control.fail["play"] = AriError("POST", "/play", 500, "boom")
    await service.start("ch6", ("did", "1000"))
    assert control.actions[-1] == ("hangup", "ch6")


async def test_resync_forgets_gone_calls_finishes_missed_playbacks_and_adopts_unknown_channels(
        service: CallService, control: FakeControl) -> None:
    await service.start("gone", ("did", "1000"))
    await service.start("missed", ("did", "1000"))
    await service.start("still-playing", ("did", "1000"))
    control.playbacks.discard(service.calls["missed"].playback_id or "")
    control.actions.clear()
    await service.resync({
        "missed": OwnedChannel(("did", "1000"), answered=True),
        "still-playing": OwnedChannel(("did", "1000"), answered=True),
        "adopted": OwnedChannel(("did", "1000"), answered=True),
    })
    assert "gone" not in service.calls
    assert ("hangup", "missed") in control.actions
    assert not any(a[1] == "still-playing" for a in control.actions)
    # The adopted channel is already up: it is not answered again (that would wait behind a playback).
    assert [a for a in control.actions if a[1] == "adopted"] == [("play", "adopted", "sound:/srv/sounds/en/welcome")]


async def test_a_caller_who_hung_up_while_the_controller_was_away_ends_their_journey(
        control: FakeControl, tmp_path: Path) -> None:
    import contextlib

    from callcenter.calls.events import CallFinished
    from callcenter.calls.journeys import Journeys
    bus = Bus()
    bus.serve(StartIvr, FakeIvr().start_requested)
    finished: list[CallFinished] = []
    bus.subscribe(CallFinished, finished.append)
    journeys = Journeys(bus, contextlib.nullcontext)
    service = CallService(control, {"1002": DidRoute("IVR", "ivr:main")},
                          PromptCatalog(tmp_path, "/srv/sounds", None), bus, journeys)
    await service.start("left", ("did", "1002"), caller="601000001")
    await service.start("stays", ("did", "1002"), caller="601000002")
    await service.resync({"stays": OwnedChannel(("did", "1002"), answered=True)})
    [gone] = [event.summary for event in finished]
    assert (gone.session_id, gone.number, gone.flow, gone.outcome) == ("left", "601000001", "main", "abandoned")
    assert list(journeys.by_channel) == ["stays"]
