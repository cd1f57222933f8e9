"""ARI events reach the feature that holds the channel (callcenter/ari/routing.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from callcenter.ari.events import AriEvent, RecordingEnded, StasisStart, parse_event
from callcenter.ari.routing import ChannelHandlers, ChannelRouter
from tests.support import routing


def event(kind: str, **data: Any) -> AriEvent:
    return parse_event({"type": kind, "application": "callcenter", **data})


def start(channel: str, *args: str) -> AriEvent:
    return event("StasisStart", channel={"id": channel}, args=list(args))


class Feature:
    """Writes down every event it is given, as (feature, event, channel, detail)."""

    def __init__(self, name: str, log: list[tuple[str, ...]], holds: Iterable[str] = ()) -> None:
        self.name = name
        self.log = log
        self.holds = set(holds)
        self.offered: set[str] | None = None

    def handlers(self) -> ChannelHandlers:
        async def started(e: StasisStart) -> None:
            self.log.append((self.name, "start", e.channel.id, ",".join(e.args)))

        async def dtmf(channel: str, digit: str) -> None:
            self.log.append((self.name, "dtmf", channel, digit))

        async def finished(channel: str, playback: str) -> None:
            self.log.append((self.name, "played", channel, playback))

        async def ended(channel: str) -> None:
            self.log.append((self.name, "end", channel, ""))

        async def destroyed(channel: str, cause: int) -> None:
            self.log.append((self.name, "destroyed", channel, str(cause)))

        async def resync(channels: set[str]) -> Iterable[str]:
            self.offered = channels
            return self.holds & channels

        return ChannelHandlers(started=started, dtmf=dtmf, playback_finished=finished, ended=ended,
                               destroyed=destroyed, resync=resync)


@pytest.fixture
def log() -> list[tuple[str, ...]]:
    return []


@pytest.fixture
def world(log: list[tuple[str, ...]]) -> tuple[ChannelRouter, dict[str, Feature]]:
    router = routing.router()
    features = {name: Feature(name, log) for name in ("acd", "dialer", "ivr", "calls")}
    router.register("acd", features["acd"].handlers(), stasis_args=("acd",))
    router.register("dialer", features["dialer"].handlers(), stasis_args=("dialer", "dialer-amd"))
    router.register("ivr", features["ivr"].handlers())
    router.register("calls", features["calls"].handlers(), default=True)
    return router, features


async def test_a_channel_goes_to_the_feature_of_its_stasis_argument_else_to_the_default(
        world: tuple[ChannelRouter, dict[str, Feature]], log: list[tuple[str, ...]]) -> None:
    router, _ = world
    await router.dispatch(start("a", "acd", "x"))
    await router.dispatch(start("b", "dialer-amd", "HUMAN"))
    await router.dispatch(start("c", "did", "1000"))
    await router.dispatch(start("d"))
    assert log == [("acd", "start", "a", "acd,x"), ("dialer", "start", "b", "dialer-amd,HUMAN"),
                   ("calls", "start", "c", "did,1000"), ("calls", "start", "d", "")]
    assert [router.owner(c) for c in "abcd"] == ["acd", "dialer", "calls", "calls"]


async def test_keys_and_playbacks_go_to_the_newest_holder_and_the_end_to_every_holder_newest_first(
        world: tuple[ChannelRouter, dict[str, Feature]], log: list[tuple[str, ...]]) -> None:
    router, _ = world
    await router.dispatch(start("c", "did", "1002"))
    router.take("c", "ivr")  # the call service handed it to an IVR flow
    await router.dispatch(event("ChannelDtmfReceived", channel={"id": "c"}, digit="1"))
    router.take("c", "acd")  # the flow queued the caller
    await router.dispatch(event("ChannelDtmfReceived", channel={"id": "c"}, digit="2"))
    await router.dispatch(event("PlaybackFinished", playback={"id": "p1", "target_uri": "channel:c"}))
    log.clear()
    await router.dispatch(event("StasisEnd", channel={"id": "c"}))
    await router.dispatch(event("ChannelDestroyed", channel={"id": "c"}, cause=16))
    assert log == [("acd", "end", "c", ""), ("ivr", "end", "c", ""), ("calls", "end", "c", ""),
                   ("acd", "destroyed", "c", "16"), ("ivr", "destroyed", "c", "16"),
                   ("calls", "destroyed", "c", "16")]
    assert router.holders("c") == ()  # forgotten once destroyed


async def test_keys_went_to_the_holder_of_the_moment(world: tuple[ChannelRouter, dict[str, Feature]],
                                                     log: list[tuple[str, ...]]) -> None:
    router, _ = world
    await router.dispatch(start("c", "did", "1002"))
    router.take("c", "ivr")
    await router.dispatch(event("ChannelDtmfReceived", channel={"id": "c"}, digit="1"))
    router.take("c", "acd")
    await router.dispatch(event("ChannelDtmfReceived", channel={"id": "c"}, digit="2"))
    router.take("c", "ivr")  # the queue overflowed to a flow: the IVR has the caller again
    await router.dispatch(event("ChannelDtmfReceived", channel={"id": "c"}, digit="3"))
    assert [e for e in log if e[1] == "dtmf"] == [("ivr", "dtmf", "c", "1"), ("acd", "dtmf", "c", "2"),
                                                  ("ivr", "dtmf", "c", "3")]
    assert router.holders("c") == ("calls", "acd", "ivr")


async def test_a_channel_taken_before_it_rang_hears_its_end_without_ever_entering_the_app(
        world: tuple[ChannelRouter, dict[str, Feature]], log: list[tuple[str, ...]]) -> None:
    router, _ = world
    router.claims_for("acd").take("ring-1")  # the ACD originates an agent's phone
    await router.dispatch(event("ChannelDestroyed", channel={"id": "ring-1"}, cause=19))
    await router.dispatch(event("ChannelDestroyed", channel={"id": "nobody's"}, cause=16))
    assert log == [("acd", "destroyed", "ring-1", "19")]


async def test_the_dialer_hands_a_person_to_the_acd_which_ends_the_call_before_the_dialer_books_it(
        world: tuple[ChannelRouter, dict[str, Feature]], log: list[tuple[str, ...]]) -> None:
    router, _ = world
    router.claims_for("dialer").take("p")
    await router.dispatch(start("p", "dialer"))
    router.claims_for("acd").take("p")
    await router.dispatch(event("ChannelDestroyed", channel={"id": "p"}, cause=16))
    assert log[1:] == [("acd", "destroyed", "p", "16"), ("dialer", "destroyed", "p", "16")]


async def test_a_playback_on_a_bridge_is_offered_to_every_feature_that_plays(
        world: tuple[ChannelRouter, dict[str, Feature]], log: list[tuple[str, ...]]) -> None:
    router, _ = world
    await router.dispatch(event("PlaybackFinished", playback={"id": "p9", "target_uri": "bridge:b1"}))
    assert sorted(e[0] for e in log) == ["acd", "calls", "dialer", "ivr"]
    log.clear()
    await router.dispatch(event("PlaybackFinished", playback={"id": "p8", "target_uri": "channel:unknown"}))
    assert log == []


async def test_events_of_no_channel_reach_their_listeners(log: list[tuple[str, ...]]) -> None:
    router = routing.router()

    async def heard(e: AriEvent) -> None:
        assert isinstance(e, RecordingEnded)
        log.append(("recording", e.name, str(e.failed)))

    router.listen(RecordingEnded, heard)
    await router.dispatch(event("RecordingFailed", recording={"name": "r1", "cause": "x"}))
    await router.dispatch(event("RecordingFinished", recording={"name": "r2"}))
    assert log == [("recording", "r1", "True"), ("recording", "r2", "False")]


async def test_after_a_reconnect_the_default_feature_gets_only_what_nobody_else_holds(
        log: list[tuple[str, ...]]) -> None:
    in_app = {"queued", "in-ivr", "dialled", "greeting", "left-over"}

    async def channels() -> set[str]:
        return set(in_app)

    router = ChannelRouter(channels)
    acd, ivr, calls = Feature("acd", log, holds={"queued"}), Feature("ivr", log), Feature("calls", log)
    router.register("acd", acd.handlers(), stasis_args=("acd",))
    router.register("dialer", ChannelHandlers(), stasis_args=("dialer",))  # no resync: keeps its own
    router.register("ivr", ivr.handlers())
    router.register("calls", calls.handlers(), default=True)
    for channel in ("queued", "in-ivr", "greeting"):
        router.take(channel, "calls")
    router.take("queued", "acd")
    router.take("in-ivr", "ivr")
    router.take("dialled", "dialer")
    calls.holds = {"in-ivr", "greeting", "left-over"}  # "left-over": adopted after a controller restart
    await router.connected()
    assert acd.offered == in_app and ivr.offered == in_app
    assert calls.offered == {"in-ivr", "greeting", "left-over"}
    assert router.owner("in-ivr") == "ivr"  # adopting does not take a channel from the IVR
    assert router.owner("left-over") == "calls"


def test_two_features_cannot_take_the_same_argument_or_both_be_the_default() -> None:
    router = routing.router()
    router.register("acd", ChannelHandlers(), stasis_args=("acd",))
    with pytest.raises(ValueError, match="taken by 'acd'"):
        router.register("other", ChannelHandlers(), stasis_args=("acd",))
    router.register("calls", ChannelHandlers(), default=True)
    with pytest.raises(ValueError, match="unclaimed"):
        router.register("calls2", ChannelHandlers(), default=True)
    with pytest.raises(ValueError, match="twice"):
        router.register("acd", ChannelHandlers())
