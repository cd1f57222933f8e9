"""Where an Asterisk instance keeps its files, seen from the controller and from Asterisk.

In a chroot, Asterisk sees ``/srv/callcenter/<instance>`` while the controller reads and writes the
same directory as ``<root>/srv/callcenter/<instance>``. With a system Asterisk both views are one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from callcenter.config import Settings
from callcenter.errors import ProvisioningError

INSTANCE_BASE = PurePosixPath("/srv/callcenter")
# Debian's own builds: where the package puts modules and the sound library.
MODULE_DIR = PurePosixPath("/usr/lib/x86_64-linux-gnu/asterisk/modules")
DATA_DIR = PurePosixPath("/usr/share/asterisk")


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
        ast_dir = INSTANCE_BASE / name
        return AsteriskLayout("chroot", root, "asterisk", name,
                              root / str(ast_dir).lstrip("/"), ast_dir)
    host_dir = settings.var_dir / "asterisk" / name
    return AsteriskLayout("system", None, ast.binary, name, host_dir, PurePosixPath(str(host_dir)))
