"""A throwaway PostgreSQL cluster for the test suite (Debian's postgresql package).

`python tests/support/postgres.py install` installs the server if no initdb is found. The fixture
then runs initdb with fsync off on a free port in a temporary directory and drops it at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def find_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    return shutil.which(name)


def install() -> None:
    if find_bin("initdb") and find_bin("pg_ctl"):
        return
    if os.geteuid() != 0:
        sys.exit("PostgreSQL is needed for the tests: run as root, or install Debian's postgresql")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def _free_port() -> int:
    from tests.support.sipp import free_tcp_port  # below the ephemeral range (run by pytest, not as a script)

    return free_tcp_port()


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="callcenter-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the package's postgres user runs it.
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> str:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL is not installed: run `python tests/support/postgres.py install`")
        self._run(initdb, "-A", "trust", "--no-sync", "-U", "postgres", "-D", str(self.data))
        self.resume()
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def halt(self) -> None:
        """Stops the server but keeps its data (a database outage)."""
        self._run(str(find_bin("pg_ctl")), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Starts the server on the cluster's data and waits until it takes connections."""
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(str(find_bin("pg_ctl")), "-D", str(self.data), "-o", options, "-w", "-l",
                  str(self.dir / "log"), "start")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        if pg_ctl and self.data.exists():
            try:
                self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        install()
    else:
        sys.exit("usage: postgres.py install")
