"""The alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

# Each model module registers its tables on Base.metadata when imported.
import callcenter.customers.models
import callcenter.db.models
import callcenter.reports.models
import callcenter.tickets.models
import callcenter.users.token_models
import callcenter.webhooks.models  # noqa: F401
from callcenter.db.base import Base
from callcenter.db.engine import Database


def test_the_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'schema.db'}")
    db.migrate()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, Base.metadata)
                       if not (d[0] == "remove_table" and d[1].name == "apscheduler_jobs")]
    db.dispose()
    assert differences == []


def test_0009_moves_customer_numbers_and_downgrades(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from callcenter.db.engine import alembic_config

    db = Database(f"sqlite:///{tmp_path / 'crm.db'}")
    config = alembic_config(db.engine)
    command.upgrade(config, "0008")
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO customers (id, name, phone, note, created_at) "
                                "VALUES (1, 'Ada', '+3212345678', '', '2026-01-01 00:00:00')"))
    command.upgrade(config, "0009")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT customer_id, number FROM customer_phones")).all() == [
            (1, "+3212345678")]
        assert connection.execute(text("SELECT updated_at FROM customers")).scalar() is not None
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO customers (id, name, note, email, company, created_at, "
                                "updated_at) VALUES (2, 'Bob', '', '', '', '2026-01-01 00:00:00', "
                                "'2026-01-01 00:00:00')"))
    command.downgrade(config, "0008")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT id, phone FROM customers ORDER BY id")).all() == [
            (1, "+3212345678"), (2, "customer-2")]
    command.upgrade(config, "head")
    db.dispose()
