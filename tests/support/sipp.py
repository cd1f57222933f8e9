"""Real SIP parties for tests and benchmarks, played by sipp.

Scenarios are written here in Python so each test states exactly what it expects (which response,
who hangs up, which DTMF keys). Callers send audio from a pcap like a phone does (Asterisk's
Answer() waits up to 500 ms for the first packet otherwise) and RFC 4733 DTMF on payload type 96.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SIPP = os.environ.get("SIPP", "sipp")
AUDIO_PCAP = "/usr/share/sip-tester/g711a.pcap"

SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 96
a=rtpmap:8 PCMA/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-16
a=sendrecv
"""

# The answer to a request the far end sent (a BYE, a CANCEL): 200 OK echoing its headers.
OK_200 = """  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


# Ports our servers and phones listen on are taken below Linux's ephemeral range (32768-60999): a port
# the kernel handed out for "any free port" may next be the local port of an outgoing connection (the
# controller's to PostgreSQL, say), and the server meant to listen there fails with EADDRINUSE.
LISTEN_PORTS = (20000, 32767)


def _free_port(kind: int) -> int:
    for _ in range(500):
        port = random.randint(*LISTEN_PORTS)
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS[0]}-{LISTEN_PORTS[1]}")


def free_udp_port() -> int:
    return _free_port(socket.SOCK_DGRAM)


def free_tcp_port() -> int:
    return _free_port(socket.SOCK_STREAM)


def _invite(auth: bool) -> str:
    auth_line = "      [authentication]\n" if auth else ""
    cseq = "[cseq]"
    return f"""  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
{auth_line}      Content-Type: application/sdp
      Content-Length: [len]

{SDP}
    ]]>
  </send>
"""


def _ack(final_2xx: bool) -> str:
    branch = "[branch]" if final_2xx else "[last_Via:]"
    via = f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}" if final_2xx else branch
    return f"""  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      {via}
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: [cseq] ACK
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


# Asterisk re-INVITEs a party whose connected line changes (a supervisor joining a monitoring bridge,
# a transfer): a sipp call aborts on an INVITE it does not expect, so waits accept one and answer it.
REINVITE_OK = """  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

""" + SDP + """
    ]]>
  </send>
  <recv request="ACK"/>
"""


def _wait(ms: int, label: str) -> str:
    """A pause of ``ms`` that answers re-INVITEs (and starts over after one)."""
    return (f'  <label id="{label}"/>\n  <recv request="INVITE" timeout="{ms}" ontimeout="{label}-done"/>\n'
            + REINVITE_OK + f'  <nop next="{label}"/>\n  <label id="{label}-done"/>\n')


def _wait_bye(timeout_ms: int | None = None) -> str:
    """Waits for the far end's BYE, answering re-INVITEs meanwhile, and says 200 OK."""
    timeout = f' timeout="{timeout_ms}"' if timeout_ms is not None else ""
    return ('  <label id="bye"/>\n  <recv request="INVITE" optional="true" next="reinvite"/>\n'
            f'  <recv request="BYE"{timeout}/>\n' + OK_200 + '  <nop next="end"/>\n  <label id="reinvite"/>\n'
            + REINVITE_OK + '  <nop next="bye"/>\n  <label id="end"/>\n')


def _init_vars(caller: str, caller_name: str) -> str:
    return f"""  <nop>
    <action>
      <assignstr assign_to="caller" value="{caller}"/>
      <assignstr assign_to="caller_name" value="{caller_name}"/>
    </action>
  </nop>
"""


