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


def test_unit_admins_see_their_units_users_and_top_admins_see_all(db: Database, tmp_path: Path) -> None:
    with db.session() as session:
        units.save_unit(session, "Sales", members=["2101", "2102"], admins=["salesboss"])
        units.save_unit(session, "Support", members=["2103"], admins=["salesboss"])
    with db.session() as session:
        top = scope_of(session, "root")
        boss = scope_of(session, "salesboss")
        assert top is not None and top.top and scope_of(session, "2101") is None
        assert boss is not None and not boss.top and [u.name for u in boss.units] == ["Sales", "Support"]
        subquery = units.scoped_user_ids(boss)
        assert subquery is not None and units.scoped_user_ids(top) is None
        seen = set(session.scalars(select(User.extension).where(User.id.in_(subquery))))
        assert seen == {"2101", "2102", "2103"}
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


def test_the_last_top_admin_can_be_neither_removed_nor_demoted_nor_made_a_unit_admin(db: Database) -> None:
    with db.session() as session:
        units.save_unit(session, "Sales", admins=["salesboss", "second"])
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        units.save_unit(session, "Sales", admins=["salesboss", "second", "root"])
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        users.set_roles(session, "root", ["agent"])
    with db.session() as session, pytest.raises(UserError, match="last top admin"):
        users.remove_user(session, "root")
    with db.session() as session, pytest.raises(UserError, match="needs the admin role"):
        units.save_unit(session, "Sales", admins=["2101"])
    # A unit admin who loses the admin role stops administering units; the top admin stays.
    with db.session() as session:
        users.set_roles(session, "second", ["agent"])
        assert [u.admins for u in units.list_units(session)] == [("salesboss",)]
        units.remove_unit(session, "Sales")
        assert units.list_units(session) == []
    with db.session() as session, pytest.raises(UserError, match="unit name"):
        units.save_unit(session, "a/b")
