"""Renders the Asterisk configuration from the jinja2 templates in ``dialplan/``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from callcenter.asterisk.layout import DATA_DIR, MODULE_DIR, AsteriskLayout
from callcenter.config import Settings
from callcenter.secrets import Secrets

# Which module to reload when a rendered file changes while Asterisk runs.
RELOAD_MODULE = {
    "pjsip.conf": "res_pjsip.so",
    "extensions.conf": "pbx_config.so",
    "musiconhold.conf": "res_musiconhold.so",
    "voicemail.conf": "app_voicemail.so",
}
WRITABLE_DIRS = ("spool", "spool/recording", "run", "log", "lib")
# Files with credentials: readable by Asterisk's group only.
SECRET_FILES = ("ari.conf", "manager.conf", "pjsip.conf", "voicemail.conf")
# The digest realm of every phone's auth section. Part of each stored HA1: changing it invalidates
# every SIP password (migration 0008 hashed the old plaintext secrets with this same value).
REALM = "callcenter"
# Asterisk 20.12, 21.7 and 22.2 take a pre-hashed secret as `password_digest` and call `md5_cred`
# deprecated; older releases know only `md5_cred` and refuse an auth section with the new option.
PASSWORD_DIGEST_SINCE = {20: 12, 21: 7, 22: 2}


def sip_ha1(username: str, password: str) -> str:
    """HA1 of SIP digest authentication (RFC 2617): all Asterisk needs, so the password is not kept."""
    return hashlib.md5(f"{username}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


def takes_password_digest(banner: str) -> bool:
    """Whether the Asterisk that printed ``banner`` (``asterisk -V``) knows `password_digest`.
    An unreadable banner counts as a current Asterisk."""
    match = re.search(r"Asterisk (?:certified/)?(\d+)(?:\.(\d+))?", banner)
    if not match:
        return True
    major = int(match.group(1))
    if major not in PASSWORD_DIGEST_SINCE:
        return major > max(PASSWORD_DIGEST_SINCE)
    return match.group(2) is None or int(match.group(2)) >= PASSWORD_DIGEST_SINCE[major]


def _asterisk_banner(layout: AsteriskLayout) -> str:
    if layout.mode == "chroot":
        assert layout.root is not None
        ready = layout.root / ".callcenter-ready"  # the version the root was built with
        return ready.read_text() if ready.exists() else ""
    try:
        return subprocess.run([layout.binary, "-V"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


@dataclass(frozen=True)
class SipUser:
    extension: str
    name: str
    sip_ha1: str  # sip_ha1(extension, password): the password itself is never stored

    @property
    def voicemail_pin(self) -> str:
        """Six digits derived from the SIP credential: stable across renders, never a default PIN, new
        when the SIP password changes, and useless to whoever reads it (a hash of the HA1, cut short)."""
        return f"{int(hashlib.sha256(self.sip_ha1.encode()).hexdigest(), 16) % 1_000_000:06d}"


def _environment(template_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _asterisk_ids(layout: AsteriskLayout) -> tuple[int, int] | None:
    """uid/gid of the `asterisk` user that the chroot's Asterisk drops to."""
    if layout.mode != "chroot":
        return None
    assert layout.root is not None
    for line in (layout.root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "asterisk":
            return int(fields[2]), int(fields[3])
    return None


def rtp_range(instance: str) -> tuple[int, int]:
    """Separate RTP ranges per instance so a test Asterisk never competes with `make run`'s."""
    if instance == "main":
        return 10000, 14999
    slot = sum(instance.encode()) % 40
    start = 15000 + slot * 1000
    return start, start + 999


class Renderer:
    def __init__(self, settings: Settings, layout: AsteriskLayout, secrets: Secrets) -> None:
        self.settings = settings
        self.layout = layout
        self.secrets = secrets
        self.env = _environment(Path(settings.paths.dialplan_dir).resolve())
        self.asterisk_ids = _asterisk_ids(layout)
        self.password_digest = takes_password_digest(_asterisk_banner(layout))

    def prepare_dirs(self) -> None:
        ids = self.asterisk_ids
        self.layout.host("etc").mkdir(parents=True, exist_ok=True)
        for name in WRITABLE_DIRS:
            path = self.layout.host(name)
            path.mkdir(parents=True, exist_ok=True)
            if ids:
                os.chown(path, *ids)
        self.copy_sounds()

    def copy_sounds(self) -> None:
        """Our prompts, copied where Asterisk (maybe in a chroot) can read them."""
        source = Path(self.settings.paths.sounds_dir).resolve()
        target = self.layout.sounds_host
        target.mkdir(parents=True, exist_ok=True)
        if not source.is_dir():
            return
        for file in source.rglob("*"):
            if file.is_file() and file.suffix in (".wav", ".gsm", ".ulaw", ".alaw", ".sln"):
                dest = target / file.relative_to(source)
                if not dest.exists() or dest.stat().st_mtime < file.stat().st_mtime:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dest)

    def context(self, users: Sequence[SipUser]) -> dict[str, object]:
        start, end = rtp_range(self.layout.instance)
        return {
            "settings": self.settings,
            "secrets": self.secrets,
            "layout": self.layout,
            "users": sorted(users, key=lambda u: u.extension),
            "dids": sorted(self.settings.dids),
            "app": self.settings.asterisk.app,
            "module_dir": MODULE_DIR,
            "data_dir": DATA_DIR,
            "rtp_start": start,
            "rtp_end": end,
            "realm": REALM,
            "password_digest": self.password_digest,
        }

    def render(self, users: Sequence[SipUser]) -> list[str]:
        """Writes every template; returns the names of the files that changed."""
        context = self.context(users)
        changed: list[str] = []
        for template_name in sorted(self.env.list_templates(filter_func=lambda n: n.endswith(".conf.j2"))):
            name = template_name.removesuffix(".j2")
            text = self.env.get_template(template_name).render(context)
            target = self.layout.host("etc", name)
            if target.exists() and target.read_text() == text:
                continue
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            if name in SECRET_FILES:
                # Asterisk drops to its own user in a chroot: its group must still read them.
                os.chmod(tmp, 0o640)
                if self.asterisk_ids:
                    os.chown(tmp, 0, self.asterisk_ids[1])
            os.replace(tmp, target)
            changed.append(name)
        return changed
