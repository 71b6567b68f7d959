"""Where device specs come from, combined into one :class:`DeviceSpecSet`.

vfkeeper's TOML config::

    [[device_spec]]                       # one table per spec, vfkeeper's dialect
    devname = "ens1f0"
    physical_network = "physnet1"

    # or, to write JSON (needed for "physical_network": null, which TOML cannot express):
    # device_spec = ['{"vendor_id": "15b3", "product_id": "101e", "physical_network": null}']

    [device_spec_import]                  # optional: reuse existing files unchanged
    nova_conf = ["/etc/nova/nova.conf"]   # read exactly as Nova reads them
    opennebula_vf_maps = "/var/lib/one/remotes/vmm/kvm-sriov/vf_maps"
    opennebula_physnets = { ib0 = "fabric-a" }

Order (the first matching spec wins): ``--spec`` arguments, the config's ``device_spec``, then
the imported nova.conf files, then the OpenNebula VF maps.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfkeeper.config.errors import TomlConfigError
from vfkeeper.config.files import read_text
from vfkeeper.config.nova_conf import read_nova_confs
from vfkeeper.config.opennebula import read_vf_maps
from vfkeeper.domain.devspec import DeviceSpecSet, HostView, SpecEntry


@dataclass
class SpecSources:
    """Everything that contributes specs; :meth:`load` parses them in order."""

    specs: list[SpecEntry] = field(default_factory=list)
    """vfkeeper-dialect entries (``--spec``, the TOML ``device_spec``)."""
    nova_confs: list[Path] = field(default_factory=list)
    vf_maps: Path | None = None
    physnets: dict[str, str] = field(default_factory=dict)

    def load(self, host: HostView | None = None) -> DeviceSpecSet:
        """Parse every source; with ``host``, host errors are raised in Nova's order too."""
        own = DeviceSpecSet.parse(self.specs, host=host)
        nova = DeviceSpecSet.parse(read_nova_confs(self.nova_confs), extensions=False, host=host)
        maps = read_vf_maps(self.vf_maps, self.physnets) if self.vf_maps else []
        return own + nova + DeviceSpecSet.parse(maps, host=host)


def _fail(path: Path, problem: str) -> TomlConfigError:
    return TomlConfigError(path, problem, "See docs/configuration.md, section 'Device specs'")


def _entries(path: Path, value: Any) -> list[SpecEntry]:
    if not isinstance(value, list):
        raise _fail(path, "'device_spec' must be an array of tables or of JSON strings")
    out = []
    for n, item in enumerate(value):
        if not isinstance(item, Mapping | str):
            raise _fail(path, f"device_spec[{n}] is a {type(item).__name__}; use a table or a "
                        "JSON string")
        out.append(SpecEntry(item if isinstance(item, str) else dict(item),
                             f"{path} device_spec[{n}]"))
    return out


def _imports(path: Path, table: Any, into: SpecSources) -> None:
    if not isinstance(table, Mapping):
        raise _fail(path, "[device_spec_import] must be a table")
    unknown = sorted(set(table) - {"nova_conf", "opennebula_vf_maps", "opennebula_physnets"})
    if unknown:
        raise _fail(path, f"unknown keys in [device_spec_import]: {unknown}")
    confs = table.get("nova_conf", [])
    confs = [confs] if isinstance(confs, str) else confs
    if not isinstance(confs, list) or not all(isinstance(c, str) for c in confs):
        raise _fail(path, "nova_conf must be a path or a list of paths")
    into.nova_confs += [path.parent / c for c in confs]
    maps = table.get("opennebula_vf_maps")
    if maps is not None:
        if not isinstance(maps, str):
            raise _fail(path, "opennebula_vf_maps must be a path")
        into.vf_maps = path.parent / maps
    physnets = table.get("opennebula_physnets", {})
    if not isinstance(physnets, Mapping) or not all(isinstance(v, str) for v in physnets.values()):
        raise _fail(path, "opennebula_physnets must map map names to physical network names")
    into.physnets.update(physnets)


def read_toml_sources(path: str | Path, into: SpecSources | None = None) -> SpecSources:
    """Add a vfkeeper TOML config's spec sources to ``into`` (or to new sources)."""
    path = Path(path)
    sources = into if into is not None else SpecSources()
    text = read_text(path, TomlConfigError, "Check the path and permissions")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"is not valid TOML ({exc})") from None
    if "device_spec" in data:
        sources.specs += _entries(path, data["device_spec"])
    if "device_spec_import" in data:
        _imports(path, data["device_spec_import"], sources)
    return sources


def load_spec_set(
    *,
    specs: Sequence[SpecEntry] = (),
    config: str | Path | None = None,
    nova_confs: Sequence[str | Path] = (),
    vf_maps: str | Path | None = None,
    physnets: Mapping[str, str] | None = None,
    host: HostView | None = None,
) -> DeviceSpecSet:
    """All sources in their documented order, parsed into one spec set."""
    sources = SpecSources(specs=list(specs))
    if config is not None:
        read_toml_sources(config, sources)
    sources.nova_confs += [Path(p) for p in nova_confs]
    if vf_maps is not None:
        sources.vf_maps = Path(vf_maps)
    sources.physnets.update(physnets or {})
    return sources.load(host)
