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