def caller_scenario(*, auth: bool, dtmf: str = "", dtmf_after_ms: int = 1500,
                    keys: list[tuple[int, str]] | None = None,
                    hangup_after_ms: int | None = None, wait_bye_ms: int = 30000,
                    reject_code: int | None = None, cancel_after_ms: int | None = None,
                    caller: str = "0049301234567", caller_name: str = "Test Caller",
                    audio_pcap: str = AUDIO_PCAP) -> str:
    """A caller. Answered calls either hang up themselves after ``hangup_after_ms`` or wait for the
    far end's BYE (``wait_bye_ms`` at most). ``keys``: (pause in ms, keys to press) steps, pressed in
    order after the answer (``dtmf``/``dtmf_after_ms`` is one such step). ``reject_code``: the call
    must fail with that response.
    ``cancel_after_ms``: the caller gives up while it rings. ``audio_pcap``: what it says (callers
    that press no keys), e.g. a tone from tests/support/tones.py."""
    parts = ['<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="caller">\n',
             _init_vars(caller, caller_name), _invite(False)]
    parts.append('  <recv response="100" optional="true"/>\n')
    if auth:
        parts.append('  <recv response="401" auth="true" next="auth"/>\n')
        parts.append('  <recv response="407" auth="true" next="auth"/>\n')
        parts.append('  <label id="auth"/>\n')
        parts.append(_ack(False))
        parts.append(_invite(True))
        parts.append('  <recv response="100" optional="true"/>\n')
    if cancel_after_ms is not None:
        parts.append('  <recv response="180"/>\n')
        parts.append(f'  <pause milliseconds="{cancel_after_ms}"/>\n')
        parts.append("""  <send>
    <![CDATA[
      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: [cseq] CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
""")
        parts.append(_ack(False))
        parts.append("</scenario>\n")
        return "".join(parts)
    parts.append('  <recv response="180" optional="true"/>\n  <recv response="183" optional="true"/>\n')
    if reject_code is not None:
        parts.append(f'  <recv response="{reject_code}"/>\n')
        parts.append(_ack(False))
        parts.append("</scenario>\n")
        return "".join(parts)
    # The far end's To (with its tag): [last_To:] names us once it has re-INVITEd us.
    if hangup_after_ms is not None:
        parts.append('  <recv response="200" rtd="true"><action><ereg regexp=".*" search_in="hdr" header="To:" '
                     'check_it="true" assign_to="remote_to"/></action></recv>\n')
    else:
        parts.append('  <recv response="200" rtd="true"/>\n')
    parts.append(_ack(True))
    steps = list(keys or []) + ([(dtmf_after_ms, dtmf)] if dtmf else [])
    if steps:
        # RFC 4733 events on payload type 96, as offered in the SDP (sipp's own DTMF pcaps use 101).
        # play_dtmf and play_pcap_audio cancel each other within a call: DTMF callers send no audio.
        for number, (pause_ms, digits) in enumerate(steps):
            parts.append(_wait(pause_ms, f"step{number}"))
            if digits:
                parts.append(f'  <nop><action><exec play_dtmf="{digits}"/></action></nop>\n')
    else:
        parts.append(f'  <nop><action><exec play_pcap_audio="{audio_pcap}"/></action></nop>\n')
    if hangup_after_ms is not None:
        parts.append(_wait(hangup_after_ms, "talk"))
        parts.append("""  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[$caller_name]" <sip:[$caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To:[$remote_to]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Contact: <sip:[$caller]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
""")
    else:
        # A BYE during <pause> would abort the call: wait for it with a receive instead.
        parts.append(_wait_bye(wait_bye_ms))
    parts.append('  <ResponseTimeRepartition value="100, 500, 1000, 2000, 5000"/>\n</scenario>\n')
    return "".join(parts)


def register_scenario(user: str, expires: int = 3600, stay_ms: int = 600000) -> str:
    """Registers (answering the digest challenge), then stays alive so its out-of-call scenario
    can take the calls Asterisk sends."""
    register = f"""  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:{user}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: [cseq] REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: {expires}
      AUTH_LINE
      Content-Length: 0

    ]]>
  </send>
"""
    return (f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="register {user}">\n'
            + register.replace("      AUTH_LINE\n", "")
            + '  <recv response="401" auth="true"/>\n'
            + register.replace("AUTH_LINE", "[authentication]")
            + '  <recv response="200"/>\n'
            + f'  <pause milliseconds="{stay_ms}"/>\n</scenario>\n')


_ANSWER = """  <send>
    <![CDATA[
      SIP/2.0 {code}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port]>
      {extra}Content-Length: {length}
{body}
    ]]>
  </send>
"""


