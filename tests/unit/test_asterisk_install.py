"""The Debian root's integrity (HTTPS, keyring, no expired Release unless asked) and Asterisk's own
ids and file modes in it (docs/asterisk.md)."""

import asyncio
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from callcenter.asterisk import install, layout
from callcenter.asterisk.layout import ASTERISK_IDS, AsteriskLayout, own_asterisk_ids, root_asterisk_ids
from callcenter.asterisk.process import AsteriskProcess, restrict_files
from callcenter.config import load_settings

FIRST = ASTERISK_IDS.start


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

    installer = install.Installer(_settings(tmp_path), run=run, is_root=True, host_etc=_debian_host(tmp_path),
                                  chown=lambda path, uid, gid: None)
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
    # A new build's Asterisk has ids no host account has.
    assert root_asterisk_ids(tmp_path / "root") == (FIRST, FIRST)


def test_an_expired_release_is_accepted_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEBIAN_MIRROR", "https://snapshot.example/archive/debian/20261030T000000Z")
    monkeypatch.setenv("CALLCENTER_DEBIAN_ALLOW_EXPIRED", "1")
    ran = _bootstrap(tmp_path, monkeypatch)
    assert next(argv for argv in ran if argv[0] == "debootstrap")[-1] == \
        "https://snapshot.example/archive/debian/20261030T000000Z"
    assert ["chroot", str(tmp_path / "root.building"), "apt-get", "-qq", "--error-on=any",
            "-o", "Acquire::Check-Valid-Until=false", "update"] in ran
    assert not any("update-ca-certificates" in argv for argv in ran)  # no site CA on this host


def test_asterisk_gets_the_first_id_free_on_the_host_and_in_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _debian_root(root)
    # Taken: FIRST by a host account, FIRST + 1 by a host group, FIRST + 2 by another account of the root.
    host = _debian_host(tmp_path, f"someone:x:{FIRST}:{FIRST}::/home/someone:/bin/bash\n")
    (host / "group").write_text((host / "group").read_text() + f"team:x:{FIRST + 1}:\n")
    (root / "etc/passwd").write_text((root / "etc/passwd").read_text() + f"other:x:{FIRST + 2}:65534::/:/bin/false\n")
    assert own_asterisk_ids(root, host, chown=lambda path, uid, gid: None) == (FIRST + 3, FIRST + 3)
    assert root_asterisk_ids(root) == (FIRST + 3, FIRST + 3)
    assert "asterisk:x:59903:59903:Asterisk PBX daemon:/var/lib/asterisk:" in (root / "etc/passwd").read_text()
    assert "asterisk:x:59903:\n" in (root / "etc/group").read_text()
    assert "root:x:0:0:root" in (root / "etc/passwd").read_text()
    assert own_asterisk_ids(root, host, chown=lambda path, uid, gid: None) is None  # already done


def test_an_older_root_hands_asterisks_files_to_the_new_ids(tmp_path: Path) -> None:
    """The root of an earlier version: its Asterisk has an id a host account has (here: ours)."""
    root = tmp_path / "root"
    _debian_root(root, os.getuid(), os.getgid())
    (root / "srv/callcenter/main/log").mkdir(parents=True)
    (root / "srv/callcenter/main/log/cel.jsonl").write_text("{}\n")
    (root / "usr/sbin").mkdir(parents=True)
    os.symlink("asterisk-22", root / "usr/sbin/asterisk")
    host = _etc(tmp_path / "host", f"me:x:{os.getuid()}:{os.getgid()}::/:/bin/sh\n", f"me:x:{os.getgid()}:\n")
    handed: dict[str, tuple[int, int]] = {}
    assert own_asterisk_ids(root, host, chown=lambda path, uid, gid: handed.update({path: (uid, gid)})) == \
        (FIRST, FIRST)
    assert handed[str(root / "srv/callcenter/main/log/cel.jsonl")] == (FIRST, FIRST)
    assert handed[str(root / "usr/sbin/asterisk")] == (FIRST, FIRST)  # the link itself, not its target
    assert handed[str(root)] == (FIRST, FIRST)


def test_a_root_with_a_running_asterisk_keeps_its_ids_until_it_stops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    _debian_root(root)
    monkeypatch.setattr(layout, "processes_in", lambda path: [4242])
    assert own_asterisk_ids(root, _debian_host(tmp_path), chown=lambda path, uid, gid: None) is None
    assert root_asterisk_ids(root) == (101, 101)


def test_install_fixes_the_ids_of_an_already_built_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    _debian_root(root)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    (root / ".callcenter-ready").write_text("Asterisk 22\n")
    monkeypatch.setattr(install.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    installer = install.Installer(_settings(tmp_path), run=lambda argv: None, is_root=True,
                                  host_etc=_debian_host(tmp_path), chown=lambda path, uid, gid: None)
    report = installer.install()
    assert report.actions == [f"gave Asterisk in {root} uid/gid {FIRST}/{FIRST}, which no host account has"]
    assert installer.install().actions == []


def _system_layout(tmp_path: Path, binary: str = "asterisk") -> AsteriskLayout:
    host_dir = tmp_path / "instance"
    return AsteriskLayout("system", None, binary, "unit", host_dir, PurePosixPath(str(host_dir)))


def test_files_an_older_asterisk_left_lose_their_world_bits(tmp_path: Path) -> None:
    instance = _system_layout(tmp_path)
    for name in ("log", "spool/recording", "etc"):
        instance.host(name).mkdir(parents=True)
        os.chmod(instance.host(name), 0o755)
    for name in ("log/cel.jsonl", "log/messages.log", "spool/recording/r1.wav", "etc/pjsip.conf",
                 "etc/manager.conf", "etc/extensions.conf"):
        instance.host(name).write_text("x")
        os.chmod(instance.host(name), 0o644)
    restrict_files(instance)

    def mode(name: str) -> int:
        return stat.S_IMODE(instance.host(name).stat().st_mode)

    assert [mode(n) for n in ("log/cel.jsonl", "log/messages.log", "spool/recording/r1.wav")] == [0o640] * 3
    assert [mode(n) for n in ("log", "spool", "spool/recording")] == [0o750] * 3
    assert mode("etc/pjsip.conf") == mode("etc/manager.conf") == 0o640
    assert mode("etc/extensions.conf") == 0o644  # no password in it


async def test_asterisk_creates_its_files_without_world_bits(tmp_path: Path) -> None:
    fake = tmp_path / "fake-asterisk"
    # What Asterisk does at start: its logs, with the mode fopen() gives them.
    fake.write_text('#!/bin/sh\ndir=$(dirname "$(dirname "$2")")\nmkdir -p "$dir/log"\n'
                    'echo "{}" > "$dir/log/cel.jsonl"\necho started\n')
    fake.chmod(0o755)
    instance = _system_layout(tmp_path, str(fake))
    process = AsteriskProcess(instance, tmp_path / "var/log/asterisk-unit.log")
    await process.start()
    assert await asyncio.wait_for(process.wait_exit(), 10) == 0
    assert stat.S_IMODE(instance.host("log/cel.jsonl").stat().st_mode) == 0o640
    assert stat.S_IMODE(instance.host("log").stat().st_mode) == 0o750
    assert stat.S_IMODE(process.log_file.stat().st_mode) == 0o640
    assert process.log_file.read_text() == "started\n"
