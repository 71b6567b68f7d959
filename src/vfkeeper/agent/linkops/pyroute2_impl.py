"""``LinkOps`` over pyroute2 (netlink), with the MLNX_OFED sysfs fallback for IB GUIDs.

Reads: one ``RTM_GETLINK`` for the PF with ``RTEXT_FILTER_VF`` (``ext_mask=1``), whose
``IFLA_NUM_VF`` and ``IFLA_VFINFO_LIST`` carry every VF's settings — what ``ip -d link show PF``
prints. The kernel fills ``spoofchk``/``trust`` with ``0xffffffff`` when the driver does not
report them; those read as ``None``. GUIDs come only from InfiniBand PFs; when netlink carries
none and the PF has MLNX_OFED's ``device/sriov/<vf>/{node,port}`` files, those are read.

Writes: one ``RTM_NEWLINK`` per attribute (see :mod:`.privileged`), so that a refusal names the
attribute that caused it. ``IFLA_VF_RATE`` carries min and max together; setting one sends the
other's current value. 802.1ad VLANs go in ``IFLA_VF_VLAN_LIST`` (``IFLA_VF_VLAN`` is 802.1Q
only), built with the struct's full size (see :class:`.privileged._VlanListMsg`). A GUID the
driver refuses over netlink with EOPNOTSUPP is written to the sriov sysfs file when the PF has
one (likewise link state, to ``policy``). After GUIDs change, the VF's driver is rebound so the
VF picks them up — unless the VF is bound to ``vfio-pci`` (a VM owns it; the reset on VM start
applies them) or to nothing.
"""

from __future__ import annotations

import errno as errno_mod
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vfkeeper.agent.errors import SysfsMissingError, SysfsReadError
from vfkeeper.agent.linkops import privileged
from vfkeeper.agent.linkops.errors import (
    PfNotFoundError,
    VfNotFoundError,
    VfRebindError,
    refusal,
)
from vfkeeper.agent.linkops.privileged import NetlinkSocket, SriovFile
from vfkeeper.agent.linkops.protocol import (
    GUID_ATTRS,
    VLAN_PROTO_NUMBERS,
    LinkState,
    VfAttr,
    VfConfig,
    VfState,
    Vlan,
    format_value,
)
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.guid import parse_guid

RTEXT_FILTER_VF = 1
_UNREPORTED = 0xFFFFFFFF
_PROTO_NAMES = {number: name for name, number in VLAN_PROTO_NUMBERS.items()}
_NO_DRIVER_REBIND = frozenset({"vfio-pci"})


def _flag(info: Any, nla: str, field: str) -> bool | None:
    attr = info.get_attr(nla)
    if attr is None or attr[field] == _UNREPORTED:
        return None
    return bool(attr[field])


def _vlan(info: Any) -> Vlan | None:
    simple = info.get_attr("IFLA_VF_VLAN")
    if simple is None:
        return None
    proto = "802.1Q"
    vlist = info.get_attr("IFLA_VF_VLAN_LIST")
    if vlist is not None:
        for entry in vlist.get_attrs("IFLA_VF_VLAN_INFO"):
            proto = _PROTO_NAMES.get(entry["proto"], "802.1Q")
            break
    return Vlan(simple["vlan"], simple["qos"], proto)  # type: ignore[arg-type]


def _guid(info: Any, nla: str, field: str) -> str | None:
    attr = info.get_attr(nla)
    return None if attr is None else parse_guid(attr[field]).canonical


def parse_vfinfo(pf: str, info: Any) -> VfState:
    """One ``IFLA_VF_INFO`` nest, decoded by pyroute2, as a :class:`VfState`."""
    mac = info.get_attr("IFLA_VF_MAC")
    rate = info.get_attr("IFLA_VF_RATE")
    state = info.get_attr("IFLA_VF_LINK_STATE")
    return VfState(
        pf,
        int(mac["vf"]),
        mac=mac["mac"],
        vlan=_vlan(info),
        spoofchk=_flag(info, "IFLA_VF_SPOOFCHK", "spoofchk"),
        trust=_flag(info, "IFLA_VF_TRUST", "trust"),
        min_tx_rate=None if rate is None else int(rate["min_tx_rate"]),
        max_tx_rate=None if rate is None else int(rate["max_tx_rate"]),
        node_guid=_guid(info, "IFLA_VF_IB_NODE_GUID", "ib_node_guid"),
        port_guid=_guid(info, "IFLA_VF_IB_PORT_GUID", "ib_port_guid"),
        link_state=None if state is None else LinkState.from_number(state["link_state"]),
    )


