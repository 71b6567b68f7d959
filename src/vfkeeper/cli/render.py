"""Tables for the terminal. ``inventory_table`` shows a host inventory with each PF's VFs
grouped under it (VF rows are indented with ``└``)."""

from __future__ import annotations

import io
import shutil
import sys

from rich.console import Console
from rich.table import Table

from vfkeeper.domain.inventory import Device, HostInventory

DEFAULT_WIDTH = 160
"""Width used when output is not a terminal (pipes, tests), so no column is cut."""

_SHORT_TYPES = {"type-PF": "PF", "type-VF": "VF", "type-PCI": "PCI"}


def console_width() -> int:
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return DEFAULT_WIDTH


def render(renderable: object, width: int | None = None) -> str:
    """``renderable`` as plain text (no colour codes) ``width`` columns wide."""
    buf = io.StringIO()
    Console(file=buf, width=width or console_width(), color_system=None,
            highlight=False).print(renderable)
    return buf.getvalue()


def _vf_counts(dev: Device) -> str:
    if dev.dev_type == "type-VF":
        return "-" if dev.vf_index is None else f"vf {dev.vf_index}"
    if dev.sriov_totalvfs is None and dev.sriov_numvfs is None:
        return ""
    return f"{_show(dev.sriov_numvfs)}/{_show(dev.sriov_totalvfs)}"


def _show(value: object) -> str:
    return "?" if value is None else str(value)


def _guids(dev: Device) -> str:
    """The GUIDs a user matches against an SM's configuration: the node GUID and each port's
    GUID; for a VF the administrative GUIDs its PF holds for it."""
    lines = []
    ib = dev.infiniband
    if ib is not None and dev.link_type == "infiniband":
        lines.append(f"node {_show(ib.node_guid)}")
        lines += [f"port{p.number} {_show(p.port_guid)}" for p in ib.ports]
    admin = dev.vf_admin_guids
    if admin is not None and dev.link_type == "infiniband" and ib is None:
        lines.append(f"admin node {_show(admin.node_guid)}")
        lines.append(f"admin port {_show(admin.port_guid)}")
    return "\n".join(lines)


def _pkeys(dev: Device) -> str:
    if dev.infiniband is None or dev.link_type != "infiniband":
        return ""
    # one line per port, level with the port's GUID line (the first GUID line is the node's)
    return "\n".join(["", *(",".join(p.pkeys) or "-" for p in dev.infiniband.ports)])


def _row(dev: Device, *, child: bool, with_class: bool) -> list[str]:
    ids = f"{_show(dev.vendor_id)}:{_show(dev.product_id)}"
    row = [
        f"└ {dev.address}" if child else dev.address,
        _SHORT_TYPES[dev.dev_type],
        ids,
        dev.driver or "-",
        ",".join(n.name for n in dev.netdevs) or "-",
        dev.link_type or "-",
        "-" if dev.numa_node is None else str(dev.numa_node),
        _vf_counts(dev),
        _guids(dev),
        _pkeys(dev),
    ]
    if with_class:
        row.insert(3, dev.class_code or "?")
    return row


def inventory_table(inv: HostInventory) -> Table:
    with_class = any(not d.is_network for d in inv.devices)
    table = Table(title=f"{inv.hostname}: {len(inv.devices)} PCI functions", title_justify="left")
    headers = ["address", "type", "vendor:product", "driver", "netdev", "link", "NUMA",
               "VFs", "GUIDs", "PKeys"]
    if with_class:
        headers.insert(3, "class")
    for header in headers:
        table.add_column(header, no_wrap=header in ("address", "vendor:product", "GUIDs"))
    present = {d.address for d in inv.devices}
    for dev in inv.devices:
        if dev.dev_type == "type-VF" and dev.parent_addr in present:
            continue
        table.add_row(*_row(dev, child=False, with_class=with_class))
        for vf in inv.vfs_of(dev.address):
            table.add_row(*_row(vf, child=True, with_class=with_class))
    return table


def warnings_text(inv: HostInventory) -> str:
    if not inv.warnings:
        return ""
    lines = [f"{len(inv.warnings)} warning(s): these fields are null because sysfs did not "
             "show them as expected:"]
    lines += [f"  {w.path}: {w.message}" for w in inv.warnings]
    return "\n".join(lines)
