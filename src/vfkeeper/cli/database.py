"""Opening the controller's database from the command line (``serve``, ``token``): a URL vfkeeper
cannot use is a usage error naming ``--db`` (exit 2); a database that does not answer, or whose
schema is newer than this vfkeeper, exits 1 saying so."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from vfkeeper.cli.app import FAILED
from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.errors import DatabaseUrlError, StoreError


def open_database(url: str) -> Database:
    """The database at ``url``, its schema upgraded to this vfkeeper's head."""
    try:
        db = Database(url)
    except DatabaseUrlError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--db'") from None
    try:
        migrate.upgrade(db.engine)
    except StoreError as exc:
        db.dispose()
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(FAILED) from None
    except SQLAlchemyError as exc:
        db.dispose()
        reason = getattr(exc, "orig", None) or exc
        typer.echo(f"Error: cannot use the database {url} (--db): {reason}", err=True)
        raise typer.Exit(FAILED) from None
    return db