def _answer(code: str, sdp: bool = False) -> str:
    """The called party's response to an INVITE (with our SDP for a 200 OK)."""
    if sdp:
        return _ANSWER.format(code=code, extra="Content-Type: application/sdp\n      ", length="[len]",
                              body="\n" + SDP)
    return _ANSWER.format(code=code, extra="", length="0", body="")


def phone_scenario(mode: str = "answer", ring_ms: int = 200, audio_pcap: str = AUDIO_PCAP) -> str:
    """What a registered phone does with an incoming call: ``answer`` (then say ``audio_pcap`` and
    wait for the BYE), ``busy`` (486) or ``ring`` (ring until the caller cancels)."""
    head = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="phone">\n'
    head += '  <recv request="INVITE" crlf="true"/>\n'
    send = _answer
    if mode == "busy":
        return head + send("486 Busy Here") + '  <recv request="ACK"/>\n</scenario>\n'
    if mode == "ring":
        return (head + send("180 Ringing") + '  <recv request="CANCEL"/>\n' + OK_200
                + send("487 Request Terminated") + '  <recv request="ACK"/>\n</scenario>\n')
    body = head + send("180 Ringing") + f'  <pause milliseconds="{ring_ms}"/>\n' + send("200 OK", sdp=True)
    body += '  <recv request="ACK" rtd="true" crlf="true"/>\n'
    body += f'  <nop><action><exec play_pcap_audio="{audio_pcap}"/></action></nop>\n'
    return body + _wait_bye() + "</scenario>\n"


@dataclass
class SippResult:
    returncode: int
    output: str
    successful: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Sipp:
    """A sipp process. ``run`` waits for it; ``start``/``stop`` keep a phone alive in the background."""

    scenario: str
    target: str
    args: list[str] = field(default_factory=list)
    ooc_scenario: str | None = None
    proc: asyncio.subprocess.Process | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sipp-")))

    def argv(self) -> list[str]:
        scenario = self.workdir / "scenario.xml"
        scenario.write_text(self.scenario)
        argv = [SIPP, self.target, "-sf", str(scenario), "-i", "127.0.0.1", "-mi", "127.0.0.1",
                "-nostdin", "-trace_err", "-error_file", str(self.workdir / "err.log"),
                "-trace_stat", "-stf", str(self.workdir / "stat.csv")]
        if self.ooc_scenario:
            ooc = self.workdir / "ooc.xml"
            ooc.write_text(self.ooc_scenario)
            argv += ["-oocsf", str(ooc)]
        return argv + self.args

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, cwd=self.workdir)

    async def wait(self, timeout: float = 60) -> SippResult:
        assert self.proc is not None
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except TimeoutError:
            self.proc.kill()
            out, _ = await self.proc.communicate()
        text = out.decode(errors="replace")
        err = self.workdir / "err.log"
        if err.exists():
            text += "\n--- errors ---\n" + err.read_text(errors="replace")[-3000:]
        return SippResult(self.proc.returncode or 0, text, *_counts(self.workdir / "stat.csv"))

    async def run(self, timeout: float = 60) -> SippResult:
        await self.start()
        return await self.wait(timeout)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


