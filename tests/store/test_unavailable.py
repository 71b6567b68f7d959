"""Which database errors say "the database does not answer" (503 ``store_unavailable``) and
which are bugs or refusals of a statement (not an outage): ``vfkeeper.store.database.
unavailable`` on the errors SQLAlchemy raises for psycopg and sqlite3."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy import exc as sa

from vfkeeper.store.database import unavailable
from vfkeeper.store.errors import StoreUnavailableError


def _sqlite(message: str, name: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = name  # what sqlite3 sets on the errors it raises
    return error


@pytest.mark.parametrize(("wrapped", "backend"), [
    (sa.OperationalError("SELECT 1", {}, psycopg.OperationalError(
        "connection failed: Connection refused")), "postgresql"),
    (sa.OperationalError("SELECT 1", {}, pg.AdminShutdown("terminating connection")),
     "postgresql"),
    (sa.OperationalError("SELECT 1", {}, pg.CannotConnectNow("the database system is "
                                                               "starting up")), "postgresql"),
    (sa.OperationalError("SELECT 1", {}, pg.TooManyConnections("too many clients")),
     "postgresql"),
    (sa.InterfaceError("SELECT 1", {}, psycopg.InterfaceError("the connection is closed"),
                       connection_invalidated=True), "postgresql"),
    (sa.OperationalError("SELECT 1", {}, _sqlite("unable to open database file",
                                                 "SQLITE_CANTOPEN")), "sqlite"),
    (sa.OperationalError("SELECT 1", {}, _sqlite("disk I/O error", "SQLITE_IOERR_WRITE")),
     "sqlite"),
    (sa.OperationalError("SELECT 1", {}, _sqlite("database is locked", "SQLITE_BUSY")),
     "sqlite"),
    (sa.TimeoutError("QueuePool limit of size 10 overflow 20 reached"), "pool"),
])
def test_a_database_that_does_not_answer_is_unavailable(wrapped: Exception,
                                                        backend: str) -> None:
    outage = unavailable(wrapped)
    assert isinstance(outage, StoreUnavailableError)
    assert (outage.http_status, outage.code, outage.backend) == (503, "store_unavailable",
                                                                 backend)
    assert "does not answer" in str(outage) and "check" in str(outage)


@pytest.mark.parametrize("wrapped", [
    sa.IntegrityError("INSERT", {}, pg.UniqueViolation("duplicate key")),
    sa.OperationalError("SELECT", {}, pg.SerializationFailure("could not serialize")),
    sa.OperationalError("SELECT", {}, pg.DeadlockDetected("deadlock detected")),
    sa.OperationalError("SELECT", {}, pg.QueryCanceled("statement timeout")),
    sa.DataError("INSERT", {}, pg.NumericValueOutOfRange("integer out of range")),
    sa.ProgrammingError("SELECT", {}, pg.UndefinedTable("no such table")),
    sa.OperationalError("SELECT", {}, _sqlite("no such table: hosts", "SQLITE_ERROR")),
    sa.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
    ValueError("not from the database"),
])
def test_anything_else_is_not_an_outage(wrapped: Exception) -> None:
    assert unavailable(wrapped) is None
