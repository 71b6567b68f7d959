"""The controller's composition root: ``create_app(settings)`` builds everything once and passes
it down; there are no module-level singletons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from vfkeeper import __version__
from vfkeeper.controller import handlers, specs
from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.auth import Auth
from vfkeeper.controller.cluster import SchedulingCache
from vfkeeper.controller.context import Context
from vfkeeper.controller.limits import BodyGuard, TokenRoutes
from vfkeeper.controller.routes import (
    agent,
    health,
    hosts,
    instances,
    lifecycle,
    networks,
    ports,
    reads,
)
from vfkeeper.controller.routes import metadata as metadata_routes
from vfkeeper.controller.routes import specs as spec_routes
from vfkeeper.controller.routes import subnets as subnet_routes
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.models import utcnow

ROUTERS = (health, hosts, agent, networks, subnet_routes, ports, spec_routes, instances,
           lifecycle, metadata_routes, reads)


def create_app(
    settings: ControllerSettings,
    *,
    database: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
    seed: int | None = None,
) -> FastAPI:
    """The FastAPI app for ``settings``. Upgrades the database schema to head first.

    ``database``, ``clock`` and ``seed`` (for the MAC/GUID draws) are for tests and benchmarks.
    """
    db = database or Database(settings.db_url)
    migrate.upgrade(db.engine)
    ctx = Context(
        settings=settings,
        db=db,
        auth=Auth(db, enabled=settings.auth, cache_ttl_s=settings.token_cache_ttl_s),
        addresses=AddressPools.from_settings(settings.mac_prefix, settings.guid_range, seed),
        matcher_for=specs.matcher_for,
        clock=clock,
        scheduling=SchedulingCache(db, settings.agent_timeout_s),
    )
    app = FastAPI(
        title="vfkeeper",
        version=__version__,
        description="SR-IOV and InfiniBand VF passthrough as a managed service.",
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    routers = [module.router(ctx) for module in ROUTERS]
    for router in routers:
        app.include_router(router)
    responder = handlers.Responder()
    # the last added is the outermost: CatchAll (handlers.install) answers whatever BodyGuard
    # or the routes raise
    app.add_middleware(BodyGuard, auth=ctx.auth, responder=responder,
                       max_body_bytes=settings.max_body_bytes,
                       needs_token=TokenRoutes([r for router in routers for r in router.routes],
                                               ctx.auth.principal))
    handlers.install(app, responder)
    app.state.ctx = ctx
    return app
