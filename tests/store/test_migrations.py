"""The Alembic revisions: upgrade from empty, from each earlier revision, downgrade, and the
models agree with what the migrations build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.errors import MigrationError
from vfkeeper.store.models import Base


def test_upgrade_from_empty_builds_every_table_at_head(db_url: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head()
    assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    db.dispose()


def test_models_match_the_migrations(db_url: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.dispose()


@pytest.mark.parametrize("start", migrate.revisions())
def test_upgrade_from_each_revision_reaches_head(db_url: str, start: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine, start)
    assert migrate.current_revision(db.engine) == start
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head()
    db.dispose()


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine)
    migrate.downgrade(db.engine, "base")
    assert not set(Base.metadata.tables) & set(inspect(db.engine).get_table_names())
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head()
    db.dispose()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head()
    db.dispose()


def test_a_schema_newer_than_this_vfkeeper_is_refused(db_url: str) -> None:
    db = Database(db_url)
    migrate.upgrade(db.engine)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    with pytest.raises(MigrationError, match="from-the-future"):
        migrate.upgrade(db.engine)
    db.dispose()
