"""Reading a configuration file's text: the one place that turns a missing, unreadable or
non-UTF-8 file into the reader's own :class:`~vfkeeper.config.errors.ConfigError`."""

from __future__ import annotations

from pathlib import Path

from vfkeeper.config.errors import ConfigError


def read_text(path: str | Path, error: type[ConfigError], fix: str) -> str:
    """The file's text, decoded as UTF-8; ``error(path, problem, fix)`` when it cannot be."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise error(path, f"is not UTF-8 text (byte {byte:#04x} at offset {exc.start})",
                    "Save it as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), without a UTF-16 byte "
                    "order mark") from None
    except OSError as exc:
        raise error(path, f"cannot read the file ({exc.strerror})", fix) from None
