"""Discovery's last step: make the inventory one the controller accepts.

The controller refuses an inventory that breaks :mod:`vfkeeper.domain.inventory_rules`. A real
kernel rarely shows what breaks them, but a host can: an interface renamed with a quote, a VF
whose PF could not be read, a damaged attribute. :func:`conform` runs the same rules on what
discovery found and repairs each problem the way every other unreadable value is handled: the
bad value becomes null, or the piece it belongs to (a netdev, an InfiniBand port, a PKey, and
as a last resort the whole function) is left out, each with a :class:`ScanWarning` saying so.
A VF that names no PF of the inventory is left out: it could never be handed out safely.
"""

from __future__ import annotations

from typing import Any

from vfkeeper.domain import inventory_rules
from vfkeeper.domain.inventory import (
    Device,
    HostInventory,
    IbDevice,
    IbPort,
    Netdev,
    ScanWarning,
    VfAdminGuids,
)
from vfkeeper.domain.text import Loc, Problem, printable

_NULLABLE = frozenset(
    name for model in (Device, Netdev, IbDevice, IbPort, VfAdminGuids)
    for name, field in model.model_fields.items() if not field.is_required()
    and field.default is None)
"""Fields whose value may be null: a bad value there becomes null."""


def conform(inventory: HostInventory, bus_dir: str) -> HostInventory:
    """``inventory`` repaired until :func:`inventory_rules.problems` finds nothing in its
    devices (the host name is the caller's), with a warning per repair naming the function's
    bus path under ``bus_dir``."""
    doc = inventory.model_dump(mode="json")
    doc["warnings"] = [{k: printable(v) for k, v in w.items()} for w in doc["warnings"]]
    for _ in range(2 * len(inventory.devices) + 1):  # each round repairs at least one thing
        problems = [p for p in inventory_rules.problems(HostInventory.model_validate(doc),
                                                        limit=10_000) if p.loc[0] == "devices"]
        if not problems:
            break
        _repair(doc, problems, bus_dir)
    return HostInventory.model_validate(doc)


def _target(doc: dict[str, Any], loc: Loc) -> tuple[Loc, bool]:
    """What to change for a problem at ``loc``: ``(where, True)`` to null it, ``(where,
    False)`` to leave that list element out. A VF's ``parent_addr`` is never nulled: a VF
    without its PF is left out."""
    device = doc["devices"][loc[1]]
    for cut in range(len(loc), 2, -1):
        last = loc[cut - 1]
        if isinstance(last, int):
            return loc[:cut], False
        if last in _NULLABLE and not (cut == 3 and last == "parent_addr"
                                      and device["dev_type"] == "type-VF"):
            return loc[:cut], True
    return loc[:2], False


def _repair(doc: dict[str, Any], problems: list[Problem], bus_dir: str) -> None:
    targets: dict[Loc, tuple[bool, Problem]] = {}
    for problem in problems:
        where, null = _target(doc, problem.loc)
        targets.setdefault(where, (null, problem))
    for where in sorted(targets, key=_document_order, reverse=True):
        null, problem = targets[where]
        device = doc["devices"][where[1]]
        *parent, last = where
        container = _at(doc, tuple(parent))
        if null:
            container[last] = None
        else:
            del container[last]
        what = f"{problem.message}; {'.'.join(map(str, where[2:])) or 'the function'} is " \
               f"{'null' if null else 'left out'}"
        doc["warnings"].append(ScanWarning(
            path=printable(f"{bus_dir}/{device['address']}"),
            message=printable(f"{problem.where}: {what}")).model_dump())


def _document_order(loc: Loc) -> list[str]:
    """Sort key (reversed: removing list elements from the back keeps the other indexes
    valid)."""
    return [f"{x:09d}" if isinstance(x, int) else x for x in loc]


def _at(doc: Any, loc: Loc) -> Any:
    for part in loc:
        doc = doc[part]
    return doc
