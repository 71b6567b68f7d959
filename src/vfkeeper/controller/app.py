"""The controller's composition root: ``create_app(settings)`` builds everything once and passes
it down; there are no module-level singletons."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from vfkeeper import __version__
from vfkeeper.controller import handlers, specs
from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.auth import Auth
from vfkeeper.controller.cluster import SchedulingCache
from vfkeeper.controller.context import Context
from vfkeeper.controller.limits import BodyGuard, TokenRoutes
from vfkeeper.controller.partition_reconciler import PartitionReconciler
from vfkeeper.controller.partitions import owned_pkeys
from vfkeeper.controller.routes import (
    agent,
    health,
    hosts,
    instances,
    lifecycle,
    networks,
    partitions,
    ports,
    reads,
)
from vfkeeper.controller.routes import metadata as metadata_routes
from vfkeeper.controller.routes import specs as spec_routes
from vfkeeper.controller.routes import subnets as subnet_routes
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.controller.sm_setup import build_backend
from vfkeeper.sm.protocol import SubnetManager
from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.models import utcnow

ROUTERS = (health, hosts, agent, networks, subnet_routes, ports, spec_routes, instances,
           lifecycle, metadata_routes, partitions, reads)


def create_app(
    settings: ControllerSettings,
    *,
    database: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
    seed: int | None = None,
    subnet_manager: SubnetManager | None = None,
) -> FastAPI:
    """The FastAPI app for ``settings``. Upgrades the database schema to head first.

    ``database``, ``clock`` and ``seed`` (for the MAC/GUID draws) are for tests and benchmarks;
    ``subnet_manager`` replaces the backend ``settings`` name (a test's fake). The partition
    reconciler runs in a background thread while the app's lifespan lasts (``vfkeeper serve``);
    tests drive it with ``app.state.ctx.partitions.run_pass()``.
    """
    db = database or Database(settings.db_url)
    migrate.upgrade(db.engine)

    def owned() -> set[int]:
        with db.read() as s:
            return owned_pkeys(s)

    backend = subnet_manager or build_backend(settings, owned)
    reconciler = PartitionReconciler(db, backend, clock=clock,
                                     sync_interval_s=settings.partition_sync_interval_s)
    ctx = Context(
        settings=settings,
        db=db,
        auth=Auth(db, enabled=settings.auth, cache_ttl_s=settings.token_cache_ttl_s),
        addresses=AddressPools.from_settings(settings.mac_prefix, settings.guid_range, seed),
        matcher_for=specs.matcher_for,
        clock=clock,
        scheduling=SchedulingCache(db, settings.agent_timeout_s),
        partitions=reconciler,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        reconciler.start()
        try:
            yield
        finally:
            reconciler.stop()

    app = FastAPI(
        title="vfkeeper",
        version=__version__,
        description="SR-IOV and InfiniBand VF passthrough as a managed service.",
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        lifespan=lifespan,
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
