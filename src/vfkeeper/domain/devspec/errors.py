"""Errors of device-spec parsing, binding and device records.

Tree::

    DeviceSpecError                   base of everything this package raises
    ├── InvalidDeviceSpec             a spec entry is wrong on its own (any host would refuse it)
    ├── SpecHostError                 a spec cannot be used on one particular host
    └── InvalidDeviceRecord           a device given as a Nova-style dict is malformed

``nova_error`` names the exception Nova raises for the same input (``PciConfigInvalidSpec``,
``PciDeviceWrongAddressFormat``, ...), or ``None`` where Nova fails with a bare Python error
(``TypeError``/``AttributeError``) instead of a message.
"""

from __future__ import annotations

from typing import Any


def _shorten(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DeviceSpecError(Exception):
    """Base class of device-spec errors."""


class InvalidDeviceSpec(DeviceSpecError):
    """One device-spec entry is invalid.

    ``entry`` is the 0-based position of the entry among all entries given; ``item`` the 0-based
    position inside the entry when the entry is a JSON list; ``key`` the offending key (dotted for
    address regex fields, e.g. ``address.bus``) or ``None`` when the entry as a whole is wrong.
    """

    def __init__(
        self,
        *,
        entry: int,
        source: str,
        problem: str,
        allowed: str,
        item: int | None = None,
        key: str | None = None,
        value: Any = None,
        nova_error: str | None = "PciConfigInvalidSpec",
    ) -> None:
        self.entry = entry
        self.source = source
        self.item = item
        self.key = key
        self.value = value
        self.problem = problem
        self.allowed = allowed
        self.nova_error = nova_error
        super().__init__(self._message())

    @property
    def where(self) -> str:
        where = f"device spec entry #{self.entry}"
        if self.item is not None:
            where += f", item #{self.item}"
        if self.source:
            where += f" ({self.source})"
        return where

    def _message(self) -> str:
        key = f": key '{self.key}'" if self.key else ""
        return f"{self.where}{key}: {self.problem}. {self.allowed}"


class SpecHostError(DeviceSpecError):
    """A spec that is valid on its own cannot be used on this host (Nova refuses it at start-up
    of nova-compute on that host, too)."""

    def __init__(
        self, *, spec_index: int, source: str, key: str, problem: str, fix: str, nova_error: str
    ) -> None:
        self.spec_index = spec_index
        self.source = source
        self.key = key
        self.problem = problem
        self.fix = fix
        self.nova_error = nova_error
        src = f" ({source})" if source else ""
        super().__init__(f"device spec #{spec_index}{src}: key '{key}': {problem}. {fix}")


class InvalidDeviceRecord(DeviceSpecError):
    """A device record (a Nova-style device dict) is malformed."""

    def __init__(self, *, index: int, field: str, value: Any, problem: str) -> None:
        self.index = index
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(
            f"device #{index}: field '{field}' = {_shorten(value)}: {problem}"
        )


__all__ = ["DeviceSpecError", "InvalidDeviceRecord", "InvalidDeviceSpec", "SpecHostError"]