def parse_link(pf: str, msg: Any) -> tuple[VfState, ...]:
    """Every VF of the PF in an ``RTM_NEWLINK`` answer, in index order. VFs the list does not
    describe (drivers without ``ndo_get_vf_config``) read as all-unreported."""
    num_vfs = int(msg.get_attr("IFLA_NUM_VF") or 0)
    described: dict[int, VfState] = {}
    vflist = msg.get_attr("IFLA_VFINFO_LIST")
    if vflist is not None:
        for info in vflist.get_attrs("IFLA_VF_INFO"):
            vf = parse_vfinfo(pf, info)
            described[vf.index] = vf
    return tuple(described.get(i, VfState(pf, i)) for i in range(num_vfs))


def _rate_spec(attr: VfAttr, value: int, current: VfState) -> dict[str, int]:
    rates = {"min_tx_rate": current.min_tx_rate or 0, "max_tx_rate": current.max_tx_rate or 0}
    rates[attr.value] = value
    return rates


def _spec(vf_index: int, attr: VfAttr, value: Any, current: VfState) -> dict[str, Any]:
    """pyroute2's VF dict for one attribute (``current`` supplies the other rate)."""
    if attr is VfAttr.VLAN:
        return {"vf": vf_index, "vlan": {"vlan": value.id, "qos": value.qos}}  # IFLA_VF_VLAN
    if attr in (VfAttr.MIN_TX_RATE, VfAttr.MAX_TX_RATE):
        return {"vf": vf_index, "rate": _rate_spec(attr, value, current)}
    if attr is VfAttr.LINK_STATE:
        value = LinkState(value).number
    elif attr in GUID_ATTRS:
        value = parse_guid(value).colon_bytes
    elif isinstance(value, bool):
        value = int(value)
    return {"vf": vf_index, _NLA_KEYS[attr]: value}


_NLA_KEYS = {
    VfAttr.MAC: "mac",
    VfAttr.SPOOFCHK: "spoofchk",
    VfAttr.TRUST: "trust",
    VfAttr.LINK_STATE: "link_state",
    VfAttr.NODE_GUID: "ib_node_guid",
    VfAttr.PORT_GUID: "ib_port_guid",
}


_SYSFS_FALLBACK: dict[VfAttr, SriovFile] = {
    VfAttr.NODE_GUID: "node",
    VfAttr.PORT_GUID: "port",
    VfAttr.LINK_STATE: "policy",
}
_POLICY = {LinkState.AUTO: "Follow", LinkState.ENABLE: "Up", LinkState.DISABLE: "Down"}


def _sysfs_text(attr: VfAttr, value: Any) -> str:
    if attr is VfAttr.LINK_STATE:
        return _POLICY[LinkState(value)]
    return parse_guid(value).colon_bytes


