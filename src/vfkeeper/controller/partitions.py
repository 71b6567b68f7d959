"""InfiniBand partition membership: what the controller wants the subnet manager to have, and
where the SM is with it (``partition_memberships``).

**Wanted** (:func:`wanted`): every port with a GUID on a PKey network that holds a device (an
allocation, its own or an incoming one while it migrates) is a member of its network's
partition, ``full`` or ``limited`` as the network says. The default partition 0x7fff is the
SM's own: nothing is wanted in it.

**Rows** (:func:`record_wanted`) follow the wanted set, level-triggered: a new membership is
``pending_add``; one no longer wanted is ``pending_remove`` until the SM confirmed the GUID is
out (then the row is deleted), and until then the GUID is not handed out to another port
(:mod:`vfkeeper.controller.addresses`). With the ``none`` backend, and on a network marked
shared (an operator-owned partition), membership is managed outside vfkeeper: the row is
``external`` and only shows what the port needs.

The reconciler (:mod:`vfkeeper.controller.partition_reconciler`) turns the pending rows into
one :class:`~vfkeeper.sm.protocol.ChangeSet` per pass and records what the SM did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import (
    OperatorPartitionConflictError,
    SubnetManagerUnavailableError,
)
from vfkeeper.sm.errors import OperatorPartitionError, SmError
from vfkeeper.sm.protocol import DEFAULT_PKEY, Membership, SubnetManager
from vfkeeper.store.models import Allocation, Network, Port
from vfkeeper.store.partition_models import PartitionMembership

PENDING_ADD = "pending_add"
MEMBER = "member"
PENDING_REMOVE = "pending_remove"
EXTERNAL = "external"
STATES = (PENDING_ADD, MEMBER, PENDING_REMOVE, EXTERNAL)

Key = tuple[int, str]
"""(PKey, GUID)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    pkey: int
    guid: str
    membership: Membership
    port_id: str
    shared: bool
    """The network is on an operator-owned partition: vfkeeper never changes it."""


def wanted(session: Session) -> dict[Key, Wanted]:
    """Every membership the allocations need (see the module)."""
    bound = exists().where(Allocation.port_id == Port.id)
    rows = session.execute(
        select(Port.id, Port.guid, Network.segmentation_id, Network.pkey_full_membership,
               Network.pkey_shared)
        .join(Network, Network.id == Port.network_id)
        .where(Network.segmentation_type == "pkey", Port.guid.is_not(None), bound))
    out: dict[Key, Wanted] = {}
    for port_id, guid, pkey, full, shared in rows:
        if pkey is None or pkey == DEFAULT_PKEY or guid is None:
            continue
        out[(pkey, guid)] = Wanted(pkey, guid, "full" if full else "limited", port_id,
                                   bool(shared))
    return out


def rows(session: Session, *, pkey: int | None = None,
         lock: bool = False) -> dict[Key, PartitionMembership]:
    stmt = select(PartitionMembership).order_by(PartitionMembership.pkey,
                                                PartitionMembership.guid)
    if pkey is not None:
        stmt = stmt.where(PartitionMembership.pkey == pkey)
    if lock:
        stmt = stmt.with_for_update()
    return {(r.pkey, r.guid): r for r in session.scalars(stmt)}


def _set(row: PartitionMembership, state: str, now: datetime) -> None:
    if row.state != state:
        row.state, row.attempts, row.last_error, row.verified = state, 0, None, False
        row.updated_at = now


