"""Organisational units: admin scopes, the FTPS tree each admin gets, and the last top admin rule."""

from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db.engine import Database
from callcenter.db.models import User
from callcenter.errors import UserError
from callcenter.users import services as users
from callcenter.users import units


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'u.db'}")
    database.migrate()
    with database.session() as session:
        users.add_user(session, name="Root", login="root", roles=("admin",))
        users.add_user(session, name="Second", login="second", roles=("admin",))
        users.add_user(session, name="Sales boss", login="salesboss", roles=("admin",))
        users.add_user(session, name="Agent A", extension="2101")
        users.add_user(session, name="Agent B", extension="2102")
        users.add_user(session, name="Agent C", extension="2103")
    return database


def scope_of(session: object, login: str) -> units.AdminScope | None:
    user = session.scalar(select(User).where(User.login == login))  # type: ignore[attr-defined]
    return units.admin_scope(session, user)  # type: ignore[arg-type]


def grant_root(db: Database) -> None:
    with db.session() as session:
        units.grant_all_units(session, "root", True)


def test_unit_admins_see_their_units_and_only_an_explicit_grant_sees_all(db: Database, tmp_path: Path) -> None:
    grant_root(db)
    with db.session() as session:
        units.save_unit(session, "Sales", members=["2101", "2102"], admins=["salesboss"])
        units.save_unit(session, "Support", members=["2103"], admins=["salesboss"])
    with db.session() as session:
        top = scope_of(session, "root")
        boss = scope_of(session, "salesboss")
        assert top is not None and top.top and scope_of(session, "2101") is None
        assert boss is not None and not boss.top and [u.name for u in boss.units] == ["Sales", "Support"]
        assert boss.covers(boss.units[0].id) and not boss.covers(None) and top.covers(None)
        files = tmp_path / "files"
        assert top.file_roots(files) == {name: files / name for name in ("CDRs", "QueueCalls", "Recordings")}
        sales_id = boss.units[0].id
        assert boss.file_roots(files)["Sales"] == files / "units" / str(sales_id)
        units.save_unit(session, "Support", admins=[])
    with db.session() as session:
        boss = scope_of(session, "salesboss")
        assert boss is not None
        assert boss.file_roots(files)["CDRs"] == files / "units" / str(boss.units[0].id) / "CDRs"
        assert [(u.name, u.members, u.admins) for u in units.list_units(session)] == [
            ("Sales", ("2101", "2102"), ("salesboss",)), ("Support", ("2103",), ())]


def test_an_admin_of_no_unit_sees_nothing_instead_of_everything(db: Database, tmp_path: Path) -> None:
    """Before: an admin who administered no unit was a top admin, so losing their last unit (the unit
    removed, or re-saved without them) silently gave them every record."""
    grant_root(db)
    with db.session() as session:
        units.save_unit(session, "Sales", members=["2101"], admins=["salesboss"])
    with db.session() as session:
        units.save_unit(session, "Sales", admins=[])
    with db.session() as session:
        boss = scope_of(session, "salesboss")
        assert boss is not None and not boss.top and boss.empty and not boss.covers(None)
        assert boss.file_roots(tmp_path) == {}
        second = scope_of(session, "second")  # an admin never given anything
        assert second is not None and second.empty


def test_removing_a_unit_with_managers_asks_what_becomes_of_them(db: Database) -> None:
    grant_root(db)
    with db.session() as session:
        units.save_unit(session, "Sales", members=["2101"], admins=["salesboss"])
        units.save_unit(session, "Support", admins=["second"])
    with db.session() as session, pytest.raises(UserError, match="managed by salesboss: say what becomes"):
        units.remove_unit(session, "Sales")
    with db.session() as session:
        units.remove_unit(session, "Sales", managers_to="Support")
    with db.session() as session:
        boss = scope_of(session, "salesboss")
        assert boss is not None and [u.name for u in boss.units] == ["Support"]
        assert session.scalar(select(User.org_unit_id).where(User.extension == "2101")) is None
        units.remove_unit(session, "Support", drop_managers=True)
    with db.session() as session:
        boss = scope_of(session, "salesboss")
        assert boss is not None and boss.empty


def test_the_last_top_admin_can_be_neither_removed_nor_demoted_nor_disabled_nor_ungranted(db: Database) -> None:
    with db.session() as session, pytest.raises(UserError, match="admin or supervisor role"):
        units.grant_all_units(session, "2101", True)
    grant_root(db)
    with db.session() as session:
        units.save_unit(session, "Sales", admins=["salesboss", "second", "root"])  # a grant stays a grant
        assert scope_of(session, "root").top  # type: ignore[union-attr]
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        users.set_roles(session, "root", ["agent"])
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        users.remove_user(session, "root")
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        users.set_disabled(session, "root", True)
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        units.grant_all_units(session, "root", False)
    with db.session() as session, pytest.raises(UserError, match="admin or supervisor role"):
        units.save_unit(session, "Sales", admins=["2101"])
    with db.session() as session:
        users.set_roles(session, "2101", ["supervisor"])
        units.save_unit(session, "Sales", admins=["2101"])  # supervisors manage units too
    # A manager who loses both manager roles stops managing units; the top admin stays.
    with db.session() as session:
        users.set_roles(session, "2101", ["agent"])
        units.save_unit(session, "Sales", admins=["salesboss", "second"])
        users.set_roles(session, "second", ["agent"])
        assert [u.admins for u in units.list_units(session)] == [("salesboss",)]
        units.remove_unit(session, "Sales", drop_managers=True)
        assert units.list_units(session) == []
    with db.session() as session, pytest.raises(UserError, match="unit name"):
        units.save_unit(session, "a/b")


def test_role_changes_and_disabling_end_sessions_and_disabled_users_cannot_log_in(db: Database) -> None:
    with db.session() as session:
        before = users.find_user(session, "2101").session_epoch
        changed = users.set_passwords(session, "2101", panel_password="right-password-1")
        epoch = changed.user.session_epoch
        assert epoch == before + 1  # a password reset ends the sessions too
    with db.session() as session:
        assert users.check_login(session, "2101", "right-password-1") is not None
        assert users.check_login(session, "2101", "wrong") is None
        assert users.check_login(session, "nobody", "right-password-1") is None
        users.set_roles(session, "2101", ["agent", "supervisor"])
    with db.session() as session:
        assert users.find_user(session, "2101").session_epoch == epoch + 1
        users.set_disabled(session, "2101", True)
    with db.session() as session:
        assert users.find_user(session, "2101").session_epoch == epoch + 2
        assert users.check_login(session, "2101", "right-password-1") is None
        users.set_disabled(session, "2101", False)
    with db.session() as session:
        assert users.check_login(session, "2101", "right-password-1") is not None
