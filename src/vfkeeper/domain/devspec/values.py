"""Value parsing with Nova's exact acceptance rules, and the PCI-address field tests.

Nova's rules, carried over (``nova/pci/devspec.py``):

* A hex field (``vendor_id``, ``product_id``, address fields) is ``*`` or anything Python's
  ``int(text, 16)`` accepts (so ``0x8086``, `` 8086 ``, ``80_86``); it must not exceed the
  field's maximum and is then written back as zero-padded lowercase hex. ``vendor_id`` is
  stripped before the ``*`` test, ``product_id`` is not.
* A glob address is ``[[[[domain]:]bus]:][slot][.[function]]``; missing or empty fields are
  ``*``; partial wildcards (``0*``) are not allowed.
* A regex address is an object with optional ``domain``/``bus``/``slot``/``function`` keys whose
  values are regular expressions matched with ``re.match`` (anchored at the start only) against
  the device's normalised fields; missing keys match anything.
* Boolean tags use oslo's strict parsing: ``1/t/true/on/y/yes`` and ``0/f/false/off/n/no``,
  case-insensitive, surrounding blanks ignored; JSON booleans as is; other values via ``str()``.
"""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

ANY = "*"
MAX_DOMAIN, MAX_BUS, MAX_SLOT, MAX_FUNC = 0xFFFF, 0xFF, 0x1F, 0x7
FIELD_NAMES = ("domain", "bus", "slot", "function")
FIELD_LIMITS = {"domain": (MAX_DOMAIN, 4), "bus": (MAX_BUS, 2), "slot": (MAX_SLOT, 2),
                "function": (MAX_FUNC, 1)}
_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


class ValueProblem(ValueError):
    """A value is not acceptable; ``nova_error`` is what Nova raises for it."""

    def __init__(self, problem: str, allowed: str, nova_error: str | None = "PciConfigInvalidSpec",
                 key_suffix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.allowed = allowed
        self.nova_error = nova_error
        self.key_suffix = key_suffix


def hex_field(text: str, maximum: int, width: int, what: str) -> str:
    """``text`` (not ``*``) as Nova normalises it: ``int(text, 16)`` written ``%0<width>x``."""
    try:
        number = int(text, 16)
    except ValueError:
        raise ValueProblem(
            f"{what} '{text}' is not a hex number",
            f"Use hex digits (optionally with 0x), at most {maximum:X}, or '*'.",
        ) from None
    if number > maximum:
        raise ValueProblem(
            f"{what} '{text}' is greater than the maximum {maximum:X}",
            f"Use a value from 0 to {maximum:X}, or '*'.",
        )
    return format(number, f"0{width}x")


def hex_id(value: Any, *, strip: bool, what: str) -> str:
    """A ``vendor_id``/``product_id`` value → ``*`` or 4 lowercase hex digits."""
    if not isinstance(value, str):
        raise ValueProblem(
            f"{what} must be a string, got {type(value).__name__} {value!r}",
            'Write it as a JSON string of hex digits, e.g. "8086", or "*".',
            nova_error=None,
        )
    text = value.strip() if strip else value
    return ANY if text == ANY else hex_field(text, 0xFFFF, 4, what)


def strict_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueProblem(
        f"{value!r} is not a boolean",
        "Use true or false (also accepted: yes/no, on/off, 1/0, t/f, y/n).",
    )


def lenient_bool(value: Any) -> bool:
    """oslo's non-strict reading: true for the true strings, false for anything else."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


class FieldTest(ABC):
    """A test of one normalised address field (``0000``, ``3b``, ``00``, ``1``)."""

    text: str

    @abstractmethod
    def ok(self, value: str) -> bool: ...

    @abstractmethod
    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AnyField(FieldTest):
    text: str = ANY

    def ok(self, value: str) -> bool:
        return True

    def describe(self) -> str:
        return "any"


@dataclass(frozen=True, slots=True)
class ExactField(FieldTest):
    text: str

    def ok(self, value: str) -> bool:
        return value == self.text

    def describe(self) -> str:
        return f"= {self.text}"


@dataclass(frozen=True, slots=True)
class RegexField(FieldTest):
    text: str
    pattern: re.Pattern[str]

    def ok(self, value: str) -> bool:
        return self.pattern.match(value) is not None

    def describe(self) -> str:
        return f"~ /{self.text}/"


Fields = tuple[FieldTest, FieldTest, FieldTest, FieldTest]


def _glob_field(text: str, name: str) -> FieldTest:
    if text == ANY:
        return AnyField()
    maximum, width = FIELD_LIMITS[name]
    return ExactField(hex_field(text, maximum, width, name))


def parse_glob(text: str) -> tuple[Fields, str | None]:
    """A glob address → its field tests, and the single address it names (when every field is
    given) — the one Nova checks for being a PF. Checked in Nova's order: function, the number
    of fields, then domain, bus and slot (so the same mistake is reported first)."""
    head, _, func = text.partition(".")
    func_test: FieldTest = _glob_field(func.strip(), "function") if func else AnyField()
    parts = [ANY, ANY, ANY]
    if head:
        dbs = head.split(":")
        if len(dbs) > 3:
            raise ValueProblem(
                f"'{text}' has {len(dbs)} ':'-separated fields before the '.', at most 3 allowed",
                "The form is [[[[domain]:]bus]:][slot][.[function]], e.g. '0000:3b:00.1', "
                "'*:3b:00.*', ':3b:' or '.1'.",
                nova_error="PciDeviceWrongAddressFormat",
            )
        padded = [ANY] * (3 - len(dbs)) + dbs
        parts = [p.strip() or ANY for p in padded]
    d, b, s = (_glob_field(p, n) for p, n in zip(parts, FIELD_NAMES, strict=False))
    fields: Fields = (d, b, s, func_test)
    return fields, single_address(tuple(t.text for t in fields))


def parse_regex(value: dict[str, Any]) -> tuple[Fields, str | None]:
    """A regex address object → its field tests, and the single address it names when every
    field is made of hex digits only (Nova's test, on the raw expressions)."""
    tests: list[FieldTest] = []
    for name in FIELD_NAMES:
        expr = value.get(name, ".*")
        if not isinstance(expr, str):
            raise ValueProblem(
                f"{name} must be a string regular expression, got {type(expr).__name__} "
                f"{expr!r}",
                'Write it as a JSON string, e.g. "3b" or "[0-1]".',
                nova_error=None,
                key_suffix=f".{name}",
            )
        try:
            tests.append(RegexField(expr, re.compile(expr)))
        except re.error as exc:
            raise ValueProblem(
                f"{name} '{expr}' is not a valid regular expression ({exc})",
                "Use a Python regular expression; it is matched at the start of the field.",
                nova_error="PciDeviceWrongAddressFormat",
                key_suffix=f".{name}",
            ) from None
    fields: Fields = (tests[0], tests[1], tests[2], tests[3])
    return fields, single_address(tuple(t.text for t in fields))


def single_address(texts: tuple[str, ...]) -> str | None:
    if all(all(c in string.hexdigits for c in t) for t in texts):
        return f"{texts[0]}:{texts[1]}:{texts[2]}.{texts[3]}"
    return None


def fields_match(fields: Fields, values: tuple[str, str, str, str]) -> bool:
    return all(t.ok(v) for t, v in zip(fields, values, strict=True))
