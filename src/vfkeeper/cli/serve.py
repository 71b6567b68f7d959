"""``vfkeeper serve``: run the controller (REST API under /v1, OpenAPI at /openapi.json,
``/healthz`` and ``/readyz`` for load balancers).

``--workers N`` runs N uvicorn worker processes on one listening socket. Each is a controller
of its own (its own scheduling cache), exactly like N replicas on one database: correctness
comes from the claim transaction (row locks on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), not
from the caches. The schema is upgraded once, by the parent, before the workers start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

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
from vfkeeper.controller.sm_setup import build_backend
from vfkeeper.sm.errors import SmConfigError, SmError

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
    api_docs: bool = False, subnet_manager: Mapping[str, Any] | None = None,
) -> ControllerSettings:
    """The controller settings for the command line; a bad value is a usage error (exit 2).
    ``subnet_manager``: the ``--subnet-manager`` settings, by their names in
    :class:`ControllerSettings`; a combination that cannot work is a usage error naming the
    option (checked now, before anything starts)."""
    chosen = (subnet_manager or {}).get("subnet_manager", "none")
    if chosen not in ("none", "opensm", "ufm"):
        raise typer.BadParameter(f"{chosen!r} is not none, opensm or ufm",
                                 param_hint="--subnet-manager")
    try:
        settings = ControllerSettings(
            db_url=db, listen=listen, auth=not insecure_no_auth, mac_prefix=mac_prefix,
            guid_range=guid_range, agent_timeout_s=agent_timeout, weigher=weigher,
            token_cache_ttl_s=token_cache_ttl, migration_domains=tuple(migration_domains),
            max_body_bytes=max_body_bytes, api_docs=api_docs, **(subnet_manager or {}),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        backend = build_backend(settings, frozenset)
    except SmError as exc:
        if isinstance(exc, SmConfigError):
            raise typer.BadParameter(str(exc).removeprefix(f"{exc.setting}: "),
                                     param_hint=exc.setting) from exc
        raise typer.BadParameter(str(exc), param_hint="--subnet-manager") from exc
    close = getattr(backend, "close", None)
    if close is not None:
        close()
    return settings


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
        subnet_manager: str = typer.Option(
            "none", "--subnet-manager", envvar="VFKEEPER_SUBNET_MANAGER",
            help="Who puts InfiniBand port GUIDs into their networks' partitions: none "
                 "(managed outside vfkeeper), opensm (a partitions file vfkeeper owns) or ufm "
                 "(UFM's REST API)."),
        partitions_file: str | None = typer.Option(
            None, "--partitions-file", envvar="VFKEEPER_PARTITIONS_FILE", metavar="PATH",
            help="opensm: the partitions file OpenSM reads (opensm -P PATH); vfkeeper owns it."),
        partitions_base: str | None = typer.Option(
            None, "--partitions-base", envvar="VFKEEPER_PARTITIONS_BASE", metavar="PATH",
            help="opensm: the operator's own partitions, copied verbatim to the top of the "
                 "file and never changed."),
        opensm_pidfile: str | None = typer.Option(
            None, "--opensm-pidfile", envvar="VFKEEPER_OPENSM_PIDFILE", metavar="PATH",
            help="opensm: reload OpenSM with SIGHUP to the pid in this file."),
        opensm_reload_command: str | None = typer.Option(
            None, "--opensm-reload-command", envvar="VFKEEPER_OPENSM_RELOAD_COMMAND",
            metavar="CMD", help="opensm: reload OpenSM with this command (no shell), e.g. "
                                "'systemctl reload opensm'."),
        opensm_readback: bool = typer.Option(
            False, "--opensm-readback", envvar="VFKEEPER_OPENSM_READBACK",
            help="opensm: after a reload, read each changed port's PKey table back with "
                 "smpquery (infiniband-diags) and report what differs."),
        ufm_url: str | None = typer.Option(None, "--ufm-url", envvar="VFKEEPER_UFM_URL",
                                           help="ufm: UFM's base address, https://HOST."),
        ufm_user: str | None = typer.Option(None, "--ufm-user", envvar="VFKEEPER_UFM_USER",
                                            help="ufm: the UFM user (with --ufm-password-file)."),
        ufm_password_file: str | None = typer.Option(
            None, "--ufm-password-file", envvar="VFKEEPER_UFM_PASSWORD_FILE", metavar="PATH",
            help="ufm: a file holding the UFM user's password."),
        ufm_token_file: str | None = typer.Option(
            None, "--ufm-token-file", envvar="VFKEEPER_UFM_TOKEN_FILE", metavar="PATH",
            help="ufm: a file holding a UFM access token (instead of user and password)."),
        ufm_ca_file: str | None = typer.Option(
            None, "--ufm-ca-file", envvar="VFKEEPER_UFM_CA_FILE", metavar="PATH",
            help="ufm: the CA certificate (PEM) UFM's certificate is checked against; "
                 "default: the system's trust store."),
        ufm_insecure: bool = typer.Option(
            False, "--ufm-insecure", help="ufm: do not verify UFM's certificate (required "
                                          "for http://). Anyone on the path can change "
                                          "every partition."),
        ufm_timeout: float = typer.Option(10.0, "--ufm-timeout", envvar="VFKEEPER_UFM_TIMEOUT",
                                          help="ufm: seconds per UFM request."),
        partition_sync_interval: float = typer.Option(
            60.0, "--partition-sync-interval", envvar="VFKEEPER_PARTITION_SYNC_INTERVAL",
            help="Seconds between full comparisons of the subnet manager with the "
                 "allocations (changes are sent within a second either way)."),
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
            max_body_bytes=max_body_bytes, api_docs=api_docs, subnet_manager={
                "subnet_manager": subnet_manager, "partitions_file": partitions_file,
                "partitions_base": partitions_base, "opensm_pidfile": opensm_pidfile,
                "opensm_reload_command": opensm_reload_command,
                "opensm_readback": opensm_readback, "ufm_url": ufm_url, "ufm_user": ufm_user,
                "ufm_password_file": ufm_password_file, "ufm_token_file": ufm_token_file,
                "ufm_ca_file": ufm_ca_file, "ufm_insecure": ufm_insecure,
                "ufm_timeout_s": ufm_timeout,
                "partition_sync_interval_s": partition_sync_interval})
        if not settings.auth:
            typer.secho("WARNING: --insecure-no-auth: anyone who can reach "
                        f"{settings.listen} is admin", fg="red", err=True)
        if workers > 1:
            _run_workers(settings, workers)
            return
        host, port = parse_listen(settings.listen)
        app = create_app(settings, database=open_database(settings.db_url))
        uvicorn.run(app, host=host, port=port, log_level="info")
