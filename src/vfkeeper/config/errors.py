"""Errors of reading configuration files.

Tree::

    ConfigError            a configuration file cannot be used (path, line, problem, fix)
    ├── NovaConfError      nova.conf does not parse the way oslo.config parses it
    ├── VfMapError         an OpenNebula VF map line is not ``0xBUS 0xSLOT 0xFUNC``
    └── TomlConfigError    vfkeeper's TOML config is not valid TOML or has a wrong shape
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    def __init__(self, path: str | Path, problem: str, fix: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}. {fix}")


class NovaConfError(ConfigError):
    pass


class VfMapError(ConfigError):
    pass


class TomlConfigError(ConfigError):
    pass
