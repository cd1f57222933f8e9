"""The alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import callcenter.db.models  # noqa: F401  (every table registers itself on Base.metadata)
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
