"""``--subnet-manager none`` is honest: it shows nothing, changes nothing and never claims a
change was verified."""

from __future__ import annotations

from vfkeeper.sm.none import NoSubnetManager
from vfkeeper.sm.protocol import ChangeSet


def test_the_view_is_empty_and_says_membership_is_managed_outside() -> None:
    view = NoSubnetManager().read()
    assert view.partitions == {} and view.managed_outside


def test_a_batch_is_accepted_but_never_verified() -> None:
    sm = NoSubnetManager()
    result = sm.apply(ChangeSet(ensure=frozenset({0x0A01}),
                                add={0x0A01: {"0x0002c90300000001": "full"}}))
    assert not result.verified and result.differences == ()
    assert sm.read().partitions == {}  # nothing recorded either
    assert sm.name == "none"
