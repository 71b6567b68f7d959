"""Alembic environment: always run programmatically by :mod:`vfkeeper.store.migrate`, which
hands over an open connection in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from vfkeeper.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