def record_wanted(session: Session, want: Mapping[Key, Wanted], *, managed: bool,
                  now: datetime) -> dict[Key, PartitionMembership]:
    """Bring the rows in line with ``want`` (see the module); ``managed``: False with the
    ``none`` backend. Returns the rows after the change."""
    have = rows(session, lock=True)
    for key, w in want.items():
        external = not managed or w.shared
        row = have.get(key)
        if row is None:
            row = PartitionMembership(
                pkey=w.pkey, guid=w.guid, membership=w.membership, port_id=w.port_id,
                state=EXTERNAL if external else PENDING_ADD, verified=False, attempts=0,
                created_at=now, updated_at=now)
            session.add(row)
            have[key] = row
            continue
        row.port_id = w.port_id
        if external:
            _set(row, EXTERNAL, now)
        elif row.state in (PENDING_REMOVE, EXTERNAL) or row.membership != w.membership:
            _set(row, PENDING_ADD, now)
        row.membership = w.membership
    for key, row in list(have.items()):
        if key in want:
            continue
        if row.state == EXTERNAL:
            session.delete(row)
            del have[key]
        else:
            _set(row, PENDING_REMOVE, now)
    session.flush()
    return have


def out_of_line(want: Mapping[Key, Wanted], have: Mapping[Key, PartitionMembership], *,
                managed: bool) -> bool:
    """Whether :func:`record_wanted` would change any row."""
    if any(key not in want and row.state != PENDING_REMOVE for key, row in have.items()):
        return True
    for key, w in want.items():
        row = have.get(key)
        if row is None or row.port_id != w.port_id or row.membership != w.membership:
            return True
        external = not managed or w.shared
        if (row.state == EXTERNAL) != external or row.state == PENDING_REMOVE:
            return True
    return False


def owned_pkeys(session: Session) -> set[int]:
    """The PKeys vfkeeper manages at the SM: its PKey networks' (not the shared ones), and any
    it still has GUIDs to take out of."""
    nets = session.scalars(select(Network.segmentation_id).where(
        Network.segmentation_type == "pkey", Network.pkey_shared.is_(False)))
    leaving = session.scalars(select(PartitionMembership.pkey).where(
        PartitionMembership.state != EXTERNAL).distinct())
    return {p for p in (*nets, *leaving) if p is not None and p != DEFAULT_PKEY}


def check_network_pkey(backend: SubnetManager, pkey: int, *, shared: bool) -> None:
    """Refuse (409) a new network on a PKey the SM lists as an operator's partition unless it
    is ``shared``; 503 when the SM cannot be asked (nothing is created)."""
    if shared or backend.name == "none" or pkey == DEFAULT_PKEY:
        return
    try:
        view = backend.read()
    except SmError as exc:
        raise SubnetManagerUnavailableError(
            f"cannot check PKey {pkey:#06x} with the subnet manager, so the network was not "
            f"created: {exc}") from exc
    part = view.partitions.get(pkey)
    if part is not None and part.operator_owned:
        raise OperatorPartitionConflictError(
            str(OperatorPartitionError(pkey, f"the {backend.name} subnet manager lists it as "
                                             "the operator's")), pkey)


# ---- views -----------------------------------------------------------------------------------

def membership_view(row: PartitionMembership) -> dict[str, Any]:
    return {"pkey": f"{row.pkey:#06x}", "guid": row.guid, "membership": row.membership,
            "port_id": row.port_id, "state": row.state, "verified": row.verified,
            "attempts": row.attempts, "error": row.last_error, "updated_at": row.updated_at}


def memberships(session: Session, *, managed: bool,
                pkey: int | None = None) -> list[dict[str, Any]]:
    """Every membership as shown: the rows, and what the allocations need that the
    reconciler has not recorded yet (``pending_add``, or ``external``), sorted."""
    have = rows(session, pkey=pkey)
    out = [membership_view(r) for r in have.values()]
    for key, w in wanted(session).items():
        if key in have or (pkey is not None and w.pkey != pkey):
            continue
        out.append({"pkey": f"{w.pkey:#06x}", "guid": w.guid, "membership": w.membership,
                    "port_id": w.port_id,
                    "state": EXTERNAL if not managed or w.shared else PENDING_ADD,
                    "verified": False, "attempts": 0, "error": None, "updated_at": None})
    return sorted(out, key=lambda m: (m["pkey"], m["guid"]))


