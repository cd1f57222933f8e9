"""Secrets: SIP passwords stored only as their digest HA1, demo users with separate SIP and panel
passwords, and passwords shown once on the first start, never in a log."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from callcenter.app import Controller
from callcenter.asterisk.layout import ASTERISK_IDS, resolve_layout
from callcenter.asterisk.render import REALM, Renderer, SipUser, sip_ha1, takes_password_digest
from callcenter.config import load_settings
from callcenter.db.engine import Database, alembic_config
from callcenter.db.models import User
from callcenter.secrets import load_or_create
from callcenter.users import first_start
from callcenter.users import services as users

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'u.db'}")
    database.migrate()
    return database


def _settings(tmp_path: Path, root: Path) -> Any:
    config = tmp_path / "c.toml"
    config.write_text(f"[asterisk]\nmode = 'chroot'\ninstance = 'unit'\nroot = '{root}'\n"
                      f"[database]\nurl = 'sqlite:///{tmp_path / 'c.db'}'\n[paths]\nvar_dir = '{tmp_path}/var'\n"
                      f"dialplan_dir = '{REPO / 'dialplan'}'\nsounds_dir = '{REPO / 'sounds'}'\n")
    return load_settings(config, environ={})


def _ready_root(tmp_path: Path, version: str = "22.10.1") -> Path:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    (root / ".callcenter-ready").write_text(f"Asterisk {version}\n")
    (root / "etc").mkdir()
    # As root, ids no host account has (else the root's ids are moved there); otherwise our own.
    uid, gid = (ASTERISK_IDS.start,) * 2 if os.geteuid() == 0 else (os.getuid(), os.getgid())
    (root / "etc/passwd").write_text(f"asterisk:x:{uid}:{gid}::/:/bin/false\n")
    return root


def _stored_text(db: Database) -> str:
    """Every value of every column of the users table, as one string."""
    with db.session() as session:
        return " ".join(str(value) for row in session.execute(select(User.__table__)).all() for value in row)


def test_only_the_ha1_of_a_sip_password_is_stored(db: Database) -> None:
    with db.session() as session:
        new = users.add_user(session, name="Eve", extension="2010", sip_password="plain-Secret-1")
        admin = users.add_user(session, name="Ann", login="ann", roles=["admin"])
    expected = hashlib.md5(b"2010:callcenter:plain-Secret-1").hexdigest()
    assert REALM == "callcenter" and sip_ha1("2010", "plain-Secret-1") == expected
    assert new.user.sip_ha1 == expected and admin.user.sip_ha1 == ""
    columns = {c["name"] for c in inspect(db.engine).get_columns("users")}
    assert "sip_ha1" in columns and "sip_secret" not in columns
    assert "plain-Secret-1" not in _stored_text(db)
    with db.session() as session:
        changed = users.set_passwords(session, "2010", generate=True)
        assert changed.sip_password
        assert users.find_user(session, "2010").sip_ha1 == sip_ha1("2010", changed.sip_password)
        assert [u.sip_ha1 for u in users.sip_users(session)] == [sip_ha1("2010", changed.sip_password)]
    assert changed.sip_password not in _stored_text(db)


def test_demo_users_get_different_sip_and_panel_passwords_none_stored_in_plain(db: Database) -> None:
    with db.session() as session:
        created = users.seed_demo(session)
    assert created is not None and created[0].user.login == "admin"
    demo = created[1:]
    assert [c.user.extension for c in demo] == ["2001", "2002", "2003", "2004", "2005", "2006"]
    stored = _stored_text(db)
    for c in demo:
        assert c.sip_password and c.panel_password and c.sip_password != c.panel_password
        assert c.user.sip_ha1 == sip_ha1(c.user.extension or "", c.sip_password)
        assert users.verify_password(c.user.password_hash, c.panel_password)
        assert not users.verify_password(c.user.password_hash, c.sip_password)
        assert c.sip_password not in stored and c.panel_password not in stored
    passwords = [p for c in demo for p in (c.sip_password, c.panel_password)]
    assert len(set(passwords)) == len(passwords)


@pytest.mark.parametrize(("version", "option"), [("22.10.1+dfsg-1", "password_digest"), ("22", "password_digest"),
                                                 ("20.6.0~dfsg", "md5_cred"), ("21.7.0", "password_digest")])
def test_rendered_auth_uses_the_md5_credential_and_no_plaintext(tmp_path: Path, version: str, option: str) -> None:
    settings = _settings(tmp_path, _ready_root(tmp_path, version))
    layout = resolve_layout(settings)
    renderer = Renderer(settings, layout, load_or_create(settings.var_dir))
    renderer.prepare_dirs()
    ha1 = sip_ha1("2001", "plain-Secret-1")
    renderer.render([SipUser("2001", "Alice", ha1)])
    pjsip = layout.host("etc", "pjsip.conf").read_text()
    auth = pjsip.split("[2001-auth]")[1].split("\n\n")[0]
    expected = ["type = auth", "realm = callcenter", "username = 2001"]
    expected += ["auth_type = digest", f"password_digest = MD5:{ha1}"] if option == "password_digest" \
        else ["auth_type = md5", f"md5_cred = {ha1}"]
    assert auth.strip().splitlines() == expected
    assert "plain-Secret-1" not in pjsip and "userpass" not in pjsip and "\npassword =" not in pjsip
    pin = SipUser("2001", "Alice", ha1).voicemail_pin
    assert f"2001 => {pin},Alice" in layout.host("etc", "voicemail.conf").read_text() and len(pin) == 6


def test_which_asterisk_takes_password_digest() -> None:
    assert takes_password_digest("Asterisk 22.10.1+dfsg+~cs6.17.60671434-1")
    assert takes_password_digest("Asterisk 20.12.0") and takes_password_digest("Asterisk 23.0.0")
    assert not takes_password_digest("Asterisk 20.6.0~dfsg+~cs6.13.40431414-2build5")
    assert not takes_password_digest("Asterisk 22.1.1") and not takes_password_digest("Asterisk 21.6.0")


def test_migration_turns_plaintext_sip_secrets_into_their_ha1(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    config = alembic_config(database.engine)
    command.upgrade(config, "0007")
    now = datetime.now(UTC)
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO users (login, extension, name, sip_secret, roles, created_at, all_units, disabled, "
            "session_epoch) VALUES ('2001', '2001', 'Alice', 'old-Secret-1', 'agent', :now, 0, 0, 0), "
            "('admin', NULL, 'Admin', '', 'admin', :now, 1, 0, 0)"), {"now": now})
    command.upgrade(config, "head")
    with database.engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT login, sip_ha1 FROM users")).all())
        columns = {c["name"] for c in inspect(connection).get_columns("users")}
    assert rows == {"2001": sip_ha1("2001", "old-Secret-1"), "admin": ""}
    assert "sip_secret" not in columns
    command.downgrade(config, "0007")
    with database.engine.connect() as connection:
        secrets = dict(connection.execute(text("SELECT login, sip_secret FROM users")).all())
    assert secrets["admin"] == "" and len(secrets["2001"]) >= 12  # a new random one, never empty
    database.dispose()


def test_first_start_shows_passwords_once_then_only_where_they_are(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(tmp_path, _ready_root(tmp_path))
    controller = Controller(settings, instance="unit")
    controller._prepare()
    path = settings.var_dir / first_start.FILE_NAME
    accounts = first_start.read(settings.var_dir)
    passwords = [p for a in accounts for p in (a.sip_password, a.panel_password) if p]
    assert [a.login for a in accounts] == ["admin", "2001", "2002", "2003", "2004", "2005", "2006"]
    assert len(set(passwords)) == 13  # the admin's panel password, the demo users' SIP and panel ones
    assert (path.stat().st_mode & 0o777) == 0o600
    assert "NOT updated when a password is changed" in path.read_text()
    with controller.db.session() as session:
        admin = users.find_user(session, "admin")
        assert users.verify_password(admin.password_hash, accounts[0].panel_password)
        alice = users.find_user(session, "2001")
        assert alice.sip_ha1 == sip_ha1("2001", accounts[1].sip_password or "")
        assert users.verify_password(alice.password_hash, accounts[1].panel_password)

    first = controller.banner()
    assert all(p in first for p in passwords) and str(path) in first
    assert not any(p in controller.banner() for p in passwords)  # shown once, even by the same process
    controller.db.dispose()

    later = Controller(settings, instance="unit")  # the second start: the database has its users
    later._prepare()
    second = later.banner()
    assert not any(p in second for p in passwords)
    assert str(path) in second and "callcenter users passwd <ext or login> --generate" in second
    assert "2001  Agent Alice" in second
    assert first_start.read(settings.var_dir) == accounts  # not rewritten by later starts
    path.unlink()
    assert "deleted" in later.banner()
    later.db.dispose()
    assert caplog.records and not any(p in record.getMessage() for record in caplog.records for p in passwords)
