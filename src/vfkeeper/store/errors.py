"""Errors of the store.

The tree (add new errors where they belong, and list them here)::

    StoreError                     base of everything the store raises
    ├── DatabaseUrlError           the database URL names a backend vfkeeper does not support
    ├── MigrationError             the database schema is newer than this vfkeeper knows
    └── StoreUnavailableError      503 ``store_unavailable``: the database does not answer (down,
                                   unreachable, out of connections, its file unusable); retry

Errors the API turns into HTTP responses carry ``http_status`` and ``code``; the controller's
single exception handler reads them.
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Base of every error the store raises."""

    http_status = 500
    code = "store_error"

    @property
    def details(self) -> dict[str, Any]:
        return {}


class DatabaseUrlError(StoreError):
    """The URL's backend is not SQLite or PostgreSQL (through psycopg 3)."""

    code = "bad_database_url"

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"unsupported database URL {url!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        )

    @property
    def details(self) -> dict[str, Any]:
        return {"url": self.url}


class MigrationError(StoreError):
    """The database is at a revision this vfkeeper's migrations do not contain."""

    code = "unknown_schema_revision"

    def __init__(self, revision: str, known: list[str]) -> None:
        self.revision = revision
        self.known = known
        super().__init__(
            f"the database schema is at revision {revision!r}, which this vfkeeper does not know "
            f"(known: {', '.join(known)}); upgrade vfkeeper, or point it at another database"
        )

    @property
    def details(self) -> dict[str, Any]:
        return {"revision": self.revision, "known": self.known}


class StoreUnavailableError(StoreError):
    """The database does not answer: the server is down, unreachable, restarting or out of
    connections, or the SQLite file cannot be opened, read or written. Nothing was written;
    the same request may succeed once it is back (``retry_after_s``)."""

    http_status = 503
    code = "store_unavailable"
    retry_after_s = 5
    """What ``Retry-After`` says: the agents retry on their own intervals anyway."""

    def __init__(self, backend: str, cause: str) -> None:
        self.backend = backend
        self.cause = cause
        check = {
            "postgresql": "check that the PostgreSQL server of --db is running and reachable "
                          "from the controller, and has connections to spare",
            "sqlite": "check that the SQLite file of --db exists and that the controller may "
                      "read and write it and its directory, on a disk that is not full",
        }.get(backend, "check the database of --db")
        super().__init__(f"the controller's database does not answer ({cause}); {check}; "
                         f"nothing was changed: retry in {self.retry_after_s} s")

    @property
    def details(self) -> dict[str, Any]:
        return {"backend": self.backend, "cause": self.cause,
                "retry_after_s": self.retry_after_s}
