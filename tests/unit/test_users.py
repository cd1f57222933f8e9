from pathlib import Path

import pytest

from callcenter.asterisk.render import sip_ha1
from callcenter.db.engine import Database
from callcenter.errors import UserError
from callcenter.users import services as users


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'u.db'}")
    database.migrate()
    return database


def test_demo_seed_creates_admin_agents_and_supervisor_once(db: Database) -> None:
    with db.session() as session:
        created = users.seed_demo(session)
    assert created is not None
    with db.session() as session:
        listed = users.list_users(session)
        assert [u.extension for u in listed] == ["2001", "2002", "2003", "2004", "2005", "2006", None]
        admin = users.find_user(session, "admin")
        assert created[0].panel_password and users.verify_password(admin.password_hash, created[0].panel_password)
        assert "supervisor" in users.find_user(session, "2005").role_list
        assert len({u.sip_ha1 for u in listed if u.extension}) == 6
        assert users.seed_demo(session) is None


def test_add_validates_and_generates_passwords(db: Database) -> None:
    with db.session() as session:
        new = users.add_user(session, name="Eve", extension="2010", org_unit="Sales")
        assert new.sip_password and new.panel_password
        assert users.verify_password(new.user.password_hash, new.panel_password)
        assert new.user.login == "2010" and new.user.org_unit is not None
    for kwargs, message in [
        ({"name": "X", "extension": "2010"}, "extension 2010 is taken"),
        ({"name": "X", "extension": "0123"}, "2-10 digits"),
        ({"name": "X", "extension": "2011", "roles": ["boss"]}, "roles must be among"),
        ({"name": " ", "extension": "2012"}, "name must not be empty"),
        ({"name": "X", "extension": "2013", "sip_password": "short"}, "SIP password"),
        ({"name": "X"}, "login None"),
    ]:
        with pytest.raises(UserError, match=message), db.session() as session:
            users.add_user(session, **kwargs)  # type: ignore[arg-type]


def test_passwords_change_and_the_last_admin_stays(db: Database) -> None:
    with db.session() as session:
        users.seed_demo(session)
        changed = users.set_passwords(session, "2001", generate=True)
        assert changed.sip_password
        assert users.find_user(session, "2001").sip_ha1 == sip_ha1("2001", changed.sip_password)
        with pytest.raises(UserError, match="no extension"):
            users.set_passwords(session, "admin", sip_password="abcdefgh1")
        users.remove_user(session, "2004")
        with pytest.raises(UserError, match="last top admin"):
            users.remove_user(session, "admin")
        with pytest.raises(UserError, match="no user"):
            users.remove_user(session, "9999")
