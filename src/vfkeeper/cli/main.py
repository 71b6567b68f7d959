"""The ``vfkeeper`` command: composition root of the CLI.

Each command module exposes ``register(app: typer.Typer) -> None``; adding a command group is
adding its module to ``_COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib

import typer

from vfkeeper import __version__

_COMMAND_MODULES: list[str] = [
    "vfkeeper.cli.discover",
    "vfkeeper.cli.simulate",
    "vfkeeper.cli.demo",
    "vfkeeper.cli.xml",
    "vfkeeper.cli.serve",
    "vfkeeper.cli.token",
    "vfkeeper.cli.host",
    "vfkeeper.cli.network",
    "vfkeeper.cli.port",
    "vfkeeper.cli.instance",
    "vfkeeper.cli.pool",
    "vfkeeper.cli.allocation",
    "vfkeeper.cli.spec",
    "vfkeeper.cli.pools",
    "vfkeeper.cli.vf",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vfkeeper {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="vfkeeper",
        help="SR-IOV and InfiniBand VF passthrough as a managed service for KVM/libvirt clusters.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """SR-IOV and InfiniBand VF passthrough as a managed service for KVM/libvirt clusters."""

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    build_app()()