class Pyroute2LinkOps:
    """The real ``LinkOps``. ``root`` is the host root (``/``) holding ``sys/``."""

    def __init__(self, netlink: NetlinkSocket | None = None, root: str = "/") -> None:
        self._netlink = netlink
        self.root = root
        self.sysfs = SysfsReader(root)

    @property
    def netlink(self) -> NetlinkSocket:
        if self._netlink is None:
            self._netlink = IPRoute()
        return self._netlink

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

    def __enter__(self) -> Pyroute2LinkOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads --------------------------------------------------------------------------------

    def _get_link(self, pf: str, ext_mask: int) -> Any:
        try:
            return self.netlink.link("get", ifname=pf, ext_mask=ext_mask)[0]
        except NetlinkError as exc:
            if exc.code == errno_mod.ENODEV:
                raise PfNotFoundError(pf) from exc
            raise

    def _read(self, pf: str) -> tuple[int, tuple[VfState, ...]]:
        """The PF's ifindex and its VFs, from one request."""
        msg = self._get_link(pf, RTEXT_FILTER_VF)
        vfs = parse_link(pf, msg)
        if any(vf.node_guid is None for vf in vfs) and self._has_sriov_dir(pf):
            vfs = tuple(self._sysfs_guids(vf) for vf in vfs)
        return int(msg["index"]), vfs

    def list_vfs(self, pf: str) -> tuple[VfState, ...]:
        return self._read(pf)[1]

    def get_vf(self, pf: str, vf_index: int) -> VfState:
        return self._one(pf, vf_index, self.list_vfs(pf))

    @staticmethod
    def _one(pf: str, vf_index: int, vfs: tuple[VfState, ...]) -> VfState:
        if not 0 <= vf_index < len(vfs):
            raise VfNotFoundError(pf, vf_index, len(vfs))
        return vfs[vf_index]

    def _has_sriov_dir(self, pf: str) -> bool:
        return self.sysfs.is_dir(f"{self.sysfs.sys_dir}/class/net/{pf}/device/sriov")

    def _sysfs_guids(self, vf: VfState) -> VfState:
        found: list[tuple[VfAttr, object]] = []
        for attr in (VfAttr.NODE_GUID, VfAttr.PORT_GUID):
            path = privileged.sriov_file(self.root, vf.pf, vf.index, _SYSFS_FALLBACK[attr])
            try:
                found.append((attr, parse_guid(self.sysfs.read(path)).canonical))
            except (SysfsReadError, ValueError):
                continue
        return vf.with_values(found)

    # -- writes -------------------------------------------------------------------------------

    def set_vf(self, pf: str, vf_index: int, config: VfConfig) -> None:
        ifindex, vfs = self._read(pf)
        current = self._one(pf, vf_index, vfs)
        guids = [(a, v) for a, v in config.items() if a in GUID_ATTRS]
        for attr, value in config.items():
            if attr not in GUID_ATTRS:
                self._set_one(ifindex, current, attr, value)
            elif attr is guids[0][0]:
                for guid_attr, guid in guids:
                    self._set_one(ifindex, current, guid_attr, guid)
                self._rebind(pf, vf_index)

    def _set_one(self, ifindex: int, current: VfState, attr: VfAttr, value: Any) -> None:
        pf, vf_index = current.pf, current.index
        try:
            if isinstance(value, Vlan) and value.proto != "802.1Q":
                proto = VLAN_PROTO_NUMBERS[value.proto]
                privileged.netlink_set_vf_vlan_list(
                    ifindex, vf_index, vlan=value.id, qos=value.qos, proto=proto
                )
            else:
                spec = _spec(vf_index, attr, value, current)
                privileged.netlink_set_vf(self.netlink, ifindex, spec)
        except NetlinkError as exc:
            code = int(exc.code)
            if code == errno_mod.EOPNOTSUPP and self._sysfs_fallback(pf, vf_index, attr, value):
                return
            raise refusal(pf, vf_index, attr.value, format_value(attr, value), code) from exc

    def _sysfs_fallback(self, pf: str, vf_index: int, attr: VfAttr, value: Any) -> bool:
        """Write ``attr`` to MLNX_OFED's sriov file; False when the PF has none."""
        name = _SYSFS_FALLBACK.get(attr)
        if name is None or not self.sysfs.is_dir(
            f"{self.sysfs.sys_dir}/class/net/{pf}/device/sriov/{vf_index}"
        ):
            return False
        try:
            privileged.write_sriov_file(self.root, pf, vf_index, name, _sysfs_text(attr, value))
        except OSError as exc:
            code = exc.errno or errno_mod.EIO
            raise refusal(pf, vf_index, attr.value, format_value(attr, value), code) from exc
        return True

    def _rebind(self, pf: str, vf_index: int) -> None:
        virtfn = f"{self.sysfs.sys_dir}/class/net/{pf}/device/virtfn{vf_index}"
        address = self.sysfs.link_name(virtfn)
        try:
            driver = self.sysfs.link_name(f"{self.sysfs.device_dir(address)}/driver")
        except SysfsMissingError:
            return  # unbound: the next bind reads the new GUIDs
        if driver in _NO_DRIVER_REBIND:
            return
        try:
            privileged.rebind_driver(self.root, address, driver)
        except OSError as exc:
            raise VfRebindError(pf, vf_index, address, driver, exc.strerror or str(exc)) from exc
