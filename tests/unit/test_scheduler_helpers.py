"""Builders shared by the scheduler tests (no tests here): pools, hosts, requests in one line."""

from __future__ import annotations

from vfkeeper.scheduler import HostView, InstanceRequest, PciRequest, PoolView


def vf(
    physnet: str,
    pf_addr: str,
    node: int | None,
    free: int,
    *,
    total: int = 8,
    trusted: bool = False,
) -> PoolView:
    """A VF pool: ``free`` of ``total`` VFs of PF ``pf_addr``."""
    tags = (("trusted", "true"),) if trusted else ()
    return PoolView(physnet, "type-VF", node, "15b3", "101e", pf_addr, free, total, tags)


def pf(physnet: str, addr: str, node: int | None, free: int = 1) -> PoolView:
    """A PF pool: the PF at ``addr``, free (1) or not (0)."""
    return PoolView(physnet, "type-PF", node, "15b3", "101d", addr, free, 1)


def host(name: str, *pools: PoolView, **kw: object) -> HostView:
    return HostView(name, tuple(pools), **kw)  # type: ignore[arg-type]


def vfs(physnet: str, n: int = 1, count: int = 1, **kw: object) -> tuple[PciRequest, ...]:
    """``n`` VF requests (ports) on ``physnet``."""
    return tuple(
        PciRequest(f"{physnet}-vf{i}", physnet, "type-VF", count, **kw)  # type: ignore[arg-type]
        for i in range(n)
    )


def pfs(physnet: str, n: int = 1) -> tuple[PciRequest, ...]:
    """``n`` PF (direct-physical) requests on ``physnet``."""
    return tuple(PciRequest(f"{physnet}-pf{i}", physnet, "type-PF") for i in range(n))


def instance(*reqs: PciRequest, **kw: object) -> InstanceRequest:
    return InstanceRequest(tuple(reqs), **kw)  # type: ignore[arg-type]
