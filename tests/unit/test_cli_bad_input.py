"""No traceback reaches a user of the CLI: every command, driven with bad values, answers with a
message and an exit status (2 for a bad command line, 1 for work that failed).

The commands are enumerated from the CLI itself, so a new command is covered without touching
this file. Commands that would start a long-running process (``serve``, ``agent``, ``demo``)
have that last step replaced by a no-op: what is checked is everything before it.
"""

from __future__ import annotations

import enum
import logging
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperGroup
from typer.testing import CliRunner

from vfkeeper.cli.app import UNEXPECTED
from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings

Click = Any  # typer's command and parameter objects
NOT_UTF8 = b"\xff\xfe[pci]\ndevice_spec = {}\n"


def _leaves(command: Click, path: list[str]) -> Iterator[tuple[list[str], Click]]:
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _leaves(sub, [*path, name])
    else:
        yield path, command


def commands() -> list[tuple[list[str], Click]]:
    return list(_leaves(typer.main.get_command(build_app()), []))


def _kind(param: Click) -> Any:
    annotation = param.type_descriptor.annotation
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return annotation


class Files:
    """Bad files of every kind, made once per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.not_utf8 = root / "not-utf8.conf"
        self.not_utf8.write_bytes(NOT_UTF8)
        self.bad_json = root / "bad.json"
        self.bad_json.write_text("{nope")
        self.directory = root / "a-directory"
        self.directory.mkdir()
        self.missing = root / "missing" / "file"

    def paths(self) -> list[str]:
        return [str(p) for p in (self.not_utf8, self.bad_json, self.missing, self.directory)]


def _good(param: Click, files: Files) -> str:
    kind = _kind(param)
    if kind in (int, float):
        return "1"
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return str(next(iter(kind)).value)
    if kind is Path:
        return str(files.root / "out")
    return "x"


def _bad(param: Click, files: Files) -> list[str]:
    kind = _kind(param)
    if kind is bool:
        return []
    if kind in (int, float):
        return ["abc", "", "99999999999999999999999"]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return ["no-such-choice", ""]
    if kind is Path:
        return [*files.paths(), ""]
    return ["", "{", "0x", "x" * 5000, "é", "@" + str(files.not_utf8),
            "@" + str(files.directory), "http://[::1"]


def _base(command: Click, files: Files) -> list[str]:
    """Arguments, then required options, each with a plausible value."""
    args = [_good(p, files) for p in command.params if isinstance(p, TyperArgument)]
    for p in command.params:
        if not isinstance(p, TyperArgument) and p.required:
            args += [p.opts[0], _good(p, files)]
    return args


def _cases(path: list[str], command: Click, files: Files) -> Iterator[list[str]]:
    base = _base(command, files)
    n_args = sum(1 for p in command.params if isinstance(p, TyperArgument))
    yield [*path, *base]
    arguments = [p for p in command.params if isinstance(p, TyperArgument)]
    for i, param in enumerate(arguments):
        for value in _bad(param, files):
            yield [*path, *base[:i], value, *base[i + 1:]]
    for param in command.params:
        if isinstance(param, TyperArgument) or param.name == "help":
            continue
        for value in _bad(param, files):
            yield [*path, *base[:n_args], *base[n_args:], param.opts[0], value]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           asgi_transport: Callable[[Any], Any]) -> Iterator[Callable[[list[str]], Any]]:
    """Runs the CLI against an in-process controller (with a token), never starting a server,
    an agent loop or the demo, and keeping the root logger as it was."""
    started: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append("serve"))
    monkeypatch.setattr("vfkeeper.agent.main.run_forever", lambda *a, **k: started.append("agent"))
    monkeypatch.setattr("vfkeeper.demo.runner.run", lambda *a, **k: started.append("demo"))
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    monkeypatch.setenv("VFKEEPER_DB", url)
    app = create_app(ControllerSettings(db_url=url))
    with app.state.ctx.db.write() as s:
        monkeypatch.setenv("VFKEEPER_TOKEN", create_token(s, "admin", "test"))
    transport = asgi_transport(app)
    root = logging.getLogger()

    def run(args: list[str]) -> Any:
        handlers = list(root.handlers)
        try:
            return CliRunner().invoke(build_app(), args, obj={"transport": transport})
        finally:
            root.handlers[:] = handlers

    yield run
    app.state.ctx.db.dispose()


def _problem(result: Any) -> str | None:
    out = result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"raised {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in out or UNEXPECTED in out:
        return "printed a traceback or hit the catch-all: " + out[-600:]
    if result.exit_code not in (0, 1, 2):
        return f"exit status {result.exit_code}"
    return None


def test_every_command_answers_bad_values_without_a_traceback(
    invoke: Callable[[list[str]], Any], tmp_path: Path
) -> None:
    files = Files(tmp_path)
    failures, ran = [], 0
    for path, command in commands():
        for args in _cases(path, command, files):
            ran += 1
            problem = _problem(invoke(args))
            if problem is not None:
                failures.append(f"vfkeeper {' '.join(map(repr, args))}: {problem}")
    assert ran > 500  # every command was driven, not just a few
    assert not failures, f"{len(failures)} of {ran} runs failed:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("value", ["abc", "", "0x", "0xzz", "1.5"])
def test_a_bad_network_id_is_a_usage_error_naming_the_option(
    invoke: Callable[[list[str]], Any], value: str
) -> None:
    result = invoke(["network", "create", "n", "--physical-network", "p", "--type", "vlan",
                     "--id", value])
    assert result.exit_code == 2, result.output
    assert "--id" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--nova-conf", "--config", "--vf-maps", "--spec"])
@pytest.mark.parametrize("command", [["spec", "check", "--devices", "DEVICES"],
                                     ["spec", "apply"], ["pools", "--devices", "DEVICES"]])
def test_a_file_that_is_not_utf8_is_a_usage_error_naming_the_file(
    invoke: Callable[[list[str]], Any], tmp_path: Path, option: str, command: list[str]
) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text("[]")
    conf = tmp_path / "nova.conf"
    conf.write_bytes(NOT_UTF8)
    value = f"@{conf}" if option == "--spec" else str(conf)
    args = [str(devices) if a == "DEVICES" else a for a in command]
    result = invoke([*args, option, value])
    assert result.exit_code == 2, result.output
    assert str(conf) in result.stderr and "UTF-8" in result.stderr


def test_devices_that_are_not_utf8_are_a_usage_error(invoke: Callable[[list[str]], Any],
                                                     tmp_path: Path) -> None:
    devices = tmp_path / "devices.json"
    devices.write_bytes(b"\xff[]")
    result = invoke(["spec", "check", "--devices", str(devices), "--spec", "{}"])
    assert result.exit_code == 2 and str(devices) in result.stderr and "UTF-8" in result.stderr


def test_an_argument_that_is_not_utf8_is_a_usage_error(
    invoke: Callable[[list[str]], Any]
) -> None:
    """On Linux, bytes of the command line that are not UTF-8 reach Python as lone
    surrogates ('\\udcff' for 0xff)."""
    result = invoke(["host", "show", "\udcff"])
    assert result.exit_code == 2
    assert "UTF-8" in result.stderr


@pytest.mark.parametrize("url", ["", "abc", "ftp://h", "http://[::1"])
def test_a_bad_controller_url_is_a_usage_error(invoke: Callable[[list[str]], Any],
                                               url: str) -> None:
    result = invoke(["host", "list", "--controller", url])
    assert result.exit_code == 2 and "--controller" in result.stderr


def test_a_token_that_cannot_be_sent_is_a_usage_error(invoke: Callable[[list[str]], Any]
                                                      ) -> None:
    result = invoke(["host", "list", "--token", "vfk_é"])
    assert result.exit_code == 2 and "--token" in result.stderr


def test_the_catch_all_turns_an_unexpected_error_into_one_line(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the safety net itself: a bug deep in a command still reaches the user as a
    message and exit status 1, saying it is a bug."""
    def broken(*_a: Any, **_k: Any) -> None:
        raise KeyError("boom")

    monkeypatch.setattr("vfkeeper.cli.simulate.simulate_host", broken)
    result = CliRunner().invoke(build_app(), ["simulate", "host", "--out", "/nonexistent",
                                              "--model", "cx5-eth"])
    assert result.exit_code == 1
    assert UNEXPECTED in result.stderr and "KeyError" in result.stderr
    assert "Traceback" not in result.output


def test_usage_lines_name_arguments_in_capitals_without_braces() -> None:
    for path, command in commands():
        usage = command.get_usage(typer.Context(command, info_name=" ".join(path)))
        assert "{" not in usage and "<" not in usage, usage
        for param in command.params:
            if isinstance(param, TyperArgument):
                assert (param.metavar or "").isupper(), (path, param.name)


def test_help_text_keeps_square_brackets() -> None:
    """Nova's ``[pci]`` section and TOML's ``[[device_spec]]`` must not be eaten as markup."""
    out = CliRunner().invoke(build_app(), ["spec", "check", "--help"]).output
    assert "[pci] device_spec" in out and "[[device_spec]]" in out

