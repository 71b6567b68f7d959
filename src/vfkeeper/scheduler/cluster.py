"""An index over the cluster's hosts, so one decision touches only the hosts that can win.

For every (physical network, device type, NUMA node or any) a schedulable host has pools in, the
index keeps a sorted list of ``(free devices, host name order)``. A decision bisects the list of
its main group to the first host with enough free devices and walks it in the weigher's order;
the first host every filter accepts wins. The cost of a successful decision therefore grows with
``log(hosts)`` and with the hosts skipped on the way, never with the number of devices.

Only a ``NoValidHost`` answer visits every host (it must explain each one).
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

from vfkeeper.scheduler.errors import InvalidHostViewError
from vfkeeper.scheduler.model import HostView, IndexKey, Shape

NameKey = tuple[str | int, ...]
_Entry = tuple[int, NameKey, str]
_DIGITS = re.compile(r"(\d+)")


def name_order(name: str) -> NameKey:
    """Natural order: ``host-2`` before ``host-10``."""
    parts = _DIGITS.split(name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


class ClusterView:
    """Every host the scheduler may consider, indexed for fast decisions.

    This is an index, not a value: the caller (the controller, the benchmark) owns one, and
    :meth:`upsert` s a host whenever its view changes. :func:`~vfkeeper.scheduler.schedule`
    only reads it.
    """

    def __init__(self, hosts: Iterable[HostView] = ()) -> None:
        self._hosts: dict[str, HostView] = {}
        self._nkeys: dict[str, NameKey] = {}
        self._shapes: dict[Shape, tuple[Shape, list[int]]] = {}
        """Canonical Shape object and its reference count, per shape."""
        self._order: list[tuple[NameKey, str]] = []
        self._ordered: list[HostView] = []
        """The hosts, parallel to ``_order``."""
        self._index: dict[IndexKey, list[_Entry]] = {}
        for host in hosts:
            if host.name in self._hosts:
                raise InvalidHostViewError(
                    host.name, "the host is listed twice", "give each host exactly one view"
                )
            self.upsert(host)

    def __len__(self) -> int:
        return len(self._hosts)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def get(self, name: str) -> HostView | None:
        return self._hosts.get(name)

    def hosts(self) -> list[HostView]:
        """Every host, in stable (natural name) order (a new list)."""
        return list(self._ordered)

    def upsert(self, host: HostView) -> None:
        """Add ``host`` or replace the view of the host with its name."""
        name = host.name
        old = self._hosts.get(name)
        nkey = self._nkeys.get(name)
        if nkey is None:
            nkey = self._nkeys[name] = name_order(name)
            at = bisect_left(self._order, (nkey, name))
            self._order.insert(at, (nkey, name))
            self._ordered.insert(at, host)
        else:
            self._ordered[bisect_left(self._order, (nkey, name))] = host
        self._intern(host)
        if old is not None:
            self._release(old)
        self._hosts[name] = host
        before = old.index_free if old is not None and old.schedulable else {}
        after = host.index_free if host.schedulable else {}
        for key, free in before.items():
            if after.get(key) != free:
                entries = self._index[key]
                del entries[bisect_left(entries, (free, nkey, name))]
        for key, free in after.items():
            if before.get(key) != free:
                insort(self._index.setdefault(key, []), (free, nkey, name))

    def remove(self, name: str) -> None:
        """Forget a host (deleted from the cluster)."""
        old = self._hosts.pop(name, None)
        if old is None:
            return
        nkey = self._nkeys.pop(name)
        self._release(old)
        if old.schedulable:
            for key, free in old.index_free.items():
                entries = self._index[key]
                del entries[bisect_left(entries, (free, nkey, name))]
        at = bisect_left(self._order, (nkey, name))
        del self._order[at]
        del self._ordered[at]

    def _intern(self, host: HostView) -> None:
        """Make hosts of equal shape share one Shape object, so that a decision's memo finds
        them by identity instead of comparing their pools. The swap replaces a cached, derived
        field by an equal value: the host view does not change."""
        entry = self._shapes.get(host.shape)
        if entry is None:
            self._shapes[host.shape] = (host.shape, [1])
            return
        canonical, refs = entry
        refs[0] += 1
        object.__setattr__(host, "shape", canonical)

    def _release(self, host: HostView) -> None:
        _, refs = self._shapes[host.shape]
        refs[0] -= 1
        if refs[0] == 0:
            del self._shapes[host.shape]

    def walk(self, key: IndexKey, need: int, descending: bool) -> Iterator[HostView]:
        """Schedulable hosts with at least ``need`` free devices under ``key``, fewest free first
        (or most free first when ``descending``); equal counts in name order."""
        entries = self._index.get(key, [])
        hosts = self._hosts
        if not descending:
            for i in range(bisect_left(entries, (need,)), len(entries)):
                yield hosts[entries[i][2]]
            return
        hi = len(entries)
        while hi > 0:
            free = entries[hi - 1][0]
            if free < need:
                return
            lo = bisect_left(entries, (free,))
            for i in range(lo, hi):
                yield hosts[entries[i][2]]
            hi = lo
