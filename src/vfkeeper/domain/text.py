"""What every text and number vfkeeper takes from outside must be: the rules, once.

A user's request, an agent's report or an operator's device spec ends up in a database column
or a JSON document, on SQLite or PostgreSQL. Both refuse some values with an error instead of
storing them, and PostgreSQL refuses more:

* a NUL character (``\\x00``): PostgreSQL's text types cannot hold one;
* a lone surrogate (``\\ud800``): not a Unicode character, so no UTF-8 encoding exists;
* an integer beyond the column's range: 32 bits for PostgreSQL's ``INTEGER``, 64 bits for
  SQLite's; a number in a JSON document beyond 64 bits is not portable either;
* a string longer than its ``VARCHAR(n)``;
* ``NaN`` and the infinities, which JSON does not have.

Names and ids must moreover be printable: no control characters. This module says what is wrong
with a value (pure functions returning a message, or ``None``) and gives the annotated types the
models use (:class:`TextRules`, :data:`Int32`), so that a bad value is refused where it enters,
with a message naming its field, and never reaches a database.

Free-form JSON (device-spec entries, an inventory document) is checked as a whole by
:func:`json_problems`, which names the path of each bad value (``entries[0].physical_network``).
Diagnostics an agent writes (an error message, what a port waits for) are *cleaned* by
:func:`clean_diagnostic` instead of refused: a report must not be lost for one odd message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from annotated_types import Interval
from pydantic import BeforeValidator, GetCoreSchemaHandler
from pydantic_core import core_schema

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
"""PostgreSQL's ``INTEGER``: every integer stored in an ``Integer`` column fits in it."""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
"""The widest integer SQLite stores, and the bound of any number in a JSON document."""
MAX_JSON_DEPTH: Final = 32
"""How deeply free-form JSON may nest (a device spec needs 4 levels)."""

Int32 = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
NonNegativeInt32 = Annotated[int, Interval(ge=0, le=INT32_MAX)]

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters other than tab, newline and carriage return."""
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ELLIPSIS = "…"

Loc = tuple[str | int, ...]


def _char(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes (``\\x00``,
    ``\\ud800``): safe to show, to log and to encode as UTF-8."""
    if not (_CONTROL.search(text) or _SURROGATE.search(text)):
        return text
    return "".join(_char(ch) if _CONTROL.match(ch) or _SURROGATE.match(ch) else ch
                   for ch in text)


def storage_problem(text: str) -> str | None:
    """Why no database can store ``text`` (a NUL or a lone surrogate), or ``None``."""
    if "\x00" in text:
        return "contains a NUL character (\\x00); remove it"
    found = _SURROGATE.search(text)
    if found:
        return (f"contains {_char(found.group())}, a lone surrogate, which is not a Unicode "
                "character; send valid UTF-8 text")
    return None


def text_problem(text: str, *, prose: bool = False) -> str | None:
    """Why ``text`` is no acceptable name, id or (``prose``: tab and newlines allowed) free
    text, or ``None``."""
    problem = storage_problem(text)
    if problem:
        return problem
    found = (_CONTROL_IN_PROSE if prose else _CONTROL).search(text)
    if found:
        return f"contains the control character {_char(found.group())}; use printable text"
    return None


@dataclass(frozen=True, slots=True)
class TextRules:
    """Annotated-type metadata: a string of ``min_length``-``max_length`` characters (what its
    column holds) that :func:`text_problem` finds nothing wrong with::

        name: Annotated[str, TextRules(255)]
    """

    max_length: int
    min_length: int = 1
    prose: bool = False

    def check(self, value: str) -> str:
        problem = text_problem(value, prose=self.prose)
        if problem:
            raise ValueError(problem)
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            self.check, core_schema.str_schema(min_length=self.min_length,
                                               max_length=self.max_length))


def clip(text: str, max_length: int) -> str:
    """``text`` cut to ``max_length`` characters, ending in ``…`` when cut."""
    if len(text) <= max_length:
        return text
    return text[: max_length - 1] + _ELLIPSIS


def clean_diagnostic(max_length: int) -> Callable[[Any], Any]:
    """A before-validator for free text an agent reports: NULs and lone surrogates become
    U+FFFD, and the text is clipped to ``max_length`` (non-strings are left to the type)."""

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return clip(_UNSTORABLE.sub("\ufffd", value), max_length)

    return clean


def diagnostic(max_length: int) -> BeforeValidator:
    """Annotated-type metadata for a diagnostic of at most ``max_length`` characters."""
    return BeforeValidator(clean_diagnostic(max_length))


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad value of a document: where (``loc``, as pydantic writes it) and what is wrong."""

    loc: Loc
    message: str

    @property
    def where(self) -> str:
        return format_loc(self.loc)


def format_loc(loc: Loc) -> str:
    """``("entries", 0, "physical_network")`` → ``entries[0].physical_network``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{printable(part)}" if out \
            else printable(part)
    return out


def _scalar_problem(value: object) -> str | None:
    if isinstance(value, str):
        return storage_problem(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return f"the integer is beyond 64 bits ({INT64_MIN} to {INT64_MAX}); send a smaller one"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a number JSON can carry; send a finite number"
    return None


def json_problems(document: Any, loc: Loc = (), *, max_depth: int = MAX_JSON_DEPTH,
                  limit: int = 20) -> list[Problem]:
    """Every value of a JSON document (dict keys included) that cannot be stored — see the
    module docstring — and any nesting deeper than ``max_depth``, up to ``limit`` problems.
    Iterative: a deeply nested document cannot exhaust the stack."""
    problems: list[Problem] = []
    stack: list[tuple[Any, Loc]] = [(document, loc)]
    while stack and len(problems) < limit:
        value, where = stack.pop()
        if len(where) - len(loc) > max_depth:
            problems.append(Problem(where, f"nested more than {max_depth} levels deep"))
        elif isinstance(value, dict):
            for key in reversed(list(value)):
                problem = storage_problem(key) if isinstance(key, str) else None
                if problem:
                    problems.append(Problem((*where, printable(key)), f"key {problem}"))
                else:
                    stack.append((value[key], (*where, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*where, i)) for i, item in reversed(list(enumerate(value))))
        else:
            problem = _scalar_problem(value)
            if problem:
                problems.append(Problem(where, problem))
    return problems
