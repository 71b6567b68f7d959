"""What the demo reads back from the controller, and the tables it prints of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table

from vfkeeper.agent.desired import HostIndex, bound_vif
from vfkeeper.agent.linkops.protocol import VfAttr, VfState
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.session import DemoStepError, Session, table
from vfkeeper.domain.desired_state import DesiredPort
from vfkeeper.domain.vif import render_interface


@dataclass(frozen=True)
class Placement:
    """One bound port: where the scheduler put it and what the claim gave it."""

    instance: str
    host: str
    port: str
    vnic_type: str
    vif_type: str
    device: str
    parent_pf: str | None
    numa_node: int | None
    physical_network: str
    network_physnet: str
    address: str
    """MAC (Ethernet) or GUID (InfiniBand); ``-`` for a whole PF."""
    segment: str
    status: str


def instance_named(session: Session, name: str) -> dict[str, Any]:
    for inst in session.get("/v1/instances"):
        if inst["name"] == name:
            return dict(inst)
    raise DemoStepError(f"no instance named {name!r} on the controller")


def _segment(details: dict[str, Any]) -> str:
    if details.get("profileid"):  # 802.1qbh: the port profile carries the VLAN
        return "port profile"
    if details.get("pkey"):
        return f"pkey {details['pkey']}"
    if details.get("vlan"):
        return f"vlan {details['vlan']}"
    return "-"  # a flat network, or a whole PF (the guest owns it; nothing is tagged)


def placements(session: Session) -> list[Placement]:
    """Every bound port of every instance, in boot order."""
    physnets = {n["id"]: n["physical_network"] for n in session.get("/v1/networks")}
    numa = {a["port_id"]: a["numa_node"] for a in session.get("/v1/allocations")}
    rows = []
    for inst in sorted(session.get("/v1/instances"), key=lambda i: str(i["created_at"])):
        for port in session.get("/v1/ports", instance=inst["id"]):
            profile = port["binding:profile"]
            rows.append(Placement(
                instance=inst["name"], host=inst["host"], port=port["name"] or port["id"],
                vnic_type=port["vnic_type"], vif_type=port["binding:vif_type"],
                device=profile["pci_slot"], parent_pf=profile.get("parent_pf"),
                numa_node=numa.get(port["id"]),
                physical_network=profile["physical_network"],
                network_physnet=physnets[port["network_id"]],
                address=port["guid"] or port["mac"] or "-",
                segment=_segment(port["binding:vif_details"]), status=port["status"]))
    return rows


def placement_table(rows: list[Placement]) -> Table:
    return table(
        "placements (instance → host, port → device)",
        ("instance", "host", "port", "vnic_type", "vif_type", "device", "NUMA", "physnet",
         "MAC / GUID", "VLAN / PKey", "status"),
        [(r.instance, r.host, r.port, r.vnic_type, r.vif_type, r.device,
          "-" if r.numa_node is None else str(r.numa_node), r.physical_network, r.address,
          r.segment, r.status) for r in rows])


def desired_ports(session: Session, host: str, instance_id: str) -> list[DesiredPort]:
    """The instance's entries of the desired state its host's agent reads.

    An 802.1qbh port's ``profileid`` is taken from the port's ``binding:vif_details`` when
    the desired state does not carry it.
    """
    details = {p["id"]: p["binding:vif_details"]
               for p in session.get("/v1/ports", instance=instance_id)}
    return [DesiredPort.model_validate(
                {**vf, "profileid": vf.get("profileid")
                 or details[vf["port_id"]].get("profileid")})
            for vf in session.get(f"/v1/hosts/{host}/desired-state")["vfs"]
            if vf["instance_id"] == instance_id]


def host_index(session: Session, host: str) -> HostIndex:
    """Netdev names by PCI address, from ``GET /v1/hosts/NAME/interfaces`` (macvtap needs the
    VF's netdev)."""
    netdev: dict[str, str] = {}
    for row in session.get(f"/v1/hosts/{host}/interfaces"):
        netdev.setdefault(row["pci_address"], row["name"])
    return HostIndex(netdev, frozenset(netdev))


def instance_xml(session: Session, name: str) -> dict[str, str]:
    """Port name → the device XML the agent attaches for it: the agent's own
    :func:`~vfkeeper.agent.desired.bound_vif` on the desired state, rendered by
    :mod:`vfkeeper.domain.vif`."""
    inst = instance_named(session, name)
    index = host_index(session, inst["host"])
    names = {p["id"]: p["name"] or p["id"] for p in session.get("/v1/ports", instance=inst["id"])}
    return {names[port.port_id]: render_interface(bound_vif(port, index))
            for port in desired_ports(session, inst["host"], inst["id"])}


def pool_change_table(host: str, before: list[dict[str, Any]],
                      after: list[dict[str, Any]]) -> Table:
    def key(pool: dict[str, Any]) -> tuple[str, str, str]:
        return pool["physical_network"], pool["dev_type"], pool["parent_pf"]

    was = {key(p): p for p in before}
    rows = [(p["physical_network"], p["dev_type"], p["parent_pf"], str(p["numa_node"]),
             str(p["total"]), str(was[key(p)]["free"]) if key(p) in was else "-",
             str(p["free"])) for p in after]
    return table(f"{host}: pools before and after the delete",
                 ("physnet", "type", "PF", "NUMA", "total", "free before", "free after"), rows)


# --- what the agents made of it ----------------------------------------------------------------


@dataclass(frozen=True)
class PortState:
    """One bound port: what the controller wants, what its agent reported, and what the fake
    kernel of its host shows."""

    instance: str
    host: str
    port: str
    port_id: str
    device: str
    vif_type: str
    status: str
    actual: dict[str, Any]
    """The agent's report as ``GET /v1/ports`` shows it (phase, observed MAC/VLAN/GUID…)."""
    desired_address: str
    """The port's MAC, or its GUID (InfiniBand); ``-`` for a whole PF."""
    desired_vlan: int | None
    kernel: VfState | None
    """The VF in the host's fake kernel; None for a whole PF (nothing is programmed)."""
    desired_profile: str | None = None
    """An 802.1qbh port's port profile (``profileid``)."""
    profile: str | None = None
    """The port profile libvirt associated for the VF (802.1Qbh), as the host shows it."""

    @property
    def infiniband(self) -> bool:
        return self.vif_type == "ib_hostdev"

    @property
    def kernel_matches(self) -> bool:
        """The kernel shows the port's MAC and VLAN (Ethernet) or its GUID (InfiniBand); for
        802.1qbh, libvirt associated the port's profile."""
        k = self.kernel
        if k is None:
            return False
        if self.vif_type == "802.1qbh":  # enic reads nothing back; the association is the fact
            return self.profile is not None and self.profile == self.desired_profile
        if self.infiniband:
            return k.port_guid == k.node_guid == self.desired_address
        return k.mac == self.desired_address and (k.vlan.id if k.vlan else 0) == (
            self.desired_vlan or 0)


def port_states(session: Session, fleet: Fleet) -> list[PortState]:
    """Every bound port of every instance, in boot order, with its host's kernel view."""
    rows = []
    for inst in sorted(session.get("/v1/instances"), key=lambda i: str(i["created_at"])):
        host = fleet[inst["host"]]
        for port in session.get("/v1/ports", instance=inst["id"]):
            device = port["binding:profile"]["pci_slot"]
            details = port["binding:vif_details"]
            qbh = port["binding:vif_type"] == "802.1qbh"
            vlan = None if qbh else details.get("vlan")  # the port profile carries it
            rows.append(PortState(
                instance=inst["name"], host=inst["host"], port=port["name"] or port["id"],
                port_id=port["id"], device=device, vif_type=port["binding:vif_type"],
                status=port["status"], actual=port["actual"] or {},
                desired_address=port["guid"] or port["mac"] or "-",
                desired_vlan=int(vlan) if vlan else None, kernel=host.vf(device),
                desired_profile=details.get("profileid") if qbh else None,
                profile=host.port_profile(device)))
    return rows


def _reported(actual: dict[str, Any], infiniband: bool) -> tuple[str, str]:
    if infiniband:
        return actual.get("port_guid") or "-", "-"
    vlan = actual.get("vlan")
    return actual.get("mac") or "-", str(vlan) if vlan else "-"


def port_state_table(rows: list[PortState]) -> Table:
    def attached(actual: dict[str, Any]) -> str:
        where = [w for w in ("live", "config") if actual.get(f"attached_{w}")]
        return "+".join(where) or "-"

    return table(
        "ports as their agents report them (GET /v1/ports: status, actual)",
        ("port", "host", "VF", "phase", "MAC / port GUID", "VLAN", "attached", "status"),
        [(r.port, r.host, r.device, str(r.actual.get("phase", "-")),
          *_reported(r.actual, r.infiniband), attached(r.actual), r.status) for r in rows])


def vf_text(state: VfState, infiniband: bool) -> str:
    """A VF's settings, as ``ip link show`` prints the attributes vfkeeper programs."""
    if all(state.value(a) is None for a in VfAttr):
        return "none reported (the driver has no ndo_get_vf_config)"
    if infiniband and state.node_guid == state.port_guid:
        return f"node and port GUID {state.port_guid}"
    if infiniband:
        return f"node_guid {state.node_guid}, port_guid {state.port_guid}"
    vlan = state.vlan.id if state.vlan else 0
    on = {True: "on", False: "off", None: "?"}
    return (f"mac {state.mac}, vlan {vlan}, spoofchk {on[state.spoofchk]}, "
            f"trust {on[state.trust]}, link-state {state.link_state}")


def kernel_table(rows: list[PortState], fleet: Fleet) -> Table:
    def where(r: PortState) -> str:
        pf, index = fleet[r.host].vf_of[r.device]
        return f"{r.host} {pf} vf {index}"

    return table(
        "VF settings in each host's fake kernel (LinkOps.get_vf; ip link show on a real host)",
        ("port", "VF", "settings", "= desired"),
        [(r.port, where(r), _settings(r), "yes" if r.kernel_matches else "NO")
         for r in rows if r.kernel is not None])


def _settings(r: PortState) -> str:
    assert r.kernel is not None
    if r.profile is not None:  # 802.1Qbh: enic reads nothing back
        return f"nothing read back (no ndo_get_vf_config); port profile {r.profile} associated"
    return vf_text(r.kernel, r.infiniband)