def _counts(stat_file: Path) -> tuple[int, int]:
    """Successful and failed calls from sipp's statistics CSV (last line, cumulative columns)."""
    if not stat_file.exists():
        return 0, 0
    lines = [line for line in stat_file.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        return 0, 0
    header = lines[0].split(";")
    values = lines[-1].split(";")
    row = dict(zip(header, values, strict=False))
    return int(row.get("SuccessfulCall(C)", 0) or 0), int(row.get("FailedCall(C)", 0) or 0)


def caller(sip_port: int, service: str, *, user: str | None = None, password: str | None = None,
           local_port: int | None = None, calls: int = 1, rate: float = 1.0, extra: list[str] | None = None,
           **scenario_kwargs: object) -> Sipp:
    """A sipp caller dialling ``service``; as a user when ``user``/``password`` are given."""
    auth = user is not None
    if auth:
        scenario_kwargs.setdefault("caller", user)
        scenario_kwargs.setdefault("caller_name", f"User {user}")
    args = ["-s", service, "-m", str(calls), "-r", str(rate), "-p", str(local_port or free_udp_port()),
            "-timeout", "120s", "-timeout_error", "-max_recv_loops", "1000"]
    if auth:
        args += ["-au", str(user), "-ap", str(password)]
    return Sipp(caller_scenario(auth=auth, **scenario_kwargs), f"127.0.0.1:{sip_port}", args + (extra or []))  # type: ignore[arg-type]


def unregister(sip_port: int, user: str, password: str) -> Sipp:
    """Removes every registration of ``user`` (Contact: *, Expires: 0), as a phone does when switched off."""
    scenario = register_scenario(user, expires=0, stay_ms=0).replace(
        f"Contact: <sip:{user}@[local_ip]:[local_port]>", "Contact: *")
    return Sipp(scenario, f"127.0.0.1:{sip_port}", ["-m", "1", "-p", str(free_udp_port()), "-au", user,
                                                    "-ap", password, "-s", user])


def phone(sip_port: int, user: str, password: str, mode: str = "answer", **kwargs: object) -> Sipp:
    """A registered phone that handles incoming calls as ``mode`` says."""
    args = ["-m", "1", "-p", str(free_udp_port()), "-au", user, "-ap", password, "-s", user]
    return Sipp(register_scenario(user), f"127.0.0.1:{sip_port}", args,
                ooc_scenario=phone_scenario(mode, **kwargs))  # type: ignore[arg-type]


def pstn(sip_port: int, trunk_port: int, calls: int = 50) -> Sipp:
    """The "PSTN" behind the trunk: answers every call Asterisk sends out and waits for the BYE."""
    return Sipp(phone_scenario("answer"), f"127.0.0.1:{sip_port}", ["-p", str(trunk_port), "-m", str(calls)])


def pstn_mix_scenario(human_pcap: str, machine_pcap: str, ring_ms: int = 300) -> str:
    """The "PSTN" for the dialer: what a dialled number does depends on its last digit. 1 a person
    (says a short hello, then listens), 2 busy (486), 3 rings until the caller gives up, 4 an answering
    machine (a long greeting); anything else answers like 1."""
    head = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="pstn mix">\n'
    head += '  <recv request="INVITE" crlf="true">\n    <action>\n'
    for variable, digit in (("isbusy", 2), ("isring", 3), ("ismachine", 4)):
        head += (f'      <ereg regexp="^INVITE sip:[+]?[0-9]*{digit}@" search_in="msg" check_it="false" '
                 f'assign_to="{variable}"/>\n')
    head += '    </action>\n  </recv>\n'
    head += '  <nop next="busy" test="isbusy"/>\n  <nop next="ring" test="isring"/>\n'
    ringing = _answer("180 Ringing")
    body = head + ringing + f'  <pause milliseconds="{ring_ms}"/>\n' + _answer("200 OK", sdp=True)
    body += '  <recv request="ACK" rtd="true" crlf="true"/>\n'
    body += '  <nop next="machine" test="ismachine"/>\n'
    body += f'  <nop><action><exec play_pcap_audio="{human_pcap}"/></action></nop>\n'
    body += '  <nop next="talk"/>\n  <label id="machine"/>\n'
    body += f'  <nop><action><exec play_pcap_audio="{machine_pcap}"/></action></nop>\n'
    body += '  <label id="talk"/>\n' + _wait_bye().replace('"end"', '"talked"') + '  <nop next="done"/>\n'
    body += '  <label id="busy"/>\n' + _answer("486 Busy Here")
    body += '  <recv request="ACK"/>\n  <nop next="done"/>\n'
    body += '  <label id="ring"/>\n' + ringing + '  <recv request="CANCEL"/>\n' + OK_200
    body += _answer("487 Request Terminated")
    body += '  <recv request="ACK"/>\n  <label id="done"/>\n</scenario>\n'
    return body


def pstn_mix(sip_port: int, trunk_port: int, human_pcap: str, machine_pcap: str, calls: int = 100) -> Sipp:
    return Sipp(pstn_mix_scenario(human_pcap, machine_pcap), f"127.0.0.1:{sip_port}",
                ["-p", str(trunk_port), "-m", str(calls)])
