"""Alembic environment: the engine comes from the controller (callcenter.db.engine.migrate)."""

from alembic import context
from sqlalchemy import create_engine

import callcenter.customers.models  # noqa: F401
import callcenter.db.models  # noqa: F401  (every table registers itself on Base.metadata)
import callcenter.reports.models  # noqa: F401
import callcenter.tickets.models  # noqa: F401
import callcenter.users.token_models  # noqa: F401
import callcenter.webhooks.models  # noqa: F401
from callcenter.db.base import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    # APScheduler owns its table; autogenerate must leave it alone.
    return not (type_ == "table" and name == "apscheduler_jobs")


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=include_object,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
