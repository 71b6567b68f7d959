"""Weighers: which of the hosts (and which of a host's pools) that fit is preferred.

A weigher orders hosts by the free devices of the request's *main group* (the physical network
and device type the instance asks the most devices of; on the instance's NUMA node under policy
``required``), and orders the pools inside a host. Ties go to the host first in name order.

* ``pack`` (default): fewest free first. Instances fill hosts (and PFs) that are already in
  use, which keeps whole hosts and whole PFs free for large or ``direct-physical`` instances.
* ``spread``: most free first. Instances spread over hosts and PFs, which spreads load and
  the blast radius of a host failure.
"""

from __future__ import annotations

from typing import Protocol

from vfkeeper.scheduler.model import HostView, PoolView


class Weigher(Protocol):
    """Orders hosts (by a count of free devices) and the pools of one host."""

    name: str
    descending: bool
    """``True``: hosts with more free devices come first."""

    def pool_order(self, pool: PoolView) -> tuple[int, str]:
        """Sort key of a pool among the candidate pools of one host; smaller is preferred."""
        ...

    def host_order(self, host: HostView) -> int:
        """Sort key of a host for requests with no PCI device at all; smaller is preferred."""
        ...


class PackWeigher:
    """Fill what is in use first."""

    name = "pack"
    descending = False

    def pool_order(self, pool: PoolView) -> tuple[int, str]:
        return (pool.free, pool.parent_pf)

    def host_order(self, host: HostView) -> int:
        return host.total_free


class SpreadWeigher:
    """Use what is emptiest first."""

    name = "spread"
    descending = True

    def pool_order(self, pool: PoolView) -> tuple[int, str]:
        return (-pool.free, pool.parent_pf)

    def host_order(self, host: HostView) -> int:
        return -host.total_free


WEIGHERS: dict[str, Weigher] = {w.name: w for w in (PackWeigher(), SpreadWeigher())}
"""Registry by name; ``InstanceRequest.weigher`` selects one."""
