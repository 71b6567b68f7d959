"""The in-memory subnet manager the controller's tests use meets the same contract as the real
backends, and its failure switches do what they say."""

from __future__ import annotations

import pytest
from sm_contract import A, SmContract

from vfkeeper.sm.errors import SmRefusedError, SmUnavailableError
from vfkeeper.sm.fake import FakeSubnetManager
from vfkeeper.sm.protocol import ChangeSet, Partition

GUIDS = [f"0x0002c903000000{n:02x}" for n in range(1, 5)]
OPERATOR = 0x0B01


@pytest.fixture
def port_guids() -> list[str]:
    return list(GUIDS)


@pytest.fixture
def operator_pkey() -> int:
    return OPERATOR


@pytest.fixture
def sm() -> FakeSubnetManager:
    return FakeSubnetManager([Partition(pkey=OPERATOR, members={GUIDS[3]: "full"},
                                        name="storage")])


class TestFake(SmContract):
    pass


def test_unavailable_until_made_available_again(sm: FakeSubnetManager) -> None:
    sm.make_unavailable("UFM is restarting")
    with pytest.raises(SmUnavailableError, match="UFM is restarting"):
        sm.read()
    with pytest.raises(SmUnavailableError):
        sm.apply(ChangeSet(ensure=frozenset({A})))
    sm.make_available()
    sm.apply(ChangeSet(ensure=frozenset({A})))
    assert A in sm.read().partitions


def test_a_refused_batch_changes_nothing_and_the_next_one_goes_through(
        sm: FakeSubnetManager) -> None:
    batch = ChangeSet(ensure=frozenset({A}), add={A: {GUIDS[0]: "full"}})
    sm.refuse_next("pkey table full")
    with pytest.raises(SmRefusedError, match="pkey table full"):
        sm.apply(batch)
    assert A not in sm.read().partitions and sm.batches == []
    sm.apply(batch)
    assert dict(sm.read().members_of(A)) == {GUIDS[0]: "full"}
    assert sm.batches == [batch]


def test_a_lost_member_shows_in_the_view_and_in_the_next_verification(
        sm: FakeSubnetManager) -> None:
    sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {GUIDS[0]: "full", GUIDS[1]: "full"}}))
    sm.lose(A, GUIDS[1])
    assert dict(sm.read().members_of(A)) == {GUIDS[0]: "full"}
    assert sm.apply(ChangeSet(add={A: {GUIDS[1]: "full"}})).differences == ()
    assert dict(sm.read().members_of(A)) == {GUIDS[0]: "full", GUIDS[1]: "full"}
