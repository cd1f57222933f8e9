"""The Debian root's integrity (HTTPS, keyring, no expired Release unless asked) and Asterisk's own
ids and file modes in it (docs/asterisk.md)."""

from pathlib import Path
from typing import Any

import pytest

from callcenter.asterisk import install
from callcenter.config import load_settings


def _etc(directory: Path, passwd: str, group: str) -> Path:
    (directory / "etc").mkdir(parents=True, exist_ok=True)
    (directory / "etc/passwd").write_text(passwd)
    (directory / "etc/group").write_text(group)
    return directory / "etc"


def _debian_root(root: Path, uid: int = 101, gid: int = 101) -> None:
    """What debootstrap and the asterisk package leave: the package's system ids."""
    _etc(root, f"root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
               f"asterisk:x:{uid}:{gid}:Asterisk PBX daemon:/var/lib/asterisk:/usr/sbin/nologin\n",
         f"root:x:0:\nusers:x:100:\nasterisk:x:{gid}:\n")


def _debian_host(tmp_path: Path, extra: str = "") -> Path:
    return _etc(tmp_path / "host", f"root:x:0:0::/root:/bin/bash\npostgres:x:101:104::/var/lib/postgresql:/bin/bash\n"
                                   f"{extra}", "root:x:0:\n_ssh:x:101:\npostgres:x:104:\n")


def _settings(tmp_path: Path) -> Any:
    config = tmp_path / "c.toml"
    config.write_text(f"[asterisk]\nmode = 'chroot'\nroot = '{tmp_path}/root'\n[paths]\nvar_dir = '{tmp_path}/var'\n")
    return load_settings(config, environ={})


def _bootstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_cas: Path | None = None) -> list[list[str]]:
    """Builds a root with every command recorded, none run; returns the commands."""
    monkeypatch.setattr(install.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(install, "DEBIAN_KEYRING", tmp_path / "no-keyring.gpg")
    monkeypatch.setattr(install, "LOCAL_CAS", local_cas or tmp_path / "no-local-cas")
    monkeypatch.setattr(install, "asterisk_version", lambda argv: (22, "Asterisk 22.10.1"))
    ran: list[list[str]] = []

    def run(argv: Any) -> None:
        ran.append(list(argv))
        if argv[0] == "debootstrap":
            _debian_root(Path(argv[-2]))

    installer = install.Installer(_settings(tmp_path), run=run, is_root=True)
    installer.bootstrap_chroot(install.InstallReport())
    return ran


def test_root_is_fetched_over_https_and_checked_against_debians_keyring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLCENTER_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("CALLCENTER_DEBIAN_ALLOW_EXPIRED", raising=False)
    (tmp_path / "local-cas/site").mkdir(parents=True)
    (tmp_path / "local-cas/site/proxy.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    ran = _bootstrap(tmp_path, monkeypatch, tmp_path / "local-cas")
    # The keyring is missing on this "host": the installer brings it before debootstrap runs.
    assert ran[1][0] == "apt-get" and "debian-archive-keyring" in ran[1]
    debootstrap = next(argv for argv in ran if argv[0] == "debootstrap")
    assert debootstrap == ["debootstrap", "--variant=minbase", "--include=ca-certificates",
                           f"--keyring={tmp_path / 'no-keyring.gpg'}", "--force-check-gpg", "sid",
                           str(tmp_path / "root.building"), "https://deb.debian.org/debian"]
    assert not any("Check-Valid-Until" in arg for argv in ran for arg in argv)
    # The site's own CAs (a proxy's) are trusted in the root as on the host, before apt uses https.
    building = str(tmp_path / "root.building")
    assert ran.index(["chroot", building, "update-ca-certificates"]) < \
        ran.index(["chroot", building, "apt-get", "-qq", "--error-on=any", "update"])
    assert (tmp_path / "root/usr/local/share/ca-certificates/site/proxy.crt").exists()


def test_an_expired_release_is_accepted_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEBIAN_MIRROR", "https://snapshot.example/archive/debian/20261030T000000Z")
    monkeypatch.setenv("CALLCENTER_DEBIAN_ALLOW_EXPIRED", "1")
    ran = _bootstrap(tmp_path, monkeypatch)
    assert next(argv for argv in ran if argv[0] == "debootstrap")[-1] == \
        "https://snapshot.example/archive/debian/20261030T000000Z"
    assert ["chroot", str(tmp_path / "root.building"), "apt-get", "-qq", "--error-on=any",
            "-o", "Acquire::Check-Valid-Until=false", "update"] in ran
    assert not any("update-ca-certificates" in argv for argv in ran)  # no site CA on this host
