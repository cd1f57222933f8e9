"""Where an Asterisk instance keeps its files, seen from the controller and from Asterisk.

In a chroot, Asterisk sees ``/srv/callcenter/<instance>`` while the controller reads and writes the
same directory as ``<root>/srv/callcenter/<instance>``. With a system Asterisk both views are one.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from callcenter.config import Settings
from callcenter.errors import ProvisioningError

INSTANCE_BASE = PurePosixPath("/srv/callcenter")
# Debian's own builds: where the package puts modules and the sound library.
MODULE_DIR = PurePosixPath("/usr/lib/x86_64-linux-gnu/asterisk/modules")
DATA_DIR = PurePosixPath("/usr/share/asterisk")
# Asterisk's uid and gid in a Debian root (docs/asterisk.md): the first id of this range that no host
# account and no other account of the root uses. Not 100-999, which the host hands to its own system
# users (the package took 101 in the root: postgres and _ssh on a Debian host); the top of the people's
# range (adduser counts up from 1000) instead. Above it: Debian's static and systemd's dynamic ids
# (60000-65535), then ids that containers mapping only 65536 of them cannot chown to.
ASTERISK_IDS = range(59900, 60000)
HOST_ETC = Path("/etc")

log = logging.getLogger(__name__)
Chown = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AsteriskLayout:
    mode: str  # "chroot" or "system"
    root: Path | None  # the chroot, when mode == "chroot"
    binary: str
    instance: str
    host_dir: Path  # the instance directory as the controller sees it
    ast_dir: PurePosixPath  # the same directory as Asterisk sees it

    def host(self, *parts: str) -> Path:
        return self.host_dir.joinpath(*parts)

    def ast(self, *parts: str) -> str:
        return str(self.ast_dir.joinpath(*parts))

    @property
    def config_file(self) -> str:
        return self.ast("etc", "asterisk.conf")

    @property
    def cel_log(self) -> Path:
        return self.host("log", "cel.jsonl")

    @property
    def sounds_host(self) -> Path:
        return self.host("sounds")

    def command(self, *args: str) -> list[str]:
        """The argv that runs the Asterisk binary on this instance's configuration.

        In a chroot, /proc and /dev are bound inside a private mount namespace that ends with the
        process: the host never sees those mounts, so deleting the checkout can never reach /dev.
        """
        base = [self.binary, "-C", self.config_file, *args]
        if self.mode == "chroot":
            assert self.root is not None
            script = 'mount --bind /proc "$0/proc" && mount --bind /dev "$0/dev" && exec chroot "$0" "$@"'
            return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(self.root), *base]
        return base

    def cli(self, command: str) -> list[str]:
        return self.command("-rx", command)


def chroot_ready(root: Path) -> bool:
    return (root / "usr/sbin/asterisk").exists() and (root / ".callcenter-ready").exists()


def system_asterisk(binary: str) -> str | None:
    return shutil.which(binary)


def resolve_layout(settings: Settings, instance: str | None = None) -> AsteriskLayout:
    """Picks chroot or system Asterisk the way `callcenter asterisk install` provisioned it."""
    ast = settings.asterisk
    name = instance or ast.instance
    root = Path(ast.root).resolve()
    mode = ast.mode
    if mode == "auto":
        if chroot_ready(root):
            mode = "chroot"
        elif system_asterisk(ast.binary):
            mode = "system"
        else:
            raise ProvisioningError(
                "no Asterisk found: run `callcenter asterisk install` (or `make run`), "
                f"which installs one (chroot at {root} or the distribution's package)")
    if mode == "chroot":
        if not chroot_ready(root):
            raise ProvisioningError(f"no Asterisk root at {root}: run `callcenter asterisk install`")
        if os.geteuid() == 0:
            # Before anything renders or chowns files for Asterisk: a root from an earlier version
            # still has the package's ids, which are host accounts' ids.
            own_asterisk_ids(root)
        ast_dir = INSTANCE_BASE / name
        return AsteriskLayout("chroot", root, "asterisk", name,
                              root / str(ast_dir).lstrip("/"), ast_dir)
    host_dir = settings.var_dir / "asterisk" / name
    return AsteriskLayout("system", None, ast.binary, name, host_dir, PurePosixPath(str(host_dir)))


def _entries(path: Path) -> list[list[str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _taken(etc: Path, skip: str = "") -> set[int]:
    """Every uid and gid that the accounts and groups of ``etc`` use, but those named ``skip``."""
    taken: set[int] = set()
    for fields in _entries(etc / "passwd"):
        if len(fields) > 3 and fields[0] != skip:
            taken.update(int(f) for f in fields[2:4] if f.isdigit())
    for fields in _entries(etc / "group"):
        if len(fields) > 2 and fields[0] != skip and fields[2].isdigit():
            taken.add(int(fields[2]))
    return taken


def _on_host(number: int) -> bool:
    """Accounts the host knows beyond its files (LDAP, sssd...)."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(number)
        except KeyError:
            continue
        return True
    return False


