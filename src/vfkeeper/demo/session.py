"""The demo as a user of the controller: the CLI's API client for data, the CLI itself for
what a user would type, and a Rich console for the story around them."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Sequence
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from typing import Any

import httpx
import typer.main
from rich.console import Console
from rich.table import Table

from vfkeeper.cli.client import ApiClient
from vfkeeper.cli.main import build_app
from vfkeeper.cli.render import console_width


class DemoStepError(Exception):
    """A step of the demo did not turn out as it must; the message says what happened."""


def new_console() -> Console:
    return Console(highlight=False, width=console_width())


@dataclass
class Session:
    url: str
    token: str
    console: Console = field(default_factory=new_console)
    transport: httpx.BaseTransport | None = None
    """Tests: reach an in-process controller instead of ``url``."""
    api: ApiClient = field(init=False)

    def __post_init__(self) -> None:
        self.api = ApiClient(self.url, self.token, self.transport)

    def get(self, path: str, **params: Any) -> Any:
        return self.api.call("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.api.call("POST", path, body=body)

    def put(self, path: str, body: Any) -> Any:
        return self.api.call("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.api.call("DELETE", path)

    def step(self, number: int, title: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}. {title}", align="left")

    def say(self, text: str) -> None:
        self.console.print(text)

    def cli(self, *args: str) -> int:
        """Run ``vfkeeper ARGS`` against this controller as a user would (the URL and token
        come from the environment there), echoing the command line first. Its error output goes
        to stdout with the rest of the demo. Returns the exit status."""
        self.console.print(f"[dim]$[/dim] vfkeeper {shlex.join(args)}")
        sys.stdout.flush()
        argv = [*args, "--controller", self.url, "--token", self.token]
        with redirect_stderr(sys.stdout):
            command = typer.main.get_command(build_app(args[0]))
            status = command.main(argv, prog_name="vfkeeper", standalone_mode=False,
                                  obj={"transport": self.transport})
        sys.stdout.flush()
        return int(status or 0)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*row)
    return out
