"""The contract every subnet-manager backend meets, run against each real or faithful SM.

A backend's test module subclasses :class:`SmContract` and provides three fixtures:

* ``sm``: the backend under test, on an SM that holds no vfkeeper partitions yet;
* ``port_guids``: at least four port GUIDs the SM's fabric knows (for OpenSM under ibsim,
  simulated HCA ports; a backend whose SM accepts any GUID may make them up);
* ``operator_pkey``: a partition defined outside vfkeeper before the test (an OpenSM base-file
  partition, a PKey UFM had), with ``port_guids[3]`` as a full member.

Each case reads back with ``sm.read()``: what the SM has, not what vfkeeper remembers.
"""

from __future__ import annotations

import pytest

from vfkeeper.sm.errors import InvalidPartitionError, OperatorPartitionError
from vfkeeper.sm.protocol import ChangeSet, SubnetManager

A, B = 0x0A01, 0x0A02


class SmContract:
    """Inherit and provide the fixtures ``sm``, ``port_guids``, ``operator_pkey``."""

    def test_a_fresh_sm_has_only_the_operators_partition(
            self, sm: SubnetManager, operator_pkey: int, port_guids: list[str]) -> None:
        view = sm.read()
        assert set(view.partitions) == {operator_pkey}
        part = view.partitions[operator_pkey]
        assert part.operator_owned
        assert dict(part.members) == {port_guids[3]: "full"}

    def test_ensure_creates_an_empty_partition(self, sm: SubnetManager) -> None:
        sm.apply(ChangeSet(ensure=frozenset({A})))
        part = sm.read().partitions[A]
        assert dict(part.members) == {} and not part.operator_owned

    def test_members_are_added_with_their_membership(
            self, sm: SubnetManager, port_guids: list[str]) -> None:
        g0, g1, g2 = port_guids[:3]
        result = sm.apply(ChangeSet(ensure=frozenset({A, B}),
                                    add={A: {g0: "full", g1: "limited"}, B: {g2: "limited"}}))
        assert result.differences == ()
        view = sm.read()
        assert dict(view.members_of(A)) == {g0: "full", g1: "limited"}
        assert dict(view.members_of(B)) == {g2: "limited"}

    def test_a_member_changes_membership_in_a_later_batch(
            self, sm: SubnetManager, port_guids: list[str]) -> None:
        g0 = port_guids[0]
        sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {g0: "limited"}}))
        sm.apply(ChangeSet(add={A: {g0: "full"}}))
        assert dict(sm.read().members_of(A)) == {g0: "full"}

    def test_removed_members_leave_and_absent_ones_are_ignored(
            self, sm: SubnetManager, port_guids: list[str]) -> None:
        g0, g1, g2 = port_guids[:3]
        sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {g0: "full", g1: "full"}}))
        sm.apply(ChangeSet(remove={A: frozenset({g1, g2})}))  # g2 was never a member
        assert dict(sm.read().members_of(A)) == {g0: "full"}

    def test_applying_the_same_batch_twice_changes_nothing_more(
            self, sm: SubnetManager, port_guids: list[str]) -> None:
        batch = ChangeSet(ensure=frozenset({A}), add={A: {port_guids[0]: "full"}})
        sm.apply(batch)
        first = sm.read()
        sm.apply(batch)
        assert sm.read() == first

    def test_a_batch_touching_an_operator_partition_is_refused_whole(
            self, sm: SubnetManager, port_guids: list[str], operator_pkey: int) -> None:
        before = sm.read()
        with pytest.raises(OperatorPartitionError):
            sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {port_guids[0]: "full"},
                                                            operator_pkey: {port_guids[1]:
                                                                            "full"}}))
        assert sm.read() == before  # nothing of the batch, not even partition A

    def test_guids_are_read_back_in_canonical_form(
            self, sm: SubnetManager, port_guids: list[str]) -> None:
        bare = port_guids[0].removeprefix("0x").upper()  # how UFM and flint write them
        sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {bare: "full"}}))
        assert list(sm.read().members_of(A)) == [port_guids[0]]

    def test_values_no_sm_may_get_are_refused_before_any_call(self) -> None:
        for bad in ({0x8A01: {"0x0002c90300a1b2c3": "full"}},  # membership bit in the key
                    {0x7FFF: {"0x0002c90300a1b2c3": "full"}},  # the default partition
                    {A: {"0x0": "full"}},                       # a zero GUID
                    {A: {"0x0002c90300a1b2c3": "both"}}):       # not a membership
            with pytest.raises(InvalidPartitionError):
                ChangeSet(add=bad)  # type: ignore[arg-type]
