"""The database handle: one engine, read and write transactions, SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Every write transaction on
SQLite starts with ``BEGIN IMMEDIATE``, so it takes the database's write lock before it reads
anything: two writers never both read "free" and then both write. On PostgreSQL, writers lock the
rows they decide on (``SELECT ... FOR UPDATE``, see :mod:`vfkeeper.store.claims`).

PostgreSQL connections are checked without a round trip (no ``pool_pre_ping``, which costs one
per checkout): an idle pooled connection has nothing to read, so one whose socket is readable
(the server closed it, e.g. on a restart or ``pg_terminate_backend``) or that psycopg knows is
closed is dropped at checkout and replaced (:func:`_pg_on_checkout`). ``pool_recycle`` replaces
connections after :data:`PG_POOL_RECYCLE_S`, which bounds what a silent network drop can leave
in the pool; a disconnect that still reaches a statement invalidates the whole pool
(SQLAlchemy), and the boot retries its transaction on it.
"""

from __future__ import annotations

import select
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from vfkeeper.store.errors import DatabaseUrlError, StoreUnavailableError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "vfkeeper_write"
PG_POOL_RECYCLE_S = 1800


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _pg_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has closed; the pool then connects anew.

    A zero-timeout ``select`` on the socket: no round trip. Between transactions the server
    sends nothing, so anything readable is its goodbye (an error message, then end of file)."""
    if dbapi_connection.closed:
        raise DisconnectionError("connection closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed the connection")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///PATH`` or ``postgresql+psycopg://...``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise DatabaseUrlError(url) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername != "sqlite" or not parsed.database or parsed.database == ":memory:":
            raise DatabaseUrlError(url)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql" and parsed.get_driver_name() == "psycopg":
        engine = create_engine(parsed, pool_size=10, max_overflow=20,
                               pool_recycle=PG_POOL_RECYCLE_S)
        event.listen(engine, "checkout", _pg_on_checkout)
        return engine
    raise DatabaseUrlError(url)


_PG_UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
"""SQLSTATEs (or their class) of a server that does not serve: connection exceptions, admin or
crash shutdown, cannot connect now (starting, stopping, in recovery), too many connections."""
_SQLITE_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_READONLY",
                       "SQLITE_BUSY", "SQLITE_NOTADB")
"""sqlite3 error names (prefixes) of a file that cannot be used now: cannot open, disk I/O
error, disk full, read-only, still locked after the busy timeout, not a database."""


def unavailable(exc: BaseException) -> StoreUnavailableError | None:
    """The :class:`StoreUnavailableError` that ``exc`` (raised by SQLAlchemy) amounts to when it
    says the database does not answer, else ``None`` (a bug, a constraint: not an outage)."""
    if isinstance(exc, PoolTimeoutError):
        return StoreUnavailableError("pool", "no database connection came free in time")
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    cause = " ".join(str(orig).split())[:300] or type(orig).__name__
    if isinstance(orig, sqlite3.Error):
        down = str(getattr(orig, "sqlite_errorname", "")).startswith(_SQLITE_UNAVAILABLE)
        return StoreUnavailableError("sqlite", cause) if down else None
    if exc.connection_invalidated or _pg_unavailable(exc):
        return StoreUnavailableError("postgresql", cause)
    return None


def _pg_unavailable(exc: DBAPIError) -> bool:
    """psycopg's OperationalError without a server's SQLSTATE (it could not connect, or lost
    the connection) or with one of :data:`_PG_UNAVAILABLE`."""
    if not isinstance(exc, OperationalError) or not type(exc.orig).__module__.startswith(
            "psycopg"):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    return state is None or str(state).startswith(_PG_UNAVAILABLE)


class Database:
    """The engine plus the two kinds of transaction the controller uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Session]:
        """A read-only transaction; closing the session ends it without a commit, and the objects
        read stay usable (detached, with what was loaded).

        ``snapshot``: every statement sees the database as it was when the first one ran
        (PostgreSQL ``REPEATABLE READ``; a SQLite read transaction in WAL mode always does). For
        a document assembled from several queries that must agree with each other, such as a
        host's desired state: under PostgreSQL's default ``READ COMMITTED`` a task that starts
        between two of its queries would show up in one and not in the other."""
        with self._sessions() as session:
            if snapshot and not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session:
            session.connection(execution_options={WRITE_OPTION: True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
