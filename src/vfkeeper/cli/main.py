"""The ``vfkeeper`` command: composition root of the CLI.

Each command module exposes ``register(app: typer.Typer) -> None``; adding a command is
adding its name and module to ``_COMMAND_MODULES``. What every command shares — its usage line,
and the one place where a failure becomes a message and an exit status — is
:mod:`vfkeeper.cli.app`. Help text is printed as written (no Rich markup), so Nova's ``[pci]``
and TOML's ``[[device_spec]]`` show as they are.
"""

from __future__ import annotations

import importlib
import sys

import typer

from vfkeeper import __version__
from vfkeeper.cli.app import RootGroup, use_command_class

# Command name -> the module that registers it. A run imports only the module of the command
# it was asked for (the controller's modules pull in FastAPI, SQLAlchemy and Alembic, which would
# otherwise add a second to every `vfkeeper discover`); help and unknown names import them all.
_COMMAND_MODULES: dict[str, str] = {
    "discover": "vfkeeper.cli.discover",
    "simulate": "vfkeeper.cli.simulate",
    "demo": "vfkeeper.cli.demo",
    "xml": "vfkeeper.cli.xml",
    "serve": "vfkeeper.cli.serve",
    "token": "vfkeeper.cli.token",
    "host": "vfkeeper.cli.host",
    "network": "vfkeeper.cli.network",
    "subnet": "vfkeeper.cli.subnet",
    "partition": "vfkeeper.cli.partition",
    "port": "vfkeeper.cli.port",
    "instance": "vfkeeper.cli.instance",
    "pool": "vfkeeper.cli.pool",
    "allocation": "vfkeeper.cli.allocation",
    "spec": "vfkeeper.cli.spec_admin",
    "pools": "vfkeeper.cli.pools",
    "vf": "vfkeeper.cli.vf",
    "agent": "vfkeeper.cli.agent",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vfkeeper {__version__}")
        raise typer.Exit()


def build_app(command: str | None = None) -> typer.Typer:
    """The CLI with every command, or with only ``command``'s module when it is a known name."""
    app = typer.Typer(
        name="vfkeeper",
        help="SR-IOV and InfiniBand VF passthrough as a managed service for KVM/libvirt clusters.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        cls=RootGroup,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """SR-IOV and InfiniBand VF passthrough as a managed service for KVM/libvirt clusters."""

    if command == "":
        modules = []
    elif command in _COMMAND_MODULES:
        modules = [_COMMAND_MODULES[command]]
    else:
        modules = list(dict.fromkeys(_COMMAND_MODULES.values()))
    for name in modules:
        importlib.import_module(name).register(app)
    use_command_class(app)
    return app


def _requested_command(argv: list[str]) -> str | None:
    """The first argument that is not an option, if it names a command."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in _COMMAND_MODULES else None
    return None


def main() -> None:
    argv = sys.argv[1:]
    command = _requested_command(argv)
    if command is None and argv[:1] == ["--version"]:
        build_app(command="")()  # no command module is needed to print the version
    else:
        build_app(command)()
