import os
from pathlib import Path
from typing import Any

import pytest

from callcenter.asterisk import install
from callcenter.asterisk.layout import ASTERISK_IDS, resolve_layout
from callcenter.asterisk.render import Renderer, SipUser, rtp_range, sip_ha1
from callcenter.config import load_settings
from callcenter.errors import ProvisioningError
from callcenter.secrets import load_or_create

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, **asterisk: str) -> Any:
    config = tmp_path / "c.toml"
    lines = [f'{k} = "{v}"' for k, v in asterisk.items()]
    config.write_text("[asterisk]\n" + "\n".join(lines) + f"\n[paths]\nvar_dir = '{tmp_path}/var'\n"
                      f"dialplan_dir = '{REPO / 'dialplan'}'\nsounds_dir = '{REPO / 'sounds'}'\n")
    return load_settings(config, environ={})


def _ready_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    (root / ".callcenter-ready").write_text("Asterisk 22\n")
    (root / "etc").mkdir()
    # As root, ids no host account has (else the root's ids are moved there); otherwise our own,
    # which we can chown to.
    uid, gid = (ASTERISK_IDS.start,) * 2 if os.geteuid() == 0 else (os.getuid(), os.getgid())
    (root / "etc/passwd").write_text(f"asterisk:x:{uid}:{gid}::/:/bin/false\n")
    return root


def test_second_install_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _ready_root(tmp_path)
    settings = _settings(tmp_path, root=str(root))
    monkeypatch.setattr(install.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    ran: list[list[str]] = []
    report = install.Installer(settings, run=lambda argv: ran.append(list(argv)), is_root=True).install()
    assert ran == [] and report.actions == []
    assert report.asterisk == f"chroot {root}"


def test_missing_tools_without_root_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, root=str(_ready_root(tmp_path)))
    monkeypatch.setattr(install.shutil, "which", lambda tool: None if tool == "sipp" else f"/usr/bin/{tool}")
    with pytest.raises(ProvisioningError, match="sip-tester must be installed, which needs root"):
        install.Installer(settings, run=lambda argv: None, is_root=False).install()


def test_missing_tools_are_installed_with_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path, root=str(_ready_root(tmp_path)))
    monkeypatch.setattr(install.shutil, "which",
                        lambda tool: None if tool in ("sipp", "ffmpeg") else f"/usr/bin/{tool}")
    ran: list[list[str]] = []
    report = install.Installer(settings, run=lambda argv: ran.append(list(argv)), is_root=True).install()
    assert ran[0] == ["apt-get", "-qq", "update"]
    assert ran[1][-2:] == ["ffmpeg", "sip-tester"]
    assert report.actions == ["installed ffmpeg, sip-tester"]


def test_render_writes_every_file_once_and_only_changes_what_changed(tmp_path: Path) -> None:
    root = _ready_root(tmp_path)
    settings = _settings(tmp_path, root=str(root), mode="chroot", instance="unit")
    layout = resolve_layout(settings)
    assert str(layout.ast_dir) == "/srv/callcenter/unit"
    argv = layout.command("-rx", "x")
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert argv[-6:] == [str(root), "asterisk", "-C", "/srv/callcenter/unit/etc/asterisk.conf", "-rx", "x"]
    renderer = Renderer(settings, layout, load_or_create(settings.var_dir))
    renderer.prepare_dirs()
    users = [SipUser("2001", 'Alice "Al"', sip_ha1("2001", "s3cret-one"))]
    first = renderer.render(users)
    assert "pjsip.conf" in first and "extensions.conf" in first and "ari.conf" in first
    assert renderer.render(users) == []
    assert sorted(renderer.render([*users, SipUser("2002", "Bob", sip_ha1("2002", "s3cret-two"))])) == [
        "extensions.conf", "pjsip.conf", "voicemail.conf"]
    voicemail = layout.host("etc", "voicemail.conf").read_text()
    pin = SipUser("2002", "Bob", sip_ha1("2002", "s3cret-two")).voicemail_pin
    assert f"2002 => {pin},Bob" in voicemail and len(pin) == 6
    pjsip = layout.host("etc", "pjsip.conf").read_text()
    assert "[2002](user-endpoint)" in pjsip and f"password_digest = MD5:{sip_ha1('2002', 's3cret-two')}" in pjsip
    assert "callerid = \"Alice 'Al'\" <2001>" in pjsip
    manager = layout.host("etc", "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in manager and "write = reporting" in manager
    assert "originate" not in manager.split("write =")[1].split("\n")[0]
    assert (layout.host("etc", "ari.conf").stat().st_mode & 0o777) == 0o640
    extensions = layout.host("etc", "extensions.conf").read_text()
    assert "exten => 2002,1,Gosub(dial-user,s,1(2002))" in extensions
    assert "exten => 1000,1,Stasis(callcenter,did,${EXTEN})" in extensions
    assert (layout.sounds_host / "en").is_dir() or not (REPO / "sounds" / "en" / "welcome.wav").exists()


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "var")
    assert load_or_create(tmp_path / "var") == first
    assert first.ari_password != first.ami_password and len(first.ari_password) >= 24
    assert ((tmp_path / "var" / "secrets.json").stat().st_mode & 0o777) == 0o600


def test_instances_get_separate_rtp_ranges() -> None:
    assert rtp_range("main") == (10000, 14999)
    start, end = rtp_range("test-1234")
    assert 15000 <= start < end <= 55000
