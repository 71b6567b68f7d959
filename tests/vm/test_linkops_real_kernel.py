"""LinkOps on a real kernel: QEMU's igb (Intel 82576) with real VFs, programmed over netlink.

Runs inside the VM guest (see conftest.py). Three things are checked against the kernel itself:

* the whole LinkOps contract (``tests/unit/test_linkops_contract.py``) with ``DRIVERS["igb"]``
  as the expectation — the same suite the fake passes, so the fake's igb row is a checked fact;
* what pyroute2 reads back agrees with iproute2 (``ip -j -d link show``), an independent reader;
* igb's refusals arrive as the typed errors, with the errno ``ip link`` gets for the same request.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vm_guest

from vfkeeper.agent.linkops import (
    LinkState,
    VfAttributeNotSupportedError,
    VfConfig,
    VfRefusedError,
    VfValueRejectedError,
    Vlan,
    apply,
    restore,
)
from vfkeeper.agent.linkops.fake import DRIVERS
from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps

pytestmark = pytest.mark.vm


def _load_contract() -> Any:
    path = Path(__file__).resolve().parents[1] / "unit" / "test_linkops_contract.py"
    spec = importlib.util.spec_from_file_location("_linkops_contract", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


contract = _load_contract()
NUM_VFS = 4


BASELINE = ["mac", "00:00:00:00:00:00", "vlan", "0", "qos", "0", "spoofchk", "on", "trust", "off"]
BASELINE += ["max_tx_rate", "0", "min_tx_rate", "0"]
"""What a VF igb has just made looks like, as ``ip link set PF vf N ...`` arguments: no MAC
(igb reports 0 until the PF or the VF's driver sets one; 0 also clears the PF-set flag), no
VLAN, spoof checking on, not trusted, no rate limit. igb refuses link_state, so it never moves."""


def _pf_up(igb_pf: str) -> str:
    """The PF's netdev, up with carrier. Carrier last: igb refuses any VF rate while the link
    is down, and enabling SR-IOV resets the PF (link down, up)."""
    name = vm_guest.netdevs(igb_pf)[0]
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    carrier = Path(f"/sys/class/net/{name}/carrier")
    vm_guest.wait_until(lambda: carrier.read_text().strip() == "1", f"carrier on {name}")
    return name


@pytest.fixture(scope="module")
def fresh_vfs(igb_pf: str, igb_vfs_shared: Callable[[int], list[str]]) -> dict[str, Any]:
    """NUM_VFS VFs for the whole module (a destroy + create costs seconds under TCG), and how
    iproute2 shows them straight after igb made them: the state every test starts from."""
    vm_guest.set_numvfs(igb_pf, NUM_VFS)  # fresh, whatever an earlier module left
    igb_vfs_shared(NUM_VFS)
    name = _pf_up(igb_pf)
    return {"pf": name, "pristine": iproute2_vfs(name)}


@pytest.fixture
def pf_netdev(igb_pf: str, fresh_vfs: dict[str, Any]) -> str:
    """The igb PF's netdev with NUM_VFS VFs as igb makes them, up with carrier.

    The VFs are the module's: what the previous test changed is put back to igb's defaults
    through iproute2 (not through the LinkOps under test), and the result must read back exactly
    as the fresh VFs did. Were it ever to differ, the VFs are destroyed and made again, so a
    test never starts from a VF another test changed."""
    name: str = fresh_vfs["pf"]
    pristine: list[dict[str, Any]] = fresh_vfs["pristine"]
    now = iproute2_vfs(name)
    for index, (vf, clean) in enumerate(zip(now, pristine, strict=True)):
        if vf != clean:
            subprocess.run(["ip", "link", "set", name, "vf", str(index), *BASELINE], check=True)
    if now != pristine and iproute2_vfs(name) != pristine:
        warnings.warn(
            f"iproute2 could not put the VFs of {name} back to igb's defaults; made them again",
            stacklevel=1,
        )
        vm_guest.set_numvfs(igb_pf, NUM_VFS)  # through 0: VFs as igb makes them
        _pf_up(igb_pf)
        assert iproute2_vfs(name) == pristine
    return name


@pytest.fixture
def ops() -> Iterator[Pyroute2LinkOps]:
    with Pyroute2LinkOps() as real:
        yield real


class TestRealKernelContract(contract.LinkOpsContract):  # type: ignore[misc,name-defined]
    @pytest.fixture
    def target(self, pf_netdev: str, ops: Pyroute2LinkOps) -> Any:
        return contract.ContractTarget(ops, pf_netdev, NUM_VFS, DRIVERS["igb"])


def iproute2_vfs(pf: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ip", "-j", "-d", "link", "show", "dev", pf], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out)[0]["vfinfo_list"])


def test_what_linkops_sets_is_what_iproute2_reads(pf_netdev: str, ops: Pyroute2LinkOps) -> None:
    ops.set_vf(
        pf_netdev,
        2,
        VfConfig(
            mac="02:11:22:33:44:55",
            vlan=Vlan(100, 3),
            spoofchk=False,
            trust=True,
            max_tx_rate=200,
        ),
    )
    vf = iproute2_vfs(pf_netdev)[2]
    assert vf["address"] == "02:11:22:33:44:55"
    assert (vf["vlan_list"][0]["vlan"], vf["vlan_list"][0]["qos"]) == (100, 3)
    assert (vf["spoofchk"], vf["trust"]) == (False, True)
    assert vf["rate"] == {"max_tx": 200, "min_tx": 0}
    untouched = iproute2_vfs(pf_netdev)[1]
    assert untouched["address"] == "00:00:00:00:00:00" and untouched["trust"] is False


def test_snapshot_change_restore_leaves_the_kernel_as_it_was(
    pf_netdev: str, ops: Pyroute2LinkOps
) -> None:
    ops.set_vf(pf_netdev, 0, VfConfig(mac="02:00:00:00:00:0a", trust=True))  # operator's tuning
    before = iproute2_vfs(pf_netdev)

    result = apply(
        ops,
        pf_netdev,
        0,
        VfConfig(
            mac="02:00:00:00:00:0b",
            vlan=Vlan(42),
            spoofchk=False,
            trust=True,
            max_tx_rate=300,
            min_tx_rate=10,
            link_state=LinkState.ENABLE,
        ),
    )

    assert [(r.attribute, r.errno) for r in result.skipped] == [
        ("min_tx_rate", errno.EINVAL),
        ("link_state", errno.EOPNOTSUPP),
    ]
    assert iproute2_vfs(pf_netdev)[0]["address"] == "02:00:00:00:00:0b"
    restore(ops, result.snapshot)
    assert iproute2_vfs(pf_netdev) == before


REFUSALS: dict[str, tuple[list[str], VfConfig, type[VfRefusedError], int]] = {
    "min_tx_rate": (
        ["min_tx_rate", "10"],
        VfConfig(min_tx_rate=10),
        VfValueRejectedError,
        errno.EINVAL,
    ),
    "link_state": (
        ["state", "disable"],
        VfConfig(link_state=LinkState.DISABLE),
        VfAttributeNotSupportedError,
        errno.EOPNOTSUPP,
    ),
    "node_guid": (
        ["node_guid", "00:02:c9:03:00:a1:b2:c3"],
        VfConfig(node_guid="0x0002c90300a1b2c3"),
        VfAttributeNotSupportedError,
        errno.EOPNOTSUPP,
    ),
    "802.1ad": (
        ["vlan", "7", "proto", "802.1ad"],
        VfConfig(vlan=Vlan(7, 0, "802.1ad")),
        VfAttributeNotSupportedError,
        errno.EPROTONOSUPPORT,
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_igb_refusals_are_typed_with_the_errno_ip_link_gets(
    pf_netdev: str, ops: Pyroute2LinkOps, case: str
) -> None:
    ip_args, config, error, code = REFUSALS[case]
    iproute2 = subprocess.run(
        ["ip", "link", "set", pf_netdev, "vf", "1", *ip_args],
        check=False,
        capture_output=True,
        text=True,
    )
    assert iproute2.returncode != 0
    assert os.strerror(code) in iproute2.stderr

    with pytest.raises(error) as refused:
        ops.set_vf(pf_netdev, 1, config)

    assert refused.value.errno == code
    assert (refused.value.pf, refused.value.vf_index) == (pf_netdev, 1)
