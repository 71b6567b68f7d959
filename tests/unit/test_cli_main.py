from typer.testing import CliRunner

from vfkeeper import __version__
from vfkeeper.cli.main import build_app


def test_version_flag_prints_the_package_version() -> None:
    result = CliRunner().invoke(build_app(), ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"vfkeeper {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(build_app(), ["no-such-command"])
    assert result.exit_code == 2


def test_a_known_command_imports_only_its_own_module() -> None:
    app = build_app("discover")
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == {"discover"}


def test_without_a_known_command_every_command_is_registered() -> None:
    result = CliRunner().invoke(build_app(None), ["--help"])
    assert result.exit_code == 0
    for name in ("discover", "simulate", "spec", "serve", "instance", "xml", "vf"):
        assert name in result.output
