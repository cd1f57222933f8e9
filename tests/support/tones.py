"""Tones to prove with audio who hears whom: each party sends its own sine tone, we record what each
party *receives* and look for the tones in it.

- ``tone_pcap`` writes a pcap of a sine tone as RTP/PCMA (payload type 8) that sipp's
  ``play_pcap_audio`` replays (sipp takes each UDP datagram of an Ethernet/IPv4 capture as it is,
  rewrites only the ports and the UDP checksum, and keeps the capture's pacing; the RTP header is
  sent as written, so the file must hold complete RTP packets).
- ``goertzel_levels``/``tones_in_wav`` measure the level of given frequencies in a recording, and
  ``heard`` says whether a tone is there.
- ``LegRecorder`` records what a channel receives (a snoop channel on it, recorded), through a
  test's own ARI app, and cleans up after itself.

Levels are dBFS of a sine's *peak* amplitude: a full-scale sine (peak 32768) is 0 dB, so the tones
``tone_pcap`` writes at ``level_dbfs=-12`` measure about -12 dB where they arrive unchanged.
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import json
import math
import socket
import struct
import sys
import threading
import time
import uuid
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from tests.support.system import System

RATE = 8000  # G.711 sample rate
PACKET_MS = 20
SAMPLES_PER_PACKET = RATE * PACKET_MS // 1000  # 160 samples, 160 bytes of PCMA
PCMA = 8  # RTP payload type

# A tone counts as heard at or above this level. Tones are sent at -12 dBFS and arrive at about that
# level (mixing, transcoding and the snoop leave them within a few dB); a party that should not hear a
# tone gets silence, comfort noise or leakage measured from -62 dB down to -117 dB. -40 dB sits in the
# gap with more than 20 dB to spare on either side, and still finds a tone present for only a part
# of the analysed window (half the window costs 6 dB).
HEARD_DB = -40.0

SILENCE_DB = float("-inf")  # the level of a frequency in no samples at all, or in digital silence


# --- G.711 A-law -------------------------------------------------------------------------------------

_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode(sample: int) -> int:
    """One 16-bit linear sample as a G.711 A-law byte (ITU-T G.711, as in Sun's reference g711.c):
    13-bit magnitude, 3-bit segment, 4-bit step, sign bit set for positive samples, even bits
    inverted (XOR 0x55). 0 -> 0xD5, -1 -> 0x55, 32767 -> 0xAA, -32768 -> 0x2A."""
    sample = max(-32768, min(32767, int(sample))) >> 3
    if sample >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        sample = -sample - 1
    for segment, end in enumerate(_SEGMENT_ENDS):
        if sample <= end:
            step = (sample >> 1) if segment < 2 else (sample >> segment)
            return ((segment << 4) | (step & 0x0F)) ^ mask
    return 0x7F ^ mask


def alaw_decode(code: int) -> int:
    """The 16-bit linear value of an A-law byte (the middle of its step)."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    elif segment == 1:
        value += 0x108
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


def sine_samples(frequency: float, count: int, level_dbfs: float = -12.0, rate: int = RATE) -> list[int]:
    """``count`` 16-bit samples of a sine with peak ``level_dbfs`` relative to full scale."""
    amplitude = 32767 * 10 ** (level_dbfs / 20)
    step = 2 * math.pi * frequency / rate
    return [round(amplitude * math.sin(step * n)) for n in range(count)]


# --- pcap ------------------------------------------------------------------------------------------

_PCAP_HEADER = struct.Struct("<IHHiIII")  # magic, version 2.4, zone, sigfigs, snaplen, link type
_RECORD_HEADER = struct.Struct("<IIII")  # seconds, microseconds, captured length, length
_ETHERNET = 1  # DLT_EN10MB
_SRC_MAC = bytes.fromhex("020000000001")
_DST_MAC = bytes.fromhex("020000000002")
_SRC_IP = bytes((10, 0, 0, 1))
_DST_IP = bytes((10, 0, 0, 2))
_PORT = 6000
_EPOCH = 1_700_000_000  # capture time of the first packet


def _ipv4_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(ident: int, rtp: bytes) -> bytes:
    udp = struct.pack("!HHHH", _PORT, _PORT, 8 + len(rtp), 0) + rtp  # checksum 0: none (sipp sets it)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17, 0,
                               _SRC_IP, _DST_IP))
    ip[10:12] = struct.pack("!H", _ipv4_checksum(bytes(ip)))
    return _DST_MAC + _SRC_MAC + b"\x08\x00" + bytes(ip) + udp


