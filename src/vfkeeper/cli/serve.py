"""``vfkeeper serve``: run the controller (REST API under /v1, OpenAPI at /openapi.json,
``/healthz`` and ``/readyz`` for load balancers).

``--workers N`` runs N uvicorn worker processes on one listening socket. Each is a controller
of its own (its own scheduling cache), exactly like N replicas on one database: correctness
comes from the claim transaction (row locks on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), not
from the caches. The schema is upgraded once, by the parent, before the workers start.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import typer
import uvicorn
from fastapi import FastAPI

from vfkeeper.cli.database import open_database
from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import (
    DEFAULT_DB_URL,
    DEFAULT_GUID_RANGE,
    DEFAULT_LISTEN,
    DEFAULT_MAC_PREFIX,
    DEFAULT_MAX_BODY_BYTES,
    ControllerSettings,
    parse_listen,
)

SETTINGS_ENV = "VFKEEPER_SERVE_SETTINGS"
"""How ``serve --workers N`` hands its settings to the worker processes (JSON)."""


def app_from_environment() -> FastAPI:
    """The app of one worker of ``vfkeeper serve --workers N`` (uvicorn imports this factory
    in each worker process)."""
    return create_app(ControllerSettings.model_validate_json(os.environ[SETTINGS_ENV]))


def _run_workers(settings: ControllerSettings, workers: int) -> None:
    # upgraded once, here: N workers upgrading one schema at once would race
    open_database(settings.db_url).dispose()
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    host, port = parse_listen(settings.listen)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, host=host,
                port=port, log_level="info")


def settings_from_options(
    *,
    db: str, listen: str, insecure_no_auth: bool, mac_prefix: str, guid_range: str,
    agent_timeout: float, weigher: str, token_cache_ttl: float = 10.0,
    migration_domains: Sequence[str] = (), max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    api_docs: bool = False,
) -> ControllerSettings:
    """The controller settings for the command line; a bad value is a usage error (exit 2)."""
    try:
        return ControllerSettings(
            db_url=db, listen=listen, auth=not insecure_no_auth, mac_prefix=mac_prefix,
            guid_range=guid_range, agent_timeout_s=agent_timeout, weigher=weigher,
            token_cache_ttl_s=token_cache_ttl, migration_domains=tuple(migration_domains),
            max_body_bytes=max_body_bytes, api_docs=api_docs,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(  # noqa: PLR0917 - typer maps each option to a parameter
        db: str = typer.Option(DEFAULT_DB_URL, "--db", envvar="VFKEEPER_DB",
                               help="Database URL: sqlite:///PATH or postgresql+psycopg://..."),
        listen: str = typer.Option(DEFAULT_LISTEN, "--listen", envvar="VFKEEPER_LISTEN",
                                   help="HOST:PORT to listen on."),
        insecure_no_auth: bool = typer.Option(
            False, "--insecure-no-auth",
            help="Turn authentication off: every request acts as admin. Local demos only."),
        mac_prefix: str = typer.Option(DEFAULT_MAC_PREFIX, "--mac-prefix",
                                       envvar="VFKEEPER_MAC_PREFIX",
                                       help="Locally administered prefix of allocated MACs."),
        guid_range: str = typer.Option(DEFAULT_GUID_RANGE, "--guid-range",
                                       envvar="VFKEEPER_GUID_RANGE",
                                       help="Inclusive range LOW-HIGH of allocated GUIDs."),
        agent_timeout: float = typer.Option(90.0, "--agent-timeout",
                                            envvar="VFKEEPER_AGENT_TIMEOUT",
                                            help="Seconds of agent silence before its host "
                                                 "gets no new instances."),
        weigher: str = typer.Option("pack", "--weigher", envvar="VFKEEPER_WEIGHER",
                                    help="pack (fill hosts) or spread (balance them)."),
        token_cache_ttl: float = typer.Option(
            10.0, "--token-cache-ttl", envvar="VFKEEPER_TOKEN_CACHE_TTL",
            help="Seconds a verified bearer token is trusted without a database look-up "
                 "(0: every request)."),
        max_body_bytes: int = typer.Option(
            DEFAULT_MAX_BODY_BYTES, "--max-body-bytes", envvar="VFKEEPER_MAX_BODY_BYTES",
            help="The largest request body accepted, in bytes (413 above it); the default "
                 "holds the inventory of a 4,160-function host four times."),
        migration_domains: list[str] = typer.Option(
            [], "--migration-domain", envvar="VFKEEPER_MIGRATION_DOMAINS", metavar="DOMAIN",
            help="A DNS domain hosts' names may be qualified with in the migration URIs their "
                 "agents announce (host-a.example.org needs example.org); repeat for more. "
                 "Default: only the bare host name."),
        api_docs: bool = typer.Option(
            False, "--api-docs", envvar="VFKEEPER_API_DOCS",
            help="Also serve /docs (Swagger UI) and /redoc. Their pages load scripts from the "
                 "jsDelivr CDN: the browser needs the internet. /openapi.json is always served."),
        workers: int = typer.Option(1, "--workers", envvar="VFKEEPER_WORKERS", min=1,
                                    help="Worker processes (each a controller with its own "
                                         "cache; the claim transaction keeps them correct)."),
    ) -> None:
        """Run the controller: upgrade the database schema, then serve the REST API.

        GET /healthz (the process is up) and GET /readyz (the database answers and its schema
        is current; 503 otherwise) need no token: point load balancers and supervisors there.
        """
        settings = settings_from_options(
            db=db, listen=listen, insecure_no_auth=insecure_no_auth, mac_prefix=mac_prefix,
            guid_range=guid_range, agent_timeout=agent_timeout, weigher=weigher,
            token_cache_ttl=token_cache_ttl, migration_domains=migration_domains,
            max_body_bytes=max_body_bytes, api_docs=api_docs)
        if not settings.auth:
            typer.secho("WARNING: --insecure-no-auth: anyone who can reach "
                        f"{settings.listen} is admin", fg="red", err=True)
        if workers > 1:
            _run_workers(settings, workers)
            return
        host, port = parse_listen(settings.listen)
        app = create_app(settings, database=open_database(settings.db_url))
        uvicorn.run(app, host=host, port=port, log_level="info")
