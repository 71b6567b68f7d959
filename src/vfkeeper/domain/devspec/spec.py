"""Parsing device-spec entries into compiled specs.

An *entry* is what an operator writes once: a JSON object or a JSON list of objects (a line of
``[pci] device_spec`` in nova.conf, a ``--spec`` argument, a table of vfkeeper's TOML config).
Each object is one *spec*; specs are numbered from 0 across all entries, in order, and the
first spec that matches a device decides its tags — as in Nova.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vfkeeper.domain.devspec.errors import InvalidDeviceSpec
from vfkeeper.domain.devspec.keys import NOVA_POPPED, REGISTRY, SpecKey
from vfkeeper.domain.devspec.values import ValueProblem, strict_bool

BOOL_TAGS = ("managed", "live_migratable", "one_time_use")
"""Tags Nova normalises to the strings ``"true"``/``"false"``."""
KNOWN_TAGS = ("physical_network", "trusted", "remote_managed", "resource_class", "traits",
              *BOOL_TAGS)


@dataclass(frozen=True)
class SpecEntry:
    """One entry as written, and where it came from (shown in every message about it)."""

    value: str | Mapping[str, Any] | Sequence[Any]
    source: str = ""


@dataclass(frozen=True)
class CompiledSpec:
    """One spec, parsed once."""

    index: int
    entry: int
    item: int | None
    source: str
    raw: Mapping[str, Any]
    keys: tuple[SpecKey, ...]
    tags: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    extensions: bool = True

    def key(self, name: str) -> SpecKey | None:
        return next((k for k in self.keys if k.name == name), None)


@dataclass
class _Where:
    entry: int
    source: str
    item: int | None = None
    warnings: list[str] = field(default_factory=list)

    def fail(self, problem: str, allowed: str, *, key: str | None = None, value: Any = None,
             nova_error: str | None = "PciConfigInvalidSpec") -> InvalidDeviceSpec:
        return InvalidDeviceSpec(entry=self.entry, source=self.source, item=self.item, key=key,
                                 value=value, problem=problem, allowed=allowed,
                                 nova_error=nova_error)


def _decode(entry: SpecEntry, where: _Where) -> tuple[list[Any], bool]:
    """The entry's specs, and whether the entry was a list."""
    value: Any = entry.value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
            raise where.fail(
                f"is not valid JSON ({exc}): {value[:120]!r}",
                'Write one JSON object, e.g. {"vendor_id": "8086", "physical_network": '
                '"physnet1"}, or a JSON list of such objects; keys and strings take double quotes.',
            ) from None
    if isinstance(value, Mapping):
        return [value], False
    if isinstance(value, list | tuple):
        return list(value), True
    raise where.fail(f"is a {type(value).__name__}, not an object or a list of objects",
                     "Write a JSON object or a JSON list of objects.")


def _normalise_bool_tags(tags: dict[str, Any], where: _Where) -> None:
    for name in BOOL_TAGS:
        if tags.get(name) is None:
            continue
        try:
            tags[name] = "true" if strict_bool(tags[name]) else "false"
        except ValueProblem as exc:
            raise where.fail(exc.problem, exc.allowed, key=name, value=tags[name]) from None
    if tags.get("one_time_use") == "true":
        raise where.fail(
            "one_time_use=true is not supported",
            "Nova accepts it only with [pci] report_in_placement enabled, and vfkeeper has no "
            "one-time-use devices; remove the tag or set it to false",
            key="one_time_use", value=True)


def _warn_unknown(raw: Mapping[str, Any], extensions: bool, where: _Where) -> None:
    known = [*REGISTRY, *KNOWN_TAGS]
    for name in raw:
        if name in known:
            if not extensions and REGISTRY.get(name) and REGISTRY[name].extension:
                where.warnings.append(
                    f"'{name}' is a vfkeeper extension key, but specs from this source are "
                    "read as Nova reads them, so here it is only a tag")
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if close:
            where.warnings.append(f"key '{name}' is not a match key, so it is only a tag; "
                                  f"did you mean '{close[0]}'?")


PARSE_ORDER = ("vendor_id", "product_id", "address", "devname")
"""Nova checks these first, in this order (then the address/devname clash, then the rest);
vfkeeper follows so that the first error reported is the one Nova reports."""


def _compile_keys(raw: Mapping[str, Any], extensions: bool,
                  where: _Where) -> tuple[list[SpecKey], set[str]]:
    parsed: dict[str, SpecKey | None] = {}
    consumed: set[str] = set(NOVA_POPPED)
    order = [*PARSE_ORDER, *(n for n in REGISTRY if n not in PARSE_ORDER)]
    for name in order:
        cls = REGISTRY[name]
        if name not in raw or (cls.extension and not extensions):
            continue
        if name == "address" and raw.get("address") and raw.get("devname"):
            raise where.fail(
                "'address' and 'devname' cannot be used together",
                "devname already names one function (and, for a PF, its VFs); keep one of the "
                "two", key="devname", value=raw.get("devname"),
                nova_error="PciDeviceInvalidDeviceName")
        if not cls.stays_tag:
            consumed.add(name)
        try:
            parsed[name] = cls.parse(raw[name], where.warnings.append)
        except ValueProblem as exc:
            raise where.fail(exc.problem, exc.allowed, key=name + exc.key_suffix,
                             value=raw[name], nova_error=exc.nova_error) from None
    keys = [k for n in REGISTRY if (k := parsed.get(n)) is not None]
    return keys, consumed


def compile_spec(raw: Any, index: int, where: _Where, extensions: bool) -> CompiledSpec:
    if not isinstance(raw, Mapping):
        raise where.fail(f"is a {type(raw).__name__}, not an object",
                         "Each item of a list entry must be a JSON object.")
    keys, consumed = _compile_keys(raw, extensions, where)
    tags = {k: v for k, v in raw.items() if k not in consumed}
    _normalise_bool_tags(tags, where)
    _warn_unknown(raw, extensions, where)
    return CompiledSpec(index=index, entry=where.entry, item=where.item, source=where.source,
                        raw=dict(raw), keys=tuple(keys), tags=tags,
                        warnings=tuple(where.warnings), extensions=extensions)


def compile_entries(entries: Sequence[SpecEntry | str | Mapping[str, Any] | Sequence[Any]],
                    extensions: bool,
                    check: Callable[[CompiledSpec], None] | None = None) -> list[CompiledSpec]:
    """Compile every spec in order; ``check`` (if given) runs on each spec as soon as it is
    compiled, so that host errors and parse errors come out in Nova's order."""
    specs: list[CompiledSpec] = []
    for n, given in enumerate(entries):
        entry = given if isinstance(given, SpecEntry) else SpecEntry(given)
        where = _Where(n, entry.source)
        items, is_list = _decode(entry, where)
        for i, raw in enumerate(items):
            item_where = _Where(n, entry.source, i if is_list else None)
            spec = compile_spec(raw, len(specs), item_where, extensions)
            if check is not None:
                check(spec)
            specs.append(spec)
    return specs