def port_partitions(session: Session, ports: Iterable[Port], *,
                    managed: bool) -> dict[str, dict[str, Any]]:
    """Port id → its partition membership as a port shows it: for a bound InfiniBand port
    with a GUID on a PKey network, the row of (its network's PKey, its GUID), or
    ``pending_add`` before the reconciler recorded it (``external`` with the ``none`` backend
    or on a shared network); for another port, a row of its that is still leaving."""
    listed = list(ports)
    if not listed:
        return {}
    ids = [p.id for p in listed]
    nets = {n.id: n for n in session.scalars(select(Network).where(
        Network.id.in_({p.network_id for p in listed}), Network.segmentation_type == "pkey"))}
    bound = set(session.scalars(select(Allocation.port_id).where(Allocation.port_id.in_(ids))))
    by_port: dict[str, list[PartitionMembership]] = {}
    for row in session.scalars(select(PartitionMembership).where(
            PartitionMembership.port_id.in_(ids))):
        by_port.setdefault(row.port_id or "", []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for port in listed:
        rows_of = by_port.get(port.id, [])
        net = nets.get(port.network_id)
        pkey = net.segmentation_id if net is not None else None
        if port.id in bound and net is not None and port.guid and pkey is not None and \
                pkey != DEFAULT_PKEY:
            mine = next((r for r in rows_of if r.pkey == pkey and r.guid == port.guid), None)
            if mine is not None:
                out[port.id] = _shown(mine)
            else:
                out[port.id] = {
                    "pkey": f"{pkey:#06x}",
                    "membership": "full" if net.pkey_full_membership else "limited",
                    "state": EXTERNAL if not managed or net.pkey_shared else PENDING_ADD,
                    "error": None}
        elif rows_of:
            out[port.id] = _shown(rows_of[0])
    return out


def _shown(row: PartitionMembership) -> dict[str, Any]:
    return {"pkey": f"{row.pkey:#06x}", "membership": row.membership, "state": row.state,
            "error": row.last_error}


def shown_port_status(status: str, partition: Mapping[str, Any] | None) -> str:
    """A port the agent reports ``ACTIVE`` is shown ``BUILD`` until its GUID is a member of
    its partition (``external``: managed outside vfkeeper, not waited for)."""
    if status == "ACTIVE" and partition is not None and partition["state"] in (
            PENDING_ADD, PENDING_REMOVE):
        return "BUILD"
    return status


def summary(session: Session, *, managed: bool) -> list[dict[str, Any]]:
    """One entry per PKey that a vfkeeper network uses or that has membership rows."""
    nets: dict[int, list[Network]] = {}
    for net in session.scalars(select(Network).where(Network.segmentation_type == "pkey")
                               .order_by(Network.name)):
        if net.segmentation_id is not None:
            nets.setdefault(net.segmentation_id, []).append(net)
    counts: dict[int, dict[str, int]] = {}
    for m in memberships(session, managed=managed):
        counts.setdefault(int(m["pkey"], 16), dict.fromkeys(STATES, 0))[m["state"]] += 1
    out = []
    for pkey in sorted(set(nets) | set(counts)):
        networks = nets.get(pkey, [])
        out.append({
            "pkey": f"{pkey:#06x}",
            "networks": [n.name for n in networks],
            "shared": any(n.pkey_shared for n in networks),
            "default_partition": pkey == DEFAULT_PKEY,
            "members": counts.get(pkey, dict.fromkeys(STATES, 0)),
        })
    return out


def parse_pkey_text(text: str) -> int | None:
    """A PKey as InfiniBand tools write it, in hex with or without ``0x`` (``0x0a01``,
    ``a01``); ``None`` if it is not one."""
    t = text.strip().lower().removeprefix("0x")
    if not t or len(t) > 4 or any(c not in "0123456789abcdef" for c in t):
        return None
    return int(t, 16)
