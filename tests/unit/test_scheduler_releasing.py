"""The scheduler names releasing devices (freed, not yet given back by their host) when it
says why a host does not fit: they are counted in a pool's total, never as free."""

from __future__ import annotations

import pytest

from vfkeeper.scheduler import (
    HostView,
    InstanceRequest,
    InvalidHostViewError,
    NoValidHost,
    PciRequest,
    PoolView,
    schedule,
)


def _host(name: str, free: int, releasing: int, **kw: object) -> HostView:
    pool = PoolView("physnet1", "type-VF", 0, "8086", "1889", "0000:03:00.0", free, 4,
                    releasing=releasing)
    return HostView(name, (pool,), **kw)  # type: ignore[arg-type]


def _ask(count: int = 1, **kw: object) -> InstanceRequest:
    return InstanceRequest((PciRequest("r1", "physnet1", count=count),), **kw)  # type: ignore[arg-type]


def test_each_host_names_its_own_releasing_devices() -> None:
    result = schedule(_ask(), [_host("host-a", 0, 1), _host("host-b", 0, 1),
                               _host("host-c", 0, 0)])
    assert isinstance(result, NoValidHost)
    reasons = {r.host: r.reason for r in result.rejections}
    assert "1 releasing on host host-a" in reasons["host-a"]
    assert "1 releasing on host host-b" in reasons["host-b"]  # same shape, its own name
    assert "releasing" not in reasons["host-c"]
    assert reasons["host-a"].startswith("physnet physnet1: 0 free VFs now; 1 releasing")


def test_releasing_devices_are_never_free() -> None:
    assert isinstance(schedule(_ask(), [_host("host-a", 0, 4)]), NoValidHost)
    assert schedule(_ask(), [_host("host-a", 1, 3)]).host == "host-a"  # type: ignore[union-attr]


def test_a_rejection_about_the_name_does_not_count_them() -> None:
    result = schedule(_ask(host_hint="host-b"), [_host("host-a", 0, 2), _host("host-b", 0, 0)])
    assert isinstance(result, NoValidHost)
    assert all("releasing" not in r.reason for r in result.rejections)
    silent = schedule(_ask(), [_host("host-a", 0, 2, agent_alive=False)])
    assert isinstance(silent, NoValidHost)
    assert "2 releasing on host host-a" in silent.rejections[0].reason


def test_a_pool_cannot_release_more_than_it_holds() -> None:
    with pytest.raises(InvalidHostViewError, match="releasing=4"):
        _host("host-a", 1, 4)
