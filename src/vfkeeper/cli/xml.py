"""``vfkeeper xml``: print the libvirt XML vfkeeper would attach, without a controller.

Local commands: they only call the domain core's renderer. A combination the renderer refuses
is a usage error (exit 2) whose message says what to change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.errors import DomainError
from vfkeeper.domain.vif import (
    BoundVif,
    Failover,
    VifType,
    VnicType,
    render_failover_pair,
    render_hostdev_network,
    render_interface,
)

_T = TypeVar("_T")

xml_app = typer.Typer(
    name="xml",
    help="Print the libvirt XML for a VF, PF or hostdev network (local; no controller needed).",
    no_args_is_help=True,
)


USAGE_ERROR = 2


def _usage_errors(build: Callable[[], _T]) -> _T:
    """Run a domain call; a refusal becomes ``Error: …`` on stderr and exit status 2, like
    any other bad command line."""
    try:
        return build()
    except DomainError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(USAGE_ERROR) from None


def _failover(alias: str, bridge: str | None, network: str | None) -> Failover | None:
    if bridge is None and network is None:
        return None
    return Failover(alias=alias, bridge=bridge, network=network)


@xml_app.command("interface")
def interface(
    *,
    vnic_type: VnicType = typer.Option(..., "--vnic-type", help="What the port asked for."),
    vif_type: VifType = typer.Option(..., "--vif-type", help="How the device is plugged."),
    pci_slot: str | None = typer.Option(
        None, "--pci-slot", metavar="ADDR",
        help="The VF's PCI address (the PF's for hostdev_physical), e.g. 0000:03:10.1.",
    ),
    mac: str | None = typer.Option(None, "--mac", help="The port's MAC address."),
    vlan: int | None = typer.Option(
        None, "--vlan", metavar="N", help="VLAN id 1-4094; omit for a flat network."
    ),
    netdev: str | None = typer.Option(
        None, "--netdev", metavar="NAME", help="The VF's host netdev (vnic_type macvtap)."
    ),
    profileid: str | None = typer.Option(
        None, "--profileid", metavar="ID", help="802.1Qbh port profile (vif_type 802.1qbh)."
    ),
    hostdev_network: str | None = typer.Option(
        None, "--hostdev-network", metavar="NAME",
        help="Take the VF from this libvirt hostdev network instead of --pci-slot.",
    ),
    alias: str | None = typer.Option(
        None, "--alias", metavar="ua-NAME", help="Device alias (must start with 'ua-')."
    ),
    failover_bridge: str | None = typer.Option(
        None, "--failover-bridge", metavar="BRIDGE",
        help="Also print a virtio failover NIC on this bridge (migratable SR-IOV).",
    ),
    failover_network: str | None = typer.Option(
        None, "--failover-network", metavar="NET",
        help="Also print a virtio failover NIC on this libvirt network.",
    ),
    failover_alias: str = typer.Option(
        "ua-failover0", "--failover-alias", metavar="ua-NAME",
        help="Alias of the virtio failover NIC, which the VF's <teaming> names.",
    ),
) -> None:
    """Print the <interface> or <hostdev> of one bound port.

    With --failover-bridge/--failover-network, print the virtio NIC first, then the VF.
    """
    vif = _usage_errors(
        lambda: BoundVif(
            vif_type=vif_type, vnic_type=vnic_type, pci_address=pci_slot, mac=mac, vlan=vlan,
            netdev=netdev, profileid=profileid, hostdev_network=hostdev_network, alias=alias,
            failover=_failover(failover_alias, failover_bridge, failover_network),
        )
    )
    if vif.failover is None:
        typer.echo(render_interface(vif))
    else:
        for device in render_failover_pair(vif):
            typer.echo(device)


def _vfs_of_pfs(pf_names: list[str], sysfs_root: Path) -> list[str]:
    """The VF addresses of several PFs, from discovery of the host under ``sysfs_root``."""
    inventory = discover(SysfsReader(sysfs_root))
    addresses: list[str] = []
    for name in pf_names:
        pf = inventory.pf_by_netdev(name)
        if pf is None:
            typer.echo(f"Error: --pf {name}: no SR-IOV PF has the interface {name!r} under "
                       f"{sysfs_root} (see 'vfkeeper discover --sysfs-root {sysfs_root}')",
                       err=True)
            raise typer.Exit(USAGE_ERROR)
        vfs = [vf.address for vf in inventory.vfs_of(pf.address)]
        if not vfs:
            typer.echo(f"Error: --pf {name}: PF {pf.address} has no VFs (sriov_numvfs is 0); "
                       "create them first", err=True)
            raise typer.Exit(USAGE_ERROR)
        addresses += vfs
    return addresses


@xml_app.command("network")
def network(
    name: str = typer.Option(..., "--name", help="Network name VMs refer to (e.g. the physnet)."),
    pf: list[str] = typer.Option(
        [], "--pf", metavar="DEV",
        help="A PF netdev whose VFs join the pool; repeat for several PFs (their VFs are then "
             "listed, read from --sysfs-root, as libvirt allows one <pf> per network).",
    ),
    vf: list[str] = typer.Option(
        [], "--vf", metavar="ADDR", help="A VF PCI address for the pool; repeat."
    ),
    sysfs_root: Path = typer.Option(
        Path("/"), "--sysfs-root", metavar="PATH",
        help="Where to find the VFs of several --pf (this host by default).",
    ),
) -> None:
    """Print a libvirt hostdev network: a pool of VFs that VMs use by name."""
    if len(pf) > 1:
        vf = [*_vfs_of_pfs(pf, sysfs_root), *vf]
        pf = []
    typer.echo(_usage_errors(lambda: render_hostdev_network(name, pf, vf_addresses=vf)))


def register(app: typer.Typer) -> None:
    app.add_typer(xml_app, name="xml")
