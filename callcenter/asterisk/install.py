"""`callcenter asterisk install`: make sure an Asterisk (20+) and the tools we use are here.

Order of preference: an ``asterisk`` of version 20 or newer on PATH; the distribution's package when
it has one (Ubuntu, Debian sid); else a Debian-sid root under ``.asterisk/root`` run with chroot.
Idempotent and quick on the second run: every step first checks whether it is already done.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.asterisk.layout import HOST_ETC, Chown, chroot_ready, own_asterisk_ids
from callcenter.config import Settings
from callcenter.errors import ProvisioningError

log = logging.getLogger(__name__)

# Host tools: the binary we look for and the Debian/Ubuntu package that brings it.
HOST_TOOLS = {
    "sipp": "sip-tester",  # SIP test caller and phones (tests, bench, demo checks)
    "ffmpeg": "ffmpeg",  # recordings to MP3
    "espeak-ng": "espeak-ng",  # our own prompts, made reproducibly at install
    "lftp": "lftp",  # an FTPS client admins know; the FTPS tests use it beside curl and ftplib
    "curl": "curl",  # the other FTPS client of the tests and docs
    "sox": "sox",  # prompts to 8 kHz WAV that Asterisk plays natively
    "openssl": "openssl",  # the FTPS certificate
}
CHROOT_PACKAGES = ["asterisk", "asterisk-modules", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm"]
SYSTEM_PACKAGES = ["asterisk", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm"]
MIN_ASTERISK = 20
DEBIAN_MIRROR = "https://deb.debian.org/debian"
# debootstrap checks the Release file against it; apt inside the root then has the root's own copy.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # debootstrap's wget checks the mirror's certificate
LOCAL_CAS = Path("/usr/local/share/ca-certificates")  # the site's own CAs (a TLS-inspecting proxy's)

Runner = Callable[[Sequence[str]], None]


def _run(argv: Sequence[str]) -> None:
    log.info("running: %s", " ".join(argv))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(list(argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-20:])
        raise ProvisioningError(f"`{' '.join(argv)}` failed with exit code {result.returncode}:\n{tail}")


@dataclass
class InstallReport:
    actions: list[str] = field(default_factory=list)
    asterisk: str = ""

    def did(self, what: str) -> None:
        log.info("%s", what)
        self.actions.append(what)


def asterisk_version(argv: Sequence[str]) -> tuple[int, str] | None:
    """The major version and the banner of an Asterisk binary, or None if it does not run."""
    try:
        out = subprocess.run([*argv, "-V"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Asterisk (?:certified/)?(\d+)", out)
    return (int(match.group(1)), out) if match else None


def debian_mirror() -> str:
    return os.environ.get("CALLCENTER_DEBIAN_MIRROR") or DEBIAN_MIRROR


def allow_expired() -> bool:
    """Only for a snapshot mirror whose Release is past its Valid-Until: apt would otherwise refuse
    it, which is what protects against a mirror replaying an old, vulnerable archive."""
    return os.environ.get("CALLCENTER_DEBIAN_ALLOW_EXPIRED") == "1"


class Installer:
    def __init__(self, settings: Settings, run: Runner = _run, is_root: bool | None = None, *,
                 host_etc: Path = HOST_ETC, chown: Chown = os.lchown) -> None:
        self.settings = settings
        self.run = run
        self.is_root = os.geteuid() == 0 if is_root is None else is_root
        self.root = Path(settings.asterisk.root).resolve()
        self.host_etc = host_etc
        self.chown = chown
        self._apt_updated = False

    def _need_root(self, what: str) -> None:
        if not self.is_root:
            raise ProvisioningError(
                f"{what} must be installed, which needs root: run `sudo make run` once "
                "(or `sudo .venv/bin/callcenter asterisk install`)")

    def _apt_install(self, packages: Sequence[str]) -> None:
        self._need_root("system packages " + ", ".join(packages))
        if not shutil.which("apt-get"):
            raise ProvisioningError(f"no apt-get on this machine: install {', '.join(packages)} by hand")
        if not self._apt_updated:
            self.run(["apt-get", "-qq", "update"])
            self._apt_updated = True
        self.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages])

    def host_tools(self, report: InstallReport) -> None:
        missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool)})
        if missing:
            self._apt_install(missing)
            report.did(f"installed {', '.join(missing)}")

    def _distribution_has_asterisk(self) -> bool:
        if not shutil.which("apt-cache"):
            return False
        if not self._apt_updated and self.is_root:
            self.run(["apt-get", "-qq", "update"])
            self._apt_updated = True
        out = subprocess.run(["apt-cache", "policy", "asterisk"], capture_output=True, text=True).stdout
        match = re.search(r"Candidate:\s*(?:\d+:)?(\d+)\.", out)
        return bool(match) and int(match.group(1)) >= MIN_ASTERISK  # type: ignore[union-attr]

    def asterisk(self, report: InstallReport) -> None:
        mode = self.settings.asterisk.mode
        binary = self.settings.asterisk.binary
        if mode in ("auto", "chroot") and chroot_ready(self.root):
            if self.is_root:
                self.own_ids(self.root, report)
            report.asterisk = f"chroot {self.root}"
            return
        if mode in ("auto", "system") and shutil.which(binary):
            version = asterisk_version([binary])
            if version and version[0] >= MIN_ASTERISK:
                report.asterisk = f"system {version[1]}"
                return
            if mode == "system":
                raise ProvisioningError(f"{binary} is {version[1] if version else 'not runnable'}; "
                                        f"Asterisk {MIN_ASTERISK}+ is needed")
        if mode in ("auto", "system") and self._distribution_has_asterisk():
            self._apt_install(SYSTEM_PACKAGES)
            version = asterisk_version([binary])
            report.did(f"installed the distribution's Asterisk ({version[1] if version else '?'})")
            report.asterisk = f"system {version[1] if version else ''}"
            return
        if mode == "system":
            raise ProvisioningError("asterisk.mode is 'system' but no Asterisk 20+ is installed or packaged")
        self.bootstrap_chroot(report)
        report.asterisk = f"chroot {self.root}"

    def bootstrap_chroot(self, report: InstallReport) -> None:
        """Builds the Debian-sid root in a temporary directory, then renames it into place."""
        self._need_root(f"a Debian sid root for Asterisk at {self.root}")
        needed = [] if shutil.which("debootstrap") else ["debootstrap"]
        needed += [package for path, package in ((DEBIAN_KEYRING, "debian-archive-keyring"),
                                                 (CA_BUNDLE, "ca-certificates")) if not path.exists()]
        if needed:
            self._apt_install(needed)
        building = self.root.with_name(self.root.name + ".building")
        if building.exists():
            if _has_mounts_below(building):
                raise ProvisioningError(f"{building} has mounts below it; unmount them before retrying")
            shutil.rmtree(building)
        building.parent.mkdir(parents=True, exist_ok=True)
        # --force-check-gpg: a missing keyring stops the build instead of skipping the check.
        self.run(["debootstrap", "--variant=minbase", "--include=ca-certificates", f"--keyring={DEBIAN_KEYRING}",
                  "--force-check-gpg", "sid", str(building), debian_mirror()])
        shutil.copy("/etc/resolv.conf", building / "etc/resolv.conf")
        if LOCAL_CAS.is_dir() and any(LOCAL_CAS.rglob("*.crt")):
            # apt in the root must trust what the host's wget trusted for debootstrap.
            shutil.copytree(LOCAL_CAS, building / "usr/local/share/ca-certificates", dirs_exist_ok=True)
            self.run(["chroot", str(building), "update-ca-certificates"])
        expired = ["-o", "Acquire::Check-Valid-Until=false"] if allow_expired() else []
        # --error-on=any: an index that failed to download is an error, not a warning with old lists.
        self.run(["chroot", str(building), "apt-get", "-qq", "--error-on=any", *expired, "update"])
        self.run(["chroot", str(building), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
                  "-y", "-qq", "--no-install-recommends", *CHROOT_PACKAGES])
        self.run(["chroot", str(building), "apt-get", "clean"])
        version = asterisk_version(["chroot", str(building), "asterisk"])  # -V needs neither /proc nor /dev
        if not version or version[0] < MIN_ASTERISK:
            raise ProvisioningError(f"the sid root's Asterisk is {version[1] if version else 'not runnable'}")
        self.own_ids(building, report)
        (building / ".callcenter-ready").write_text(version[1] + "\n")
        if self.root.exists():
            if _has_mounts_below(self.root):
                raise ProvisioningError(f"{self.root} is half-built and has mounts; unmount them first")
            shutil.rmtree(self.root)
        building.rename(self.root)
        report.did(f"built a Debian sid root with {version[1]} at {self.root}")

    def own_ids(self, root: Path, report: InstallReport) -> None:
        ids = own_asterisk_ids(root, self.host_etc, self.chown)
        if ids:
            report.did(f"gave Asterisk in {root} uid/gid {ids[0]}/{ids[1]}, which no host account has")

    def install(self) -> InstallReport:
        report = InstallReport()
        self.host_tools(report)
        self.asterisk(report)
        return report


def _has_mounts_below(path: Path) -> bool:
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        return any(line.split()[4].startswith(prefix) for line in mounts)


def prepare_chroot(root: Path) -> None:
    """A hosts entry for this machine in the chroot, checked each time Asterisk starts: without it
    Asterisk asks the outside resolver for the machine's own name on every call. (/proc and /dev
    are mounted per process, see AsteriskLayout.command.)"""
    hosts = root / "etc/hosts"
    hostname = socket.gethostname()
    text = hosts.read_text() if hosts.exists() else ""
    wanted = f"127.0.0.1\tlocalhost {hostname}\n"
    if not any(line.split()[1:2] == ["localhost"] and hostname in line.split() for line in text.splitlines()
               if line.strip() and not line.startswith("#")):
        hosts.write_text(wanted + "::1\tlocalhost ip6-localhost\n")