def root_asterisk_ids(root: Path) -> tuple[int, int] | None:
    """uid and gid of the root's `asterisk` account and group, or None without one."""
    uid = next((int(f[2]) for f in _entries(root / "etc/passwd") if f[0] == "asterisk" and len(f) > 3), None)
    if uid is None:
        return None
    gid = next((int(f[2]) for f in _entries(root / "etc/group") if f[0] == "asterisk" and len(f) > 2), None)
    if gid is None:
        gid = next(int(f[3]) for f in _entries(root / "etc/passwd") if f[0] == "asterisk")
    return uid, gid


def choose_asterisk_ids(root: Path, host_etc: Path = HOST_ETC) -> tuple[int, int] | None:
    """The ids Asterisk should have in ``root``: its own when they are in ASTERISK_IDS and free,
    else the first id free as both uid and gid."""
    current = root_asterisk_ids(root)
    if current is None:
        return None
    taken = _taken(host_etc) | _taken(root / "etc", skip="asterisk")

    def free(number: int) -> bool:
        return number in ASTERISK_IDS and number not in taken and not (host_etc == HOST_ETC and _on_host(number))

    if all(free(number) for number in current):
        return current
    for number in ASTERISK_IDS:
        if free(number):
            return number, number
    raise ProvisioningError(f"no id from {ASTERISK_IDS.start} to {ASTERISK_IDS.stop - 1} is free for "
                            "Asterisk on this host and in its root")


def processes_in(root: Path) -> list[int]:
    """Pids of the processes whose root directory is ``root`` (an Asterisk of any instance)."""
    want = root.stat()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                seen = (entry / "root").stat()
            except OSError:
                continue
            if (seen.st_dev, seen.st_ino) == (want.st_dev, want.st_ino):
                found.append(int(entry.name))
    return found


def own_asterisk_ids(root: Path, host_etc: Path = HOST_ETC, chown: Chown = os.lchown) -> tuple[int, int] | None:
    """Gives the root's `asterisk` ids that no host account has (see ASTERISK_IDS) and hands it what
    it owned under the old ones. Returns the new ids if it changed them. Idempotent; the files are
    handed over before the account moves, so an interrupted run is finished by the next one."""
    old = root_asterisk_ids(root)
    new = choose_asterisk_ids(root, host_etc)
    if old is None or new is None or new == old:
        return None
    if busy := processes_in(root):
        # A running Asterisk keeps its old ids and would lose its own files.
        log.warning("Asterisk in %s still has uid/gid %s/%s (host accounts' ids): processes %s run in it; "
                    "they change on the next start or `callcenter asterisk install`", root, *old, busy)
        return None
    _hand_over(root, old, new, chown)
    _set_ids(root / "etc/passwd", {2: new[0], 3: new[1]})
    _set_ids(root / "etc/group", {2: new[1]})
    log.info("Asterisk in %s: uid/gid %s/%s, was %s/%s", root, *new, *old)
    return new


def _hand_over(root: Path, old: tuple[int, int], new: tuple[int, int], chown: Chown) -> None:
    device = root.stat().st_dev
    for directory, dirs, files in os.walk(root):
        # Never into what is mounted below the root (a /proc or /dev bound by hand).
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(directory, d)).st_dev == device]
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            info = os.lstat(path)
            uid = new[0] if info.st_uid == old[0] else -1
            gid = new[1] if info.st_gid == old[1] else -1
            if uid == gid == -1:
                continue
            chown(path, uid, gid)
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(info.st_mode))  # chown drops setuid and setgid bits


def _set_ids(path: Path, fields: dict[int, int]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        parts = line.rstrip("\n").split(":")
        if parts[0] == "asterisk" and len(parts) > max(fields):
            for index, value in fields.items():
                parts[index] = str(value)
            lines[i] = ":".join(parts) + "\n"
    tmp = path.with_name(path.name + ".callcenter")
    tmp.write_text("".join(lines))
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
