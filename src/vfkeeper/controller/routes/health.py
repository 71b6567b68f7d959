"""``/healthz`` and ``/readyz``: for load balancers and process supervisors; no token.

* ``GET /healthz``: the process answers (it reads nothing).
* ``GET /readyz``: the database answers and its schema is at this vfkeeper's migrations' head,
  so requests can be served; else 503 ``not_ready`` saying which.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import NotReadyError
from vfkeeper.store import migrate


def router(ctx: Context) -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/healthz")
    def healthz() -> dict[str, str]:
        """The controller process is up."""
        return {"status": "ok"}

    @r.get("/readyz")
    def readyz() -> dict[str, str]:
        """The database answers and its schema is current; 503 ``not_ready`` otherwise."""
        head = migrate.head()
        try:
            with ctx.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            current = migrate.current_revision(ctx.db.engine)
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise NotReadyError(f"the database does not answer: {reason}",
                                {"schema_head": head}) from None
        if current != head:
            raise NotReadyError(
                f"the database schema is at revision {current or 'none'}, not {head}: "
                "restart 'vfkeeper serve' (it upgrades the schema) or run a controller of "
                "the database's version", {"schema_revision": current, "schema_head": head})
        return {"status": "ready", "schema_revision": head}

    return r