def tone_pcap(path: Path, frequency: float, seconds: float = 30.0, level_dbfs: float = -12.0,
              ssrc: int | None = None) -> Path:
    """Writes a libpcap capture of a sine tone for sipp's ``play_pcap_audio``: Ethernet/IPv4/UDP/RTP,
    one packet per 20 ms (capture timestamps 20 ms apart, which sipp replays as the pacing), payload
    type 8 (PCMA) with 160 A-law bytes each, sequence numbers +1 and RTP timestamps +160 per packet,
    the marker bit on the first. The phase runs on across packets, so the tone is clean."""
    # One per tone (parties differ); a test may pick its own, so that another run's tones on the same
    # loopback (the SQLite and PostgreSQL suites run side by side) cannot be taken for its parties.
    return segments_pcap(path, [(frequency, seconds)], level_dbfs,
                         tone_ssrc(frequency) if ssrc is None else ssrc)


def segments_pcap(path: Path, segments: Sequence[tuple[float, float]], level_dbfs: float = -12.0,
                  ssrc: int = 0x5EC0) -> Path:
    """Like ``tone_pcap`` for a sequence of (frequency, seconds) pieces, frequency 0 being silence: a
    "hello" and a pause, or a long recorded greeting, as answering-machine detection hears them."""
    samples: list[int] = []
    for frequency, seconds in segments:
        count = max(1, round(seconds * 1000 / PACKET_MS)) * SAMPLES_PER_PACKET
        samples += sine_samples(frequency, count, level_dbfs) if frequency > 0 else [0] * count
    packets = len(samples) // SAMPLES_PER_PACKET
    table: dict[int, int] = {}
    payload = bytes(table.setdefault(s, alaw_encode(s)) for s in samples)
    out = [_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, _ETHERNET)]
    for index in range(packets):
        chunk = payload[index * SAMPLES_PER_PACKET:(index + 1) * SAMPLES_PER_PACKET]
        rtp = struct.pack("!BBHII", 0x80, (0x80 if index == 0 else 0) | PCMA, index & 0xFFFF,
                          index * SAMPLES_PER_PACKET, ssrc) + chunk
        frame = _frame(index, rtp)
        micros = index * PACKET_MS * 1000
        out.append(_RECORD_HEADER.pack(_EPOCH + micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet of a capture, as ``read_rtp_pcap`` found it."""

    time: float  # capture time, seconds
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    udp_checksum: int


def read_rtp_pcap(path: Path) -> list[RtpPacket]:
    """The RTP packets of an Ethernet/IPv4/UDP capture (little-endian, microsecond pcap)."""
    data = path.read_bytes()
    magic, major, minor, _zone, _sigfigs, _snaplen, link = _PCAP_HEADER.unpack_from(data)
    if (magic, major, minor, link) != (0xA1B2C3D4, 2, 4, _ETHERNET):
        raise ValueError(f"not a little-endian Ethernet pcap 2.4: {magic:#x} {major}.{minor} link {link}")
    packets = []
    offset = _PCAP_HEADER.size
    while offset < len(data):
        seconds, micros, captured, length = _RECORD_HEADER.unpack_from(data, offset)
        if captured != length:
            raise ValueError("truncated packet")
        frame = data[offset + _RECORD_HEADER.size:offset + _RECORD_HEADER.size + captured]
        offset += _RECORD_HEADER.size + captured
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            raise ValueError("not IPv4/UDP")
        udp_at = 14 + (frame[14] & 0x0F) * 4
        _sport, _dport, udp_length, checksum = struct.unpack_from("!HHHH", frame, udp_at)
        rtp = frame[udp_at + 8:udp_at + udp_length]
        first, second, seq, timestamp, ssrc = struct.unpack_from("!BBHII", rtp)
        if first >> 6 != 2:
            raise ValueError("not RTP version 2")
        packets.append(RtpPacket(seconds + micros / 1e6, second & 0x7F, bool(second & 0x80), seq, timestamp,
                                 ssrc, rtp[12:], checksum))
    return packets


# --- detection -------------------------------------------------------------------------------------

def goertzel_levels(samples: Sequence[int], rate: int, frequencies: Sequence[float]) -> dict[float, float]:
    """The level of each frequency in ``samples`` (16-bit linear), in dB relative to a full-scale sine:
    20·log10(peak amplitude / 32768), so a sine of peak A measures 20·log10(A/32768) wherever it lies.

    A Hann window and the generalised Goertzel recurrence evaluate the spectrum exactly at each
    frequency (no rounding to a bin); the window keeps strong tones elsewhere out (at 8 kHz and 5 s,
    a -12 dB tone 500 Hz away adds nothing measurable). A tone present for only a part of the samples
    measures lower by that fraction (half the time: -6 dB). No samples or silence: ``SILENCE_DB``."""
    count = len(samples)
    if count == 0:
        return dict.fromkeys(frequencies, SILENCE_DB)
    window = [0.5 - 0.5 * math.cos(2 * math.pi * i / (count - 1)) for i in range(count)] if count > 1 else [1.0]
    windowed = [s * w for s, w in zip(samples, window, strict=True)]
    gain = sum(window)
    levels = {}
    for frequency in frequencies:
        coeff = 2 * math.cos(2 * math.pi * frequency / rate)
        s1 = s2 = 0.0
        for x in windowed:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        amplitude = 2 * math.sqrt(max(power, 0.0)) / gain
        levels[frequency] = 20 * math.log10(amplitude / 32768) if amplitude > 0 else SILENCE_DB
    return levels


def read_wav(path: Path) -> tuple[list[int], int]:
    """The samples and the rate of a 16-bit mono WAV (Asterisk's ``wav``: 8 kHz; ``wav16``: 16 kHz)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: {wav.getnchannels()} channel(s) of {wav.getsampwidth() * 8} bits, "
                             "not 16-bit mono")
        rate = wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    samples = array.array("h")
    samples.frombytes(frames[:len(frames) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tolist(), rate


def tones_in_wav(path: Path, frequencies: Sequence[float], start: float = 0,
                 end: float | None = None) -> dict[float, float]:
    """``goertzel_levels`` of the WAV from ``start`` to ``end`` seconds (the end of the file if None)."""
    samples, rate = read_wav(path)
    first = max(0, int(start * rate))
    last = len(samples) if end is None else min(len(samples), int(end * rate))
    return goertzel_levels(samples[first:last], rate, frequencies)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def heard(levels: dict[float, float], frequency: float, threshold_db: float = HEARD_DB) -> bool:
    """Whether ``frequency`` is in ``levels`` at ``threshold_db`` or louder (see ``HEARD_DB``)."""
    return levels[frequency] >= threshold_db


# --- recording what a channel receives ------------------------------------------------------------

@dataclass
class _Leg:
    name: str
    channel_id: str
    snoop_id: str
    path: Path
    stopped: bool = False


class LegRecorder:
    """Records what channels receive, as a test's own ARI app (like the tests' AriObserver).

    ``start(channel, name)`` puts a snoop channel on ``channel`` with ``spy=out``, the audio Asterisk
    *sends to* that channel, i.e. what the party on it hears (``spy=in`` is what the party sends;
    checked with tones: a caller's ``out`` holds only the agent's tone, its ``in`` only its own), and
    records the snoop to ``<spool>/recording/<name>.wav`` (8 kHz, 16-bit). The snoop only listens
    (no whisper) and joins no bridge: the call goes on as before. ``stop_all()`` stops the
    recordings, hangs up the snoops and returns the WAV files; leaving the context does the same
    if the test did not, so nothing the recorder created stays in Asterisk.

    Note: an audiohook on a channel takes its bridge off native RTP (Asterisk then relays decoded
    frames), which the parties do not hear but a test of the bridge technology would see.
    """

    def __init__(self, system: System, app: str | None = None) -> None:
        secrets = json.loads((system.settings.var_dir / "secrets.json").read_text())
        token = base64.b64encode(f"{secrets['ari_user']}:{secrets['ari_password']}".encode()).decode()
        self.system = system
        self.app = app or f"legrec-{uuid.uuid4().hex[:12]}"
        port = system.settings.asterisk.http_port
        self.base = f"http://127.0.0.1:{port}/ari"
        self.ws_url = f"ws://127.0.0.1:{port}/ari/events?app={self.app}&subscribeAll=true"
        self.headers = {"Authorization": f"Basic {token}"}
        self.events: list[dict[str, Any]] = []
        self.legs: dict[str, _Leg] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> LegRecorder:
        self._session = aiohttp.ClientSession(headers=self.headers)
        self._ws = await self._session.ws_connect(self.ws_url)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if any(not leg.stopped for leg in self.legs.values()):
                await self.stop_all()
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            if self._ws is not None:
                await self._ws.close()
            if self._session is not None:
                await self._session.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:  # only reading and queueing: Asterisk cuts slow readers off
            if message.type == aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(message.data))
                self._changed.set()

    async def _request(self, method: str, path: str, **params: str) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(method, self.base + path, params=params) as response:
            body = await response.text()
            return response.status, (json.loads(body) if body.strip().startswith(("{", "[")) else body)

    async def wait_event(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10,
                         what: str = "an event") -> dict[str, Any]:
        """The first event (since the recorder started) that ``match`` accepts, waiting for it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def start(self, channel_id: str, name: str, spy: str = "out") -> Path:
        """Records what ``channel_id`` receives (``spy="in"``: what it sends) as ``name``; returns the
        WAV's host path, which is complete after ``stop_all``."""
        if name in self.legs:
            raise ValueError(f"recording {name} already started")
        snoop_id = f"{self.app}-{len(self.legs) + 1}"
        path = self.system.layout.host("spool", "recording", f"{name}.wav")
        status, body = await self._request("POST", f"/channels/{channel_id}/snoop", app=self.app, spy=spy,
                                           snoopId=snoop_id)
        if status != 200:
            raise AssertionError(f"snoop on {channel_id}: HTTP {status} {body}")
        self.legs[name] = _Leg(name, channel_id, snoop_id, path)
        await self.wait_event(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == snoop_id,
                              what=f"StasisStart of {snoop_id}")
        status, body = await self._request("POST", f"/channels/{snoop_id}/record", name=name, format="wav",
                                           ifExists="overwrite")
        if status != 201:
            raise AssertionError(f"recording {name} on {snoop_id}: HTTP {status} {body}")
        await self.wait_event(lambda e: e["type"] in ("RecordingStarted", "RecordingFailed")
                              and e["recording"]["name"] == name, what=f"RecordingStarted of {name}")
        return path

    def _gone(self, snoop_id: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e["type"] == "ChannelDestroyed" and e["channel"]["id"] == snoop_id

    def _finished(self, name: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: (e["type"] in ("RecordingFinished", "RecordingFailed")
                          and e["recording"]["name"] == name)

    async def stop_all(self, timeout: float = 10) -> dict[str, Path]:
        """Stops every recording, hangs up every snoop channel (once its recording is finished) and
        returns the WAV files by recording name. A snoop whose channel hung up is already gone."""
        for leg in self.legs.values():
            if leg.stopped:
                continue
            status, body = await self._request("POST", f"/recordings/live/{leg.name}/stop")
            if status not in (204, 404):  # 404: it finished with its channel
                raise AssertionError(f"stopping {leg.name}: HTTP {status} {body}")
        for leg in self.legs.values():
            if leg.stopped:
                continue
            await self.wait_event(self._finished(leg.name), timeout, f"end of recording {leg.name}")
            status, body = await self._request("DELETE", f"/channels/{leg.snoop_id}")
            if status not in (204, 404):
                raise AssertionError(f"hanging up {leg.snoop_id}: HTTP {status} {body}")
            await self.wait_event(self._gone(leg.snoop_id), timeout, f"end of {leg.snoop_id}")
            leg.stopped = True
        return {leg.name: leg.path for leg in self.legs.values()}


def tone_ssrc(frequency: float) -> int:
    """The RTP SSRC ``tone_pcap`` gives a tone: sipp replays it as is, so it names the sender."""
    return 0x70000000 + round(frequency * 10) % 0x0FFFFFFF


class RtpCapture:
    """What Asterisk sends to each sipp party, taken off the loopback interface (root only).

    A snoop on a channel hears the channel's audio before other audiohooks (a supervisor's whisper)
    are mixed in, so the only faithful record of what a party hears is the RTP that reaches its
    phone. A party is found by the tone it sends (``tone_ssrc``): packets *to* its media port are
    what it hears.
    """

    def __init__(self) -> None:
        self.packets: list[tuple[float, int, int, int, bytes]] = []  # time, src port, dst port, ssrc, payload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def __enter__(self) -> RtpCapture:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        sock.bind(("lo", 0))
        sock.settimeout(0.2)
        self._socket = sock
        self._thread = threading.Thread(target=self._read, name="rtp-capture", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._socket is not None:
            self._socket.close()

    def _read(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                frame, address = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            # Loopback shows each packet twice: keep the copy arriving at its receiver.
            if address[2] != socket.PACKET_HOST or len(frame) < 14 + 20 + 8 + 12:
                continue
            ip = frame[14:]
            if ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            header = (ip[0] & 0x0F) * 4
            src_port, dst_port = struct.unpack_from("!HH", ip, header)
            rtp = ip[header + 8:]
            if len(rtp) < 12 or rtp[0] >> 6 != 2 or rtp[1] & 0x7F != 8:
                continue  # not A-law RTP (SIP, DTMF events, RTCP)
            ssrc = struct.unpack_from("!I", rtp, 8)[0]
            offset = 12 + 4 * (rtp[0] & 0x0F)
            self.packets.append((time.monotonic(), src_port, dst_port, ssrc, rtp[offset:]))

    def port_of(self, frequency: float, ssrc: int | None = None) -> int:
        """The media port of the party that sends ``frequency`` (with ``tone_pcap``'s ``ssrc``)."""
        ssrc = tone_ssrc(frequency) if ssrc is None else ssrc
        for _when, src_port, _dst, packet_ssrc, _payload in list(self.packets):
            if packet_ssrc == ssrc:
                return src_port
        raise AssertionError(f"nobody sent the {frequency:.0f} Hz tone")

    def heard_by(self, port: int, start: float, end: float) -> list[int]:
        """16-bit samples of what reached ``port`` between two ``time.monotonic()`` instants."""
        samples: list[int] = []
        for when, _src, dst_port, _ssrc, payload in list(self.packets):
            if dst_port == port and start <= when <= end:
                samples.extend(alaw_decode(byte) for byte in payload)
        return samples
