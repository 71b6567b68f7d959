"""What every ``vfkeeper`` command shares: how its usage line reads, and the one place where a
failure becomes a message and an exit status.

Exit statuses::

    0  done
    1  the work failed: the controller refused or cannot be reached, a host or database
       could not be used, a driver refused a setting
    2  the command line is wrong: a bad option value, a file that cannot be read as what it
       must be, bytes that are not UTF-8

Commands report what they expect themselves (``typer.BadParameter`` naming the option, or
``Error: …`` and ``typer.Exit``). :class:`RootGroup` catches whatever else escapes a command:
the errors of vfkeeper's packages that say what to fix (exit 2 for bad input, 1 otherwise), an
``OSError`` (exit 1, naming the path), and — a bug — anything else, as one line saying so (exit
1; ``VFKEEPER_DEBUG=1`` lets the traceback through).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

FAILED = 1
USAGE_ERROR = 2
UNEXPECTED = "vfkeeper failed unexpectedly"
DEBUG_ENV = "VFKEEPER_DEBUG"

_USAGE_ERRORS = (
    ("vfkeeper.config.errors", "ConfigError"),
    ("vfkeeper.domain.devspec.errors", "DeviceSpecError"),
    ("vfkeeper.domain.errors", "DomainError"),
)
"""Errors that mean the values given were wrong (exit 2), by module and name: looked up in
``sys.modules`` rather than imported, since a module nobody imported raised nothing (and
importing the device-spec package costs every command a quarter of a second)."""


def _usage_error(exc: Exception) -> bool:
    for module, name in _USAGE_ERRORS:
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return True
    return False


def explain(exc: Exception) -> tuple[int, str]:
    """The exit status and message for an exception no command handled itself."""
    if _usage_error(exc):
        return USAGE_ERROR, str(exc)
    if isinstance(exc, UnicodeError):
        return USAGE_ERROR, f"a value is not valid UTF-8 text ({exc})"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return FAILED, f"{where}{exc.strerror or exc}"
    return FAILED, (f"{UNEXPECTED} ({type(exc).__name__}: {exc}). This is a bug: please report "
                    f"it with the command you ran; {DEBUG_ENV}=1 shows the traceback.")


def _not_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class RootGroup(TyperGroup):
    """The ``vfkeeper`` group: refuses a command line that is not UTF-8, and turns whatever
    escapes a command into a message and an exit status (every command runs inside
    :meth:`invoke`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        bad = [a for a in args if _not_utf8(a)]
        if bad:
            shown = bad[0].encode("utf-8", "surrogateescape")
            raise typer.BadParameter(
                f"the command line holds bytes that are not UTF-8 ({shown!r}); vfkeeper takes "
                "names, ids, URLs and paths as UTF-8 text", ctx=ctx)
        result: list[str] = super().parse_args(ctx, args)
        return result

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors and exits: typer prints and exits as usual
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            code, message = explain(exc)
            typer.echo(f"Error: {message}", err=True)
            raise typer.Exit(code) from None


def _argument_usage(param: TyperArgument) -> str:
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


class Command(TyperCommand):
    """A command whose arguments read ``NAME`` (``[NAME]`` when optional) in its usage line and
    help, as in every Unix manual, instead of typer's ``{name}``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None:
                param.metavar = (param.name or "").upper()

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_argument_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def use_command_class(app: typer.Typer) -> None:
    """Make every command of ``app`` and its groups a :class:`Command` (called once, by the
    composition root, after every module registered its commands)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer fills in its own class
            info.cls = Command
    for group in app.registered_groups:
        if group.typer_instance is not None:
            use_command_class(group.typer_instance)
