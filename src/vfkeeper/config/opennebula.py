"""Device specs from the VF maps of OpenNebula's KVM SR-IOV driver (``addon-kvm-sr-iov``).

A map is a file named after the PF's netdev (``vf_maps/ib0``) holding one VF per line as
``0xBUS 0xSLOT 0xFUNC`` (hex, single spaces). Files ending in ``_ofed`` are the driver's
device/port companions and are skipped. Each map becomes one entry: a list of specs, one per VF,
``{"address": "0000:BB:SS.F", "physical_network": <physnet>}``; the physical network is the map's
name unless ``physnets`` maps that name to another one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from vfkeeper.config.errors import VfMapError
from vfkeeper.config.files import read_text
from vfkeeper.domain.devspec import SpecEntry

_LIMITS = (("bus", 0xFF, 2), ("slot", 0x1F, 2), ("function", 0x7, 1))
_FORMAT = "Each line is '0xBUS 0xSLOT 0xFUNC' in hex, e.g. '0x05 0x00 0x01'"


def _field(path: str, lineno: int, token: str, limit: tuple[str, int, int]) -> str:
    name, maximum, width = limit
    try:
        number = int(token, 16) if token.lower().startswith("0x") else -1
    except ValueError:
        number = -1
    if not 0 <= number <= maximum:
        raise VfMapError(path, f"{name} '{token}' is not a hex number from 0x0 to {maximum:#x}",
                         _FORMAT, lineno)
    return format(number, f"0{width}x")


def parse_vf_map(text: str, name: str, path: str, physnet: str | None = None) -> SpecEntry:
    specs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 3:
            raise VfMapError(path, f"expected 3 fields, found {len(tokens)}: {line!r}",
                             _FORMAT, lineno)
        bus, slot, func = (_field(path, lineno, t, lim)
                           for t, lim in zip(tokens, _LIMITS, strict=True))
        specs.append({"address": f"0000:{bus}:{slot}.{func}",
                      "physical_network": physnet if physnet is not None else name})
    if not specs:
        raise VfMapError(path, "the map lists no VF", _FORMAT)
    return SpecEntry(json.dumps(specs), f"OpenNebula VF map {path}")


def read_vf_maps(path: str | Path, physnets: Mapping[str, str] | None = None) -> list[SpecEntry]:
    """One entry per map: ``path`` is a map file or a ``vf_maps`` directory."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir()
                       if p.is_file() and not p.name.startswith(".")
                       and not p.name.endswith("_ofed"))
        if not files:
            raise VfMapError(root, "the directory holds no VF map",
                             "Point at OpenNebula's vf_maps directory or at one map file")
    else:
        files = [root]
    entries = []
    for file in files:
        text = read_text(file, VfMapError, "Check the path and permissions")
        entries.append(parse_vf_map(text, file.name, str(file), (physnets or {}).get(file.name)))
    return entries
