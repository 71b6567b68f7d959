"""Networks: a physical network plus a segmentation (flat, VLAN or InfiniBand PKey) and an MTU.

VLAN ids are 1-4094. PKeys are the 15-bit partition number 0x0001-0x7ffe (0x7fff is the default
partition, which the subnet manager owns and every port is already in); full membership (the top
bit, 0x8000) is the separate ``full_membership`` flag, so ``0x8001`` is refused with a hint.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import AlreadyExistsError, InUseError, NotFoundError
from vfkeeper.controller.fields import NetworkName, Physnet
from vfkeeper.sm.errors import InvalidPartitionError
from vfkeeper.sm.protocol import check_pkey
from vfkeeper.store.models import Network, Port

SegmentationType = Literal["flat", "vlan", "pkey"]


class Segmentation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: SegmentationType
    id: int | None = None
    """VLAN id (1-4094) or PKey (0x0001-0x7ffe; JSON numbers or "0x..." strings)."""
    full_membership: bool = False
    """PKeys only: the port is a full member of the partition (PKey | 0x8000)."""
    shared: bool = False
    """PKeys only: the PKey is an operator-owned partition (already defined at the subnet
    manager, not by vfkeeper); vfkeeper puts ports on it but never changes its membership.
    Without it, a PKey the SM lists as the operator's is refused (409)."""

    @field_validator("id", mode="before")
    @classmethod
    def _hex(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower().startswith("0x"):
            try:
                return int(value, 16)
            except ValueError:
                return value
        return value

    @model_validator(mode="after")
    def _range(self) -> Segmentation:
        if self.type == "flat":
            if self.id is not None or self.full_membership:
                raise ValueError("a flat network has no segmentation id or membership flag")
            if self.shared:
                raise ValueError("shared applies to PKeys only")
        elif self.id is None:
            raise ValueError(f"a {self.type} network needs a segmentation id")
        elif self.type == "vlan":
            if not 1 <= self.id <= 4094:
                raise ValueError(f"VLAN id {self.id} is outside 1-4094")
            if self.full_membership or self.shared:
                raise ValueError("full_membership and shared apply to PKeys only")
        elif 0x8001 <= self.id <= 0xFFFE:
            raise ValueError(
                f"PKey {self.id:#06x} has the full-membership bit set: give the partition "
                f"{self.id & 0x7FFF:#06x} and set full_membership=true")
        else:
            try:
                check_pkey(self.id)
            except InvalidPartitionError as exc:
                raise ValueError(str(exc)) from None
        return self


class NetworkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: NetworkName
    physical_network: Physnet
    segmentation: Segmentation
    mtu: int = Field(default=1500, ge=68, le=65520)


def network_view(n: Network) -> dict[str, Any]:
    """The network. ``segmentation.id`` stays a number (the request's field, as Neutron has
    it); a PKey network also shows its PKey in hex as InfiniBand tools do: ``pkey``, with the
    full-membership bit when set (``0x8a01``), and ``partition``, without it (``0x0a01``)."""
    seg: dict[str, Any] = {"type": n.segmentation_type, "id": n.segmentation_id}
    if n.segmentation_type == "pkey" and n.segmentation_id is not None:
        seg["full_membership"] = n.pkey_full_membership
        seg["shared"] = n.pkey_shared
        seg["pkey"] = f"{n.segmentation_id | (0x8000 if n.pkey_full_membership else 0):#06x}"
        seg["partition"] = f"{n.segmentation_id:#06x}"
    return {"id": n.id, "name": n.name, "physical_network": n.physical_network,
            "segmentation": seg, "mtu": n.mtu, "created_at": n.created_at}


def create_network(session: Session, body: NetworkCreate) -> Network:
    if session.scalar(select(Network.id).where(Network.name == body.name)) is not None:
        raise AlreadyExistsError("network", body.name)
    net = Network(
        id=str(uuid.uuid4()), name=body.name, physical_network=body.physical_network,
        segmentation_type=body.segmentation.type, segmentation_id=body.segmentation.id,
        pkey_full_membership=body.segmentation.full_membership,
        pkey_shared=body.segmentation.shared, mtu=body.mtu,
    )
    session.add(net)
    session.flush()
    return net


def find_network(session: Session, key: str) -> Network:
    """By id or by name."""
    net = session.get(Network, key) or session.scalar(select(Network).where(Network.name == key))
    if net is None:
        raise NotFoundError("network", key, "list networks with GET /v1/networks")
    return net


def delete_network(session: Session, key: str) -> None:
    net = find_network(session, key)
    ports = list(session.scalars(select(Port.id).where(Port.network_id == net.id).limit(10)))
    if ports:
        raise InUseError("network", net.name, [f"port {p}" for p in ports],
                         "delete its ports first")
    session.delete(net)
