"""Alembic migrations, run programmatically (``vfkeeper serve`` upgrades the database at start).

The migration scripts ship inside the package (``vfkeeper/store/migrations``); there is no
``alembic.ini``. Several controllers may start at once on one PostgreSQL database: the upgrade
holds a transaction-scoped advisory lock, so exactly one of them migrates and the others then
find the schema at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from vfkeeper.store.database import WRITE_OPTION
from vfkeeper.store.errors import MigrationError

_SCRIPTS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x7666_6B70  # "vfkp": the advisory lock that serializes concurrent upgrades


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def head() -> str:
    return revisions()[-1]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    known = revisions()
    current = current_revision(engine)
    if current is not None and current not in known:
        raise MigrationError(current, known)
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` for empty)."""
    _run(engine, "downgrade", revision)


def _run(engine: Engine, direction: str, revision: str) -> None:
    config = _config()
    with engine.connect() as plain:
        # On SQLite, the write option makes the transaction BEGIN IMMEDIATE (see database.py).
        conn = plain.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            config.attributes["connection"] = conn
            getattr(command, direction)(config, revision)
