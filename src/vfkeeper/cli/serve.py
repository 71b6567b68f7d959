"""``vfkeeper serve``: run the controller (REST API under /v1, OpenAPI at /openapi.json)."""

from __future__ import annotations

import typer
import uvicorn

from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import (
    DEFAULT_DB_URL,
    DEFAULT_GUID_RANGE,
    DEFAULT_LISTEN,
    DEFAULT_MAC_PREFIX,
    ControllerSettings,
    parse_listen,
)


def settings_from_options(
    *,
    db: str, listen: str, insecure_no_auth: bool, mac_prefix: str, guid_range: str,
    agent_timeout: float, weigher: str,
) -> ControllerSettings:
    """The controller settings for the command line; a bad value is a usage error (exit 2)."""
    try:
        return ControllerSettings(
            db_url=db, listen=listen, auth=not insecure_no_auth, mac_prefix=mac_prefix,
            guid_range=guid_range, agent_timeout_s=agent_timeout, weigher=weigher,
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
    ) -> None:
        """Run the controller: upgrade the database schema, then serve the REST API."""
        settings = settings_from_options(
            db=db, listen=listen, insecure_no_auth=insecure_no_auth, mac_prefix=mac_prefix,
            guid_range=guid_range, agent_timeout=agent_timeout, weigher=weigher)
        if not settings.auth:
            typer.secho("WARNING: --insecure-no-auth: anyone who can reach "
                        f"{settings.listen} is admin", fg="red", err=True)
        host, port = parse_listen(settings.listen)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
