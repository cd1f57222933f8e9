"""FTPS download speed on loopback: one large file through the admins' FTPS server (CDR-4).

    .venv/bin/python bench/ftps.py [--size-mb 100] [--runs 3]

Makes a file of random bytes in a temporary tree, starts callcenter.ftps.FtpsServer on free ports
and downloads the file with Python's ftplib (FTP_TLS, PROT P) and with curl (--ssl-reqd), checking
every copy byte for byte. Prints seconds and MB/s per run, the CPU the server thread used per curl
download, and how late an asyncio timer in the controller's process fired meanwhile: the server
shares the process (and the GIL) with the controller's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import ftplib
import hashlib
import logging
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.ftps.server import FtpAccount, FtpsServer
from callcenter.ftps.settings import FtpsSettings
from callcenter.users.throttle import LoginThrottle

LOGIN, PASSWORD = "bench", "bench-password"
CHUNK = 1024 * 1024


class _Accounts:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def account_key(self, login: str) -> str:
        return login.casefold()

    def authenticate(self, login: str, password: str) -> FtpAccount | None:
        return FtpAccount(login, {"QueueCalls": self.folder}) if (login, password) == (LOGIN, PASSWORD) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_port_range(size: int) -> str:
    for first in range(max(_free_port() - size, 20000), 60000):
        try:
            for port in range(first, first + size):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return f"{first}-{first + size - 1}"
    raise RuntimeError("no free range of ports")


def _make_file(path: Path, size_mb: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mb):
            chunk = os.urandom(CHUNK)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ftplib_download(port: int, target: Path) -> float:
    context = ssl._create_unverified_context()  # the bench's throwaway self-signed certificate
    started = time.perf_counter()
    with ftplib.FTP_TLS(context=context, timeout=60) as client, target.open("wb") as out:
        client.connect("127.0.0.1", port)
        client.login(LOGIN, PASSWORD)
        client.prot_p()
        client.retrbinary("RETR /QueueCalls/big.bin", out.write, blocksize=256 * 1024)
    return time.perf_counter() - started


async def _curl_download(curl: str, port: int, target: Path) -> tuple[float, list[float]]:
    """Seconds for the download, and how late a 10 ms asyncio timer fired meanwhile (seconds)."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        curl, "-sS", "--ssl-reqd", "-k", "--ftp-pasv", "-o", str(target),
        f"ftp://{LOGIN}:{PASSWORD}@127.0.0.1:{port}/QueueCalls/big.bin")
    code = await process.wait()
    elapsed = time.perf_counter() - started
    ticking.cancel()
    if code:
        raise SystemExit(f"curl failed with exit code {code}")
    return elapsed, lags


def _report(name: str, size_mb: int, seconds: list[float]) -> None:
    for run, took in enumerate(seconds, 1):
        print(f"  {name} run {run}: {took:6.2f} s  {size_mb / took:7.1f} MB/s")
    best, median = min(seconds), statistics.median(seconds)
    print(f"  {name} best:  {best:6.2f} s  {size_mb / best:7.1f} MB/s   median {size_mb / median:.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("curl is not installed (apt-get install curl)")

    with tempfile.TemporaryDirectory(prefix="bench-ftps-") as tmp:
        base = Path(tmp)
        folder = base / "files" / "QueueCalls"
        folder.mkdir(parents=True)
        print(f"writing {args.size_mb} MB of random bytes...")
        expected = _make_file(folder / "big.bin", args.size_mb)
        settings = FtpsSettings(port=_free_port(), passive_ports=_free_port_range(10))
        server = FtpsServer(settings, base / "var", _Accounts(folder), LoginThrottle())
        server.start()
        try:
            print(f"FTPS on 127.0.0.1:{server.port}, {args.size_mb} MB file, {args.runs} run(s) per client")
            target = base / "copy.bin"
            seconds = []
            for _ in range(args.runs):
                seconds.append(_ftplib_download(server.port, target))
                if _sha256(target) != expected:
                    raise SystemExit("ftplib: the copy differs from the original")
            _report("ftplib FTP_TLS", args.size_mb, seconds)

            seconds, cpu, lags = [], [], []
            for _ in range(args.runs):
                cpu_before = time.process_time()  # curl is another process: this is the server thread
                took, run_lags = asyncio.run(_curl_download(curl, server.port, target))
                cpu.append(time.process_time() - cpu_before)
                seconds.append(took)
                lags.extend(run_lags)
                if _sha256(target) != expected:
                    raise SystemExit("curl: the copy differs from the original")
            _report("curl --ssl-reqd", args.size_mb, seconds)
            print(f"  server CPU per curl download: {statistics.median(cpu):.2f} s "
                  f"({statistics.median(cpu) / statistics.median(seconds):.0%} of one core)")
            lags_ms = sorted(lag * 1000 for lag in lags)
            print(f"  asyncio 10 ms timer lateness during curl downloads: p50 {statistics.median(lags_ms):.2f} ms, "
                  f"p99 {lags_ms[int(len(lags_ms) * 0.99)]:.2f} ms, max {lags_ms[-1]:.2f} ms ({len(lags_ms)} ticks)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
