"""The tone tools the monitoring tests hear with: the A-law encoder, the RTP pcap sipp replays, and
tone detection (tests/support/tones.py)."""

from __future__ import annotations

import itertools
import math
import wave
from pathlib import Path

import pytest

from tests.support import sipp
from tests.support.tones import (
    HEARD_DB,
    SILENCE_DB,
    alaw_decode,
    alaw_encode,
    goertzel_levels,
    heard,
    read_rtp_pcap,
    sine_samples,
    tone_pcap,
    tones_in_wav,
)


@pytest.mark.parametrize(("sample", "code"), [
    # Checked against Python 3.11's audioop.lin2alaw for every 16-bit sample.
    (0, 0xD5), (15, 0xD5), (16, 0xD4), (-1, 0x55), (-16, 0x55), (-17, 0x54),
    (32767, 0xAA), (-32768, 0x2A), (40000, 0xAA), (-40000, 0x2A),  # clipped
    (256, 0xC5), (-256, 0x5A), (1000, 0xFA), (-1000, 0x7A), (5504, 0x80), (-5504, 0x00),
])
def test_alaw_encodes_known_values(sample: int, code: int) -> None:
    assert alaw_encode(sample) == code


def test_alaw_decodes_known_values_and_round_trips_within_a_step() -> None:
    assert [alaw_decode(c) for c in (0xD5, 0x55, 0xAA, 0x2A, 0x80, 0x00)] == [8, -8, 32256, -32256, 5504, -5504]
    # Every code decodes to a value of its own that encodes back to it.
    assert all(alaw_encode(alaw_decode(code)) == code for code in range(256))
    assert len({alaw_decode(code) for code in range(256)}) == 256
    for sample in range(-32768, 32768, 37):
        error = abs(alaw_decode(alaw_encode(sample)) - sample)
        assert error <= max(8, abs(sample) / 32), sample  # at most half a step of its segment


def test_tone_pcap_is_rtp_pcma_paced_20_ms(tmp_path: Path) -> None:
    path = tone_pcap(tmp_path / "tone.pcap", 1000, seconds=2)
    data = path.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1")  # little-endian libpcap, as sipp reads with libpcap
    packets = read_rtp_pcap(path)
    assert len(packets) == 100
    assert [p.seq for p in packets] == list(range(100))
    assert [p.timestamp for p in packets] == [160 * i for i in range(100)]
    assert all(math.isclose(b.time - a.time, 0.02, abs_tol=1e-6) for a, b in itertools.pairwise(packets))
    assert {p.payload_type for p in packets} == {8}
    assert [p.marker for p in packets[:2]] == [True, False]
    assert {len(p.payload) for p in packets} == {160}
    assert {p.udp_checksum for p in packets} == {0}
    assert len({p.ssrc for p in packets}) == 1
    assert len(data) == 24 + 100 * (16 + 14 + 20 + 8 + 12 + 160)


def test_tone_pcap_carries_the_tone_at_its_level(tmp_path: Path) -> None:
    packets = read_rtp_pcap(tone_pcap(tmp_path / "tone.pcap", 1000, seconds=1, level_dbfs=-12))
    samples = [alaw_decode(b) for p in packets for b in p.payload]
    levels = goertzel_levels(samples, 8000, [500, 1000, 2000])
    assert abs(levels[1000] + 12) < 0.5
    assert levels[500] < -80
    assert levels[2000] < -70  # A-law's own distortion of the 1000 Hz tone: about -78 dB
    # Another tone, another SSRC: two parties playing tones are two streams.
    other = read_rtp_pcap(tone_pcap(tmp_path / "other.pcap", 500, seconds=0.1))
    assert other[0].ssrc != packets[0].ssrc and len(other) == 5


def test_goertzel_finds_the_tones_of_a_mix_and_not_others() -> None:
    count = 8000 * 2
    mix = [a + b for a, b in zip(sine_samples(1000, count, -12), sine_samples(2000, count, -20), strict=True)]
    levels = goertzel_levels(mix, 8000, [500, 1000, 1500, 2000])
    assert abs(levels[1000] + 12) < 0.2
    assert abs(levels[2000] + 20) < 0.2
    assert levels[500] < -100 and levels[1500] < -100
    assert heard(levels, 1000) and heard(levels, 2000)
    assert not heard(levels, 500) and not heard(levels, 1500)
    # A frequency that is no whole number of periods in the window measures the same.
    assert abs(goertzel_levels(sine_samples(333.3, 8000 * 3, -20), 8000, [333.3])[333.3] + 20) < 0.2


def test_heard_separates_a_present_tone_from_leakage() -> None:
    count = 8000
    leak = sine_samples(500, count, -62)  # the loudest leakage measured in Asterisk's silent modes
    tone = sine_samples(1000, count, -20)
    levels = goertzel_levels([a + b for a, b in zip(leak, tone, strict=True)], 8000, [500, 1000])
    assert heard(levels, 1000) and not heard(levels, 500)
    assert -63 < levels[500] < -61 < HEARD_DB - 20  # leakage stays 20 dB under the threshold
    # A tone present for half the window loses 6 dB and is still heard.
    half = [0] * (count // 2) + sine_samples(1000, count // 2, -20)
    assert heard(goertzel_levels(half, 8000, [1000]), 1000)
    assert goertzel_levels([0] * 100, 8000, [1000]) == {1000: SILENCE_DB}
    assert goertzel_levels([], 8000, [1000]) == {1000: SILENCE_DB}


@pytest.mark.parametrize("rate", [8000, 16000])
def test_tones_in_wav_reads_asterisk_wavs_and_windows(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "leg.wav"
    # One second of 500 Hz, then one of 1000 Hz.
    samples = sine_samples(500, rate, -12, rate) + sine_samples(1000, rate, -12, rate)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
    first = tones_in_wav(path, [500, 1000], 0, 1)
    second = tones_in_wav(path, [500, 1000], 1)
    assert heard(first, 500) and not heard(first, 1000)
    assert heard(second, 1000) and not heard(second, 500)
    whole = tones_in_wav(path, [500, 1000])
    assert all(-20 < whole[f] < -12 for f in (500, 1000))  # each half of the time


def test_scenarios_play_the_given_pcap() -> None:
    assert f'play_pcap_audio="{sipp.AUDIO_PCAP}"' in sipp.caller_scenario(auth=False)
    assert 'play_pcap_audio="/tmp/tone.pcap"' in sipp.caller_scenario(auth=True, audio_pcap="/tmp/tone.pcap")
    assert f'play_pcap_audio="{sipp.AUDIO_PCAP}"' in sipp.phone_scenario()
    handset = sipp.phone(5060, "2002", "pw", audio_pcap="/tmp/tone.pcap")
    assert 'play_pcap_audio="/tmp/tone.pcap"' in (handset.ooc_scenario or "")
