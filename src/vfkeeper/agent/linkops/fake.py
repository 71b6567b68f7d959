"""An in-memory ``LinkOps`` that refuses what each NIC's kernel driver refuses.

Each PF is modelled by a :class:`DriverModel` from :data:`DRIVERS`, a capability table built
from the drivers' ``ndo_set_vf_*`` code (and, for ``igb``, checked against the real kernel in
the QEMU tier: ``tests/vm/test_linkops_real_kernel.py`` runs the same contract suite on both).
A refusal is raised exactly as :class:`~vfkeeper.agent.linkops.pyroute2_impl.Pyroute2LinkOps`
raises the kernel's errno: through :func:`~vfkeeper.agent.linkops.errors.refusal`.

The fake also records what a host would see: every accepted write (``writes``) and every VF
driver rebind that applying a GUID caused (``rebinds``; none for ``vfio-pci``-bound VFs).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from vfkeeper.agent.linkops.errors import PfNotFoundError, VfNotFoundError, refusal
from vfkeeper.agent.linkops.protocol import (
    GUID_ATTRS,
    LinkState,
    VfAttr,
    VfConfig,
    VfState,
    Vlan,
    format_value,
)

_NOT_SUPPORTED = errno.EOPNOTSUPP
_ALL_NETLINK = (
    VfAttr.MAC,
    VfAttr.VLAN,
    VfAttr.SPOOFCHK,
    VfAttr.TRUST,
    VfAttr.MIN_TX_RATE,
    VfAttr.MAX_TX_RATE,
)


@dataclass(frozen=True, slots=True)
class DriverModel:
    """What one PF driver does with each VF attribute."""

    name: str
    nics: str
    refuses: Mapping[VfAttr, int] = field(default_factory=dict)
    """Attributes the driver refuses whatever the value, with the errno it answers."""
    vlan_protos: frozenset[str] = frozenset({"802.1Q"})
    """Other VLAN protocols get EPROTONOSUPPORT (the drivers' check on ``vlan_proto``)."""
    min_rate: bool = True
    """False: a non-zero ``min_tx_rate`` is EINVAL (igb, ixgbe, i40e)."""
    max_rate_within_link: bool = False
    """``max_tx_rate`` above the PF's link speed, or any rate while the link is down, is
    EINVAL (igb's ``igb_ndo_set_vf_bw``)."""
    reports: frozenset[VfAttr] = frozenset(VfAttr) - GUID_ATTRS
    """What reads back. The kernel always sends MAC, VLAN, rates and link state; spoof check
    and trust only when ``ndo_get_vf_config`` fills them in; GUIDs only for InfiniBand PFs.
    Empty: the driver has no ``ndo_get_vf_config``, so the VF list carries no settings."""


DRIVERS: Mapping[str, DriverModel] = MappingProxyType(
    {
        m.name: m
        for m in (
            DriverModel(
                "igb",
                "Intel 82576 / I350 (and QEMU's igb)",
                refuses={
                    VfAttr.LINK_STATE: _NOT_SUPPORTED,
                    VfAttr.NODE_GUID: _NOT_SUPPORTED,
                    VfAttr.PORT_GUID: _NOT_SUPPORTED,
                },
                min_rate=False,
                max_rate_within_link=True,
            ),
            DriverModel(
                "i40e",
                "Intel X710 / XL710 / XXV710",
                refuses={VfAttr.NODE_GUID: _NOT_SUPPORTED, VfAttr.PORT_GUID: _NOT_SUPPORTED},
                min_rate=False,
            ),
            DriverModel(
                "ice",
                "Intel E810 (double VLAN mode, the default with current DDP packages)",
                refuses={VfAttr.NODE_GUID: _NOT_SUPPORTED, VfAttr.PORT_GUID: _NOT_SUPPORTED},
                vlan_protos=frozenset({"802.1Q", "802.1ad"}),
            ),
            DriverModel(
                "mlx5_core",
                "NVIDIA/Mellanox ConnectX-4/5/6/7, Ethernet port (upstream driver)",
                refuses={VfAttr.NODE_GUID: _NOT_SUPPORTED, VfAttr.PORT_GUID: _NOT_SUPPORTED},
            ),
            DriverModel(
                "mlx5_ib",
                "NVIDIA/Mellanox ConnectX-4/5/6/7, InfiniBand port (PF's IPoIB netdev)",
                refuses=dict.fromkeys(_ALL_NETLINK, _NOT_SUPPORTED),
                reports=frozenset(VfAttr) - {VfAttr.SPOOFCHK, VfAttr.TRUST},
            ),
            DriverModel(
                # enic's ops have ndo_set_vf_mac (a VF's MAC is set in the adapter) and
                # ndo_set_vf_port (802.1Qbh association), no other ndo_set_vf_* and no
                # ndo_get_vf_config: the VLAN comes with the port profile
                "enic",
                "Cisco VIC (VFs are configured through 802.1Qbh port profiles instead)",
                refuses=dict.fromkeys(frozenset(VfAttr) - {VfAttr.MAC}, _NOT_SUPPORTED),
                reports=frozenset(),
            ),
        )
    }
)


@dataclass(slots=True)
class FakePf:
    """One PF of the fake host."""

    name: str
    driver: str
    num_vfs: int
    link_speed_mbps: int = 1000
    link_up: bool = True
    vf_drivers: dict[int, str | None] = field(default_factory=dict)
    """The driver a VF is bound to, when not its netdev driver: ``"vfio-pci"`` or ``None``
    (unbound). GUID changes rebind only VFs bound to their netdev driver."""
    busy: set[int] = field(default_factory=set)
    """VFs whose driver answers EBUSY (being reset, like ice/i40e during a VF reset)."""


class FakeLinkOps:
    """In-memory ``LinkOps`` over :class:`FakePf` s."""

    def __init__(self, pfs: Iterable[FakePf]) -> None:
        self.pfs: dict[str, FakePf] = {pf.name: pf for pf in pfs}
        self._vfs: dict[tuple[str, int], VfState] = {}
        self.writes: list[tuple[str, int, VfAttr, object]] = []
        self.rebinds: list[tuple[str, int]] = []
        for pf in self.pfs.values():
            for index in range(pf.num_vfs):
                self._vfs[(pf.name, index)] = self._initial(pf, index)

    @staticmethod
    def _initial(pf: FakePf, index: int) -> VfState:
        zero_guid = "0x0000000000000000"
        state = VfState(
            pf.name,
            index,
            mac="00:00:00:00:00:00",
            vlan=Vlan(),
            spoofchk=True,
            trust=False,
            min_tx_rate=0,
            max_tx_rate=0,
            node_guid=zero_guid,
            port_guid=zero_guid,
            link_state=LinkState.AUTO,
        )
        return state

    def model(self, pf: str) -> DriverModel:
        return DRIVERS[self._pf(pf).driver]

    def _pf(self, pf: str) -> FakePf:
        try:
            return self.pfs[pf]
        except KeyError:
            raise PfNotFoundError(pf) from None

    def _reported(self, state: VfState) -> VfState:
        hidden = frozenset(VfAttr) - self.model(state.pf).reports
        return state.with_values((a, None) for a in hidden)

    def list_vfs(self, pf: str) -> tuple[VfState, ...]:
        fake_pf = self._pf(pf)
        if not self.model(pf).reports:
            return tuple(VfState(pf, i) for i in range(fake_pf.num_vfs))
        return tuple(self._reported(self._vfs[(pf, i)]) for i in range(fake_pf.num_vfs))

    def get_vf(self, pf: str, vf_index: int) -> VfState:
        fake_pf = self._pf(pf)
        if not 0 <= vf_index < fake_pf.num_vfs:
            raise VfNotFoundError(pf, vf_index, fake_pf.num_vfs)
        if not self.model(pf).reports:
            return VfState(pf, vf_index)
        return self._reported(self._vfs[(pf, vf_index)])

    def set_vf(self, pf: str, vf_index: int, config: VfConfig) -> None:
        fake_pf = self._pf(pf)
        if not 0 <= vf_index < fake_pf.num_vfs:
            raise VfNotFoundError(pf, vf_index, fake_pf.num_vfs)
        guid_set = False
        for attr, value in config.items():
            code = self._errno(fake_pf, vf_index, attr, value)
            if code:
                raise refusal(pf, vf_index, attr.value, format_value(attr, value), code)
            key = (pf, vf_index)
            self._vfs[key] = self._vfs[key].with_values([(attr, value)])
            self.writes.append((pf, vf_index, attr, value))
            guid_set = guid_set or attr in GUID_ATTRS
        if guid_set and fake_pf.vf_drivers.get(vf_index, "vf-netdev") not in (None, "vfio-pci"):
            self.rebinds.append((pf, vf_index))

    def _errno(self, pf: FakePf, vf_index: int, attr: VfAttr, value: object) -> int:
        model = DRIVERS[pf.driver]
        if attr in model.refuses:
            return model.refuses[attr]
        if vf_index in pf.busy:
            return errno.EBUSY
        return self._value_errno(model, pf, attr, value)

    @staticmethod
    def _value_errno(model: DriverModel, pf: FakePf, attr: VfAttr, value: object) -> int:
        if attr is VfAttr.MAC and isinstance(value, str) and int(value[:2], 16) & 1:
            return errno.EINVAL  # multicast: every driver's is_valid_ether_addr check
        if isinstance(value, Vlan) and value.proto not in model.vlan_protos:
            return errno.EPROTONOSUPPORT
        if attr is VfAttr.MIN_TX_RATE and value and not model.min_rate:
            return errno.EINVAL
        if attr in (VfAttr.MIN_TX_RATE, VfAttr.MAX_TX_RATE) and model.max_rate_within_link:
            return FakeLinkOps._rate_errno(pf, attr, value)
        return 0

    @staticmethod
    def _rate_errno(pf: FakePf, attr: VfAttr, value: object) -> int:
        if not pf.link_up:
            return errno.EINVAL
        if attr is VfAttr.MAX_TX_RATE and isinstance(value, int) and value > pf.link_speed_mbps:
            return errno.EINVAL
        return 0
