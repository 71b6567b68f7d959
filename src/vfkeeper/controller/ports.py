"""Ports: what a user asks a network attachment to be (Neutron's port fields), and how it is
bound once an instance boots (``binding:*``)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.desired_state import claimed_port
from vfkeeper.controller.errors import InUseError, InvalidInputError, NotFoundError
from vfkeeper.controller.fields import AssignableGuid, Kbps, Mac, NetworkKey, PortName
from vfkeeper.controller.networks import find_network
from vfkeeper.controller.partitions import shown_port_status
from vfkeeper.controller.subnets import FixedIp, assign_addresses
from vfkeeper.domain.lifecycle import PortStatus
from vfkeeper.store.models import Allocation, Host, Network, Port

VnicType = Literal["normal", "direct", "macvtap", "direct-physical"]
SRIOV_VNIC_TYPES = ("direct", "macvtap", "direct-physical")


class Qos(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_kbps: Kbps | None = None
    max_kbps: Kbps | None = None

    @model_validator(mode="after")
    def _order(self) -> Qos:
        if self.min_kbps is not None and self.max_kbps is not None and \
                self.min_kbps > self.max_kbps:
            raise ValueError(f"min_kbps {self.min_kbps} is above max_kbps {self.max_kbps}")
        return self


class PortCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network: NetworkKey = Field(description="Network id or name.")
    name: PortName | None = None
    vnic_type: VnicType = "direct"
    mac: Mac | None = Field(default=None, description="Ethernet ports only; unicast, not 0.")
    guid: AssignableGuid | None = Field(default=None, description="InfiniBand ports only.")
    trusted: bool = False
    port_security: bool = True
    """Spoof checking on the VF."""
    qos: Qos = Qos()
    link_state: Literal["auto", "enable", "disable"] = "auto"
    fixed_ips: list[FixedIp] = Field(
        default_factory=list, max_length=16,
        description="Addresses asked for, one per subnet at most; every other subnet of the "
                    "network that allocates gives the port its lowest free address.")


def _check_against_network(body: PortCreate, net: Network) -> None:
    infiniband = net.segmentation_type == "pkey"
    if body.vnic_type == "direct-physical" and (body.mac or body.guid):
        raise InvalidInputError("mac", "a direct-physical port uses its PF's own address; "
                                "leave mac and guid out")
    if infiniband and body.mac is not None:
        raise InvalidInputError("mac", f"network {net.name!r} is InfiniBand (pkey): give a guid "
                                "instead of a mac")
    if not infiniband and body.guid is not None:
        raise InvalidInputError(
            "guid", f"network {net.name!r} is Ethernet ({net.segmentation_type}): GUIDs are for "
            "InfiniBand (pkey) networks; give a mac instead")
    if infiniband and body.vnic_type == "macvtap":
        raise InvalidInputError("vnic_type", "macvtap works on Ethernet only; use direct on "
                                "InfiniBand networks")


def create_port(session: Session, body: PortCreate, addresses: AddressPools) -> Port:
    net = find_network(session, body.network)
    _check_against_network(body, net)
    port_id = str(uuid.uuid4())
    port = Port(
        id=port_id, name=body.name, network_id=net.id, vnic_type=body.vnic_type,
        trusted=body.trusted, port_security=body.port_security,
        qos_min_kbps=body.qos.min_kbps, qos_max_kbps=body.qos.max_kbps,
        link_state=body.link_state, vif_details={}, binding_profile={}, status=PortStatus.DOWN,
    )
    if body.mac is not None:
        port.mac = addresses.mac(session, port_id, body.mac)
    if body.guid is not None:
        port.guid = addresses.guid(session, port_id, body.guid)
    session.add(port)
    session.flush()
    assign_addresses(session, port, net, body.fixed_ips, addresses.rng)
    session.flush()
    return port


def find_port(session: Session, port_id: str, *, lock: bool = False) -> Port:
    stmt = select(Port).where(Port.id == port_id)
    port = session.scalar(stmt.with_for_update() if lock else stmt)
    if port is None:
        raise NotFoundError("port", port_id, "list ports with GET /v1/ports")
    return port


def delete_port(session: Session, port_id: str) -> None:
    port = find_port(session, port_id, lock=True)
    if port.instance_id is not None:
        raise InUseError("port", port_id, [f"instance {port.instance_id}"],
                         "delete the instance first (that releases its devices)")
    session.delete(port)


def port_view(port: Port, host_names: dict[int, str], *,
              desired: dict[str, Any] | None = None,
              actual: dict[str, Any] | None = None,
              fixed_ips: list[dict[str, Any]] | None = None,
              partition: dict[str, Any] | None = None) -> dict[str, Any]:
    """The port, with its IP addresses (``fixed_ips``, :func:`subnets.addresses_of`) and its
    partition membership (``partition``); ``desired`` (what the claim asks the agent to
    program) and ``actual`` (what
    the host's agent last reported for this binding) for bound ports, ``None`` for unbound
    ones (whose ``status`` is ``DOWN``). ``partition``: an InfiniBand port's membership of
    its network's partition (:func:`vfkeeper.controller.partitions.port_partitions`); while it
    is pending the port is shown ``BUILD`` even when its agent reports it ``ACTIVE``."""
    return {
        "id": port.id, "name": port.name, "network_id": port.network_id,
        "vnic_type": port.vnic_type, "mac": port.mac, "guid": port.guid,
        "trusted": port.trusted, "port_security": port.port_security,
        "qos": {"min_kbps": port.qos_min_kbps, "max_kbps": port.qos_max_kbps},
        "link_state": port.link_state, "fixed_ips": fixed_ips or [],
        "instance_id": port.instance_id,
        "status": shown_port_status(port.status, partition),
        "partition": partition,
        "binding:host_id": host_names.get(port.host_id) if port.host_id else None,
        "binding:vnic_type": port.vnic_type,
        "binding:vif_type": port.vif_type,
        "binding:vif_details": port.vif_details,
        "binding:profile": port.binding_profile,
        "desired": desired,
        "actual": actual,
        "created_at": port.created_at,
    }


def states(session: Session, ports: list[Port]
           ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any] | None]]:  # fmt: skip
    """Port id → desired state (its allocation's), and → actual state (its agent's report).

    A report is shown only for the binding it was made for: the port's current allocation,
    on the same host and device. An unbound port (its instance deleted) has neither, even
    before its host's agent reports again (which then drops the report,
    :func:`vfkeeper.controller.agent_state.store_actual`)."""
    from vfkeeper.controller.agent_state import actual_view  # noqa: PLC0415
    from vfkeeper.store.agent_models import PortActual  # noqa: PLC0415

    ids = [p.id for p in ports]
    if not ids:
        return {}, {}
    rows = session.execute(select(Allocation.port_id, Allocation.host_id, Allocation.desired)
                           .where(Allocation.port_id.in_(ids), Allocation.incoming.is_(False)))
    bound = {pid: (host_id, want) for pid, host_id, want in rows}
    desired: dict[str, dict[str, Any]] = {
        pid: claimed_port(want).model_dump(mode="json") for pid, (_, want) in bound.items()}
    actual = {row.port_id: actual_view(row) for row in
              session.scalars(select(PortActual).where(PortActual.port_id.in_(ids)))
              if _reported_for(row, bound.get(row.port_id))}
    return desired, actual


def _reported_for(row: Any, binding: tuple[int, dict[str, Any]] | None) -> bool:
    """Whether an agent's report (a ``PortActual``) is about the port's current binding."""
    if binding is None:
        return False
    host_id, want = binding
    return bool(row.host_id == host_id and row.address == want.get("address"))


def host_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Host.id, Host.name).where(Host.id.in_(ids)))
    return {host_id: name for host_id, name in rows}
