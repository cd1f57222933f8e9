"""Starts and stops the Asterisk that the controller manages, on its rendered configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from callcenter.asterisk.install import prepare_chroot
from callcenter.asterisk.layout import AsteriskLayout, root_asterisk_ids
from callcenter.asterisk.render import SECRET_FILES, WRITABLE_DIRS
from callcenter.errors import AsteriskError

log = logging.getLogger(__name__)
# Asterisk's logs (caller numbers), CEL and recordings: for Asterisk and the controller only, which
# runs as root or as Asterisk's own user. Nothing Asterisk makes gets world bits.
ASTERISK_UMASK = 0o027


def restrict_files(layout: AsteriskLayout) -> None:
    """Takes the world bits from what an Asterisk started before umask 027 left in this instance,
    and gives the files with passwords to root and Asterisk's group only (render.py writes them
    so; these may predate it)."""
    for top in sorted({name.split("/")[0] for name in WRITABLE_DIRS}):
        for directory, _dirs, files in os.walk(layout.host(top)):
            for path in [directory, *(os.path.join(directory, f) for f in files)]:
                mode = os.lstat(path).st_mode
                if not stat.S_ISLNK(mode) and mode & 0o007:
                    os.chmod(path, stat.S_IMODE(mode) & ~0o007)
    ids = root_asterisk_ids(layout.root) if layout.root is not None else None
    for name in SECRET_FILES:
        secret = layout.host("etc", name)
        if secret.exists():
            os.chmod(secret, 0o640)
            if ids:
                os.chown(secret, 0, ids[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AsteriskProcess:
    """One Asterisk process on one instance directory.

    The pid file lets a new controller stop an Asterisk that a killed one left behind, so there is
    never an orphan on our ports.
    """

    def __init__(self, layout: AsteriskLayout, log_file: Path) -> None:
        self.layout = layout
        self.log_file = log_file
        self.proc: asyncio.subprocess.Process | None = None
        # An Asterisk that a controller before us started and that still holds calls (OPS-3).
        self.adopted_pid: int | None = None

    @property
    def pid_file(self) -> Path:
        return self.layout.host("run", "asterisk.pid")

    def _stale_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def stop_leftover(self) -> None:
        """Stops an Asterisk left running on this instance by a controller that died."""
        pid = self._stale_pid()
        if pid is None:
            return
        log.warning("stopping Asterisk (pid %s) left running on instance %s", pid, self.layout.instance)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def start(self) -> None:
        """Starts Asterisk, or adopts the one a previous controller left running with its calls."""
        self.proc, self.adopted_pid = None, None
        if self.layout.mode == "chroot":
            assert self.layout.root is not None
            prepare_chroot(self.layout.root)
        restrict_files(self.layout)
        pid = self._stale_pid()
        if pid is not None:
            try:
                out = await run_cli(self.layout, "core show uptime", timeout=5)
            except AsteriskError:
                out = ""
            if "uptime" in out.lower():
                self.adopted_pid = pid
                log.info("adopting Asterisk pid %s, left running with its calls", pid)
                return
            self.stop_leftover()
        args = ["-f", "-n", "-q"]
        if self.layout.mode == "chroot":
            args += ["-U", "asterisk", "-G", "asterisk"]
        argv = self.layout.command(*args)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # Asterisk's console output can name callers too.
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        os.fchmod(fd, 0o640)
        with open(fd, "ab") as log_out:
            # A session of its own: Ctrl-C in the terminal reaches the controller, which stops
            # Asterisk in order; a controller killed outright leaves it running with its calls.
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=log_out, stderr=subprocess.STDOUT,
                start_new_session=True, umask=ASTERISK_UMASK)
        log.info("started Asterisk pid %s: %s", self.proc.pid, " ".join(argv))

    @property
    def running(self) -> bool:
        if self.adopted_pid is not None:
            return _pid_alive(self.adopted_pid)
        return self.proc is not None and self.proc.returncode is None

    async def wait_exit(self) -> int:
        if self.adopted_pid is not None:
            while _pid_alive(self.adopted_pid):
                await asyncio.sleep(0.5)
            return -1
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        if self.adopted_pid is not None:
            with contextlib.suppress(AsteriskError):
                await run_cli(self.layout, "core stop now", timeout=5)
            await asyncio.to_thread(self.stop_leftover)
            self.adopted_pid = None
            log.info("Asterisk stopped")
            return
        assert self.proc is not None
        # `core stop now` hangs up calls and exits cleanly; SIGTERM does the same if the CLI fails.
        try:
            cli = await asyncio.create_subprocess_exec(
                *self.layout.cli("core stop now"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.wait_for(cli.wait(), 5)
        except (TimeoutError, OSError):
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            log.warning("Asterisk did not stop in %.0f s; terminating", timeout)
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        log.info("Asterisk stopped")


async def run_cli(layout: AsteriskLayout, command: str, timeout: float = 10) -> str:
    """Runs one Asterisk CLI command over the control socket and returns its output."""
    proc = await asyncio.create_subprocess_exec(
        *layout.cli(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise AsteriskError(f"asterisk -rx {command!r} timed out") from None
    return out.decode(errors="replace")
