"""A host's desired state (``GET /v1/hosts/{name}/desired-state``): every device claimed
there with the settings its agent must program, and the host's part of the instances'
lifecycle tasks (:mod:`vfkeeper.controller.lifecycle`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from vfkeeper.controller.instances import TASK_KINDS
from vfkeeper.controller.lifecycle import STAYS_PLUGGED, UNPLUGGED_FOR
from vfkeeper.store.models import Allocation, Host, Instance, Port


class DesiredVf(BaseModel):
    """One claimed device and the state its host's agent must program (``claims._bind``)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    instance_id: str
    instance_name: str
    """The agent finds the instance's libvirt domain by UUID (the instance id), else by this."""
    address: str
    parent_pf: str | None
    vf_index: int | None
    port_id: str
    vnic_type: str
    vif_type: str | None
    mac: str | None
    guid: str | None
    vlan: str | None
    pkey: str | None
    trusted: bool
    spoofchk: bool
    link_state: str
    min_tx_rate_kbps: int | None
    max_tx_rate_kbps: int | None
    mtu: int | None
    profileid: str | None = None
    """The 802.1Qbh port profile (vif_type ``802.1qbh``)."""
    incoming: bool = False
    """Reserved here for a migrating instance: program the VF; the domain is on its way."""
    unplugged: bool = False
    """The port keeps its device but must be off the domain (the instance migrates away or is
    suspended): detach it and restore the VF."""


class DesiredTask(BaseModel):
    """This host's part of an instance's lifecycle task (:mod:`vfkeeper.controller.lifecycle`).
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str
    kind: Literal["migrate", "suspend", "resume"]
    role: Literal["source", "target"]
    instance_id: str
    instance_name: str
    peer_host: str | None = None
    """A migration's other host."""
    migration_uri: str | None = None
    """The source's: where libvirt migrates the domain to."""
    ready: bool = False
    """The source's: the destination has programmed its VFs; unplug and migrate."""
    abort: bool = False
    """The source's: an operator aborted the task; stop unless it is done already."""
    netdevs: dict[str, str] = {}
    """The source's: port id → the destination VF's netdev a macvtap interface moves onto."""


class DesiredState(BaseModel):
    """What a host's agent must make true; ``generation`` grows with every change."""

    model_config = ConfigDict(extra="forbid")

    host: str
    generation: int
    vfs: list[DesiredVf]
    tasks: list[DesiredTask] = []


def _go(instance: Instance) -> bool:
    """Whether the source may go on: not asked to abort; a migration's destination ready."""
    detail = instance.task_detail or {}
    if detail.get("abort"):
        return False
    return instance.status != "MIGRATING" or bool(detail.get("ready"))


def _unplugged(instance: Instance, vnic_type: str, incoming: bool) -> bool:
    if incoming or vnic_type == STAYS_PLUGGED or instance.status not in UNPLUGGED_FOR:
        return False
    if instance.status == "RESUMING":  # plugged in once the domain is restored
        return True
    return instance.status == "SUSPENDED" or _go(instance)


def desired_state_of(session: Session, host: Host) -> DesiredState:
    rows = session.execute(
        select(Allocation, Instance, Port.vif_details)
        .join(Instance, Instance.id == Allocation.instance_id)
        .join(Port, Port.id == Allocation.port_id)
        .where(Allocation.host_id == host.id).order_by(Allocation.id))
    vfs = [DesiredVf(request_id=a.request_id, instance_id=a.instance_id,
                     instance_name=i.name, profileid=(details or {}).get("profileid"),
                     incoming=a.incoming,
                     unplugged=_unplugged(i, a.desired["vnic_type"], a.incoming), **a.desired)
           for a, i, details in rows]
    return DesiredState(host=host.name, generation=host.generation, vfs=vfs,
                        tasks=_tasks(session, host))


def _tasks(session: Session, host: Host) -> list[DesiredTask]:
    source, target = aliased(Host), aliased(Host)
    rows = session.execute(
        select(Instance, source.name, target.name, target.migration_uri)
        .join(source, source.id == Instance.host_id)
        .outerjoin(target, target.id == Instance.target_host_id)
        .where(Instance.task_id.is_not(None),
               or_(Instance.host_id == host.id, Instance.target_host_id == host.id))
        .order_by(Instance.id))
    tasks = []
    for instance, source_name, target_name, uri in rows:
        detail: dict[str, Any] = instance.task_detail or {}
        kind = TASK_KINDS[instance.status]
        if instance.host_id == host.id:
            tasks.append(DesiredTask(
                task_id=instance.task_id, kind=kind, role="source", instance_id=instance.id,
                instance_name=instance.name, peer_host=target_name, migration_uri=uri,
                ready=_go(instance) and instance.status == "MIGRATING",
                abort=bool(detail.get("abort")), netdevs=detail.get("netdevs") or {}))
        else:
            tasks.append(DesiredTask(
                task_id=instance.task_id, kind=kind, role="target", instance_id=instance.id,
                instance_name=instance.name, peer_host=source_name))
    return tasks
