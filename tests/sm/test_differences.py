"""The read-back comparison every backend returns after a batch names each way the SM differs
from what the batch asked, and nothing when it matches."""

from __future__ import annotations

from vfkeeper.sm.protocol import ChangeSet, Partition, SmView, differences

A, B = 0x0A01, 0x0A02
G0, G1, G2 = "0x0002c90300000001", "0x0002c90300000002", "0x0002c90300000003"


def test_a_view_that_shows_the_batch_has_no_differences() -> None:
    batch = ChangeSet(ensure=frozenset({B}), add={A: {G0: "full"}}, remove={A: frozenset({G1})})
    view = SmView({A: Partition(A, {G0: "full"}), B: Partition(B)})
    assert differences(batch, view) == ()


def test_each_unmet_part_of_a_batch_is_named() -> None:
    batch = ChangeSet(ensure=frozenset({B}), add={A: {G0: "full", G1: "limited"}},
                      remove={A: frozenset({G2})})
    view = SmView({A: Partition(A, {G0: "limited", G2: "full"})})
    assert differences(batch, view) == (
        "partition 0x0a02 is missing after it was created",
        f"{G0} is a limited member of partition 0x0a01, asked: full",
        f"{G1} is not a member of partition 0x0a01 (asked: limited)",
        f"{G2} is still a member of partition 0x0a01 after its removal")
