"""The ``LinkOps`` protocol and the values it speaks: what a VF is set to, and what to set.

A VF's settings live on its **PF**: the kernel reads them from the PF's ``IFLA_VFINFO_LIST``
(``ip -d link show PF``) and changes them with ``IFLA_VFINFO_LIST`` in an ``RTM_NEWLINK`` for the
PF (``ip link set PF vf N …``). So every call names the PF's netdev and the VF's index.

Values are frozen and validated when built: a bad MAC, GUID, VLAN or rate never reaches a driver
(the domain parsers raise :class:`~vfkeeper.domain.errors.InvalidValueError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Literal, Protocol

from vfkeeper.domain.errors import InvalidValueError, InvalidVlanError
from vfkeeper.domain.guid import parse_guid, parse_mac

VlanProto = Literal["802.1Q", "802.1ad"]
VLAN_PROTO_NUMBERS: dict[str, int] = {"802.1Q": 0x8100, "802.1ad": 0x88A8}
ZERO_MAC = "00:00:00:00:00:00"


class VfAttr(StrEnum):
    """The VF attributes vfkeeper programs, in the order it applies them."""

    MAC = "mac"
    VLAN = "vlan"
    SPOOFCHK = "spoofchk"
    TRUST = "trust"
    MIN_TX_RATE = "min_tx_rate"
    MAX_TX_RATE = "max_tx_rate"
    NODE_GUID = "node_guid"
    PORT_GUID = "port_guid"
    LINK_STATE = "link_state"


GUID_ATTRS = frozenset({VfAttr.NODE_GUID, VfAttr.PORT_GUID})
RATE_ATTRS = frozenset({VfAttr.MIN_TX_RATE, VfAttr.MAX_TX_RATE})


class LinkState(StrEnum):
    """``IFLA_VF_LINK_STATE``: follow the PF's link, force it up, force it down."""

    AUTO = "auto"
    ENABLE = "enable"
    DISABLE = "disable"

    @property
    def number(self) -> int:
        return _LINK_STATE_NUMBERS[self]

    @classmethod
    def from_number(cls, value: int) -> LinkState | None:
        for state, number in _LINK_STATE_NUMBERS.items():
            if number == value:
                return state
        return None


_LINK_STATE_NUMBERS = {LinkState.AUTO: 0, LinkState.ENABLE: 1, LinkState.DISABLE: 2}


@dataclass(frozen=True, slots=True)
class Vlan:
    """A VF's port VLAN: ``id`` 0 means untagged (and clears the VLAN when set)."""

    id: int = 0
    qos: int = 0
    proto: VlanProto = "802.1Q"

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not 0 <= self.id <= 4095:
            raise InvalidVlanError(self.id, "0 (no VLAN) to 4095")
        if isinstance(self.qos, bool) or not isinstance(self.qos, int) or not 0 <= self.qos <= 7:
            raise InvalidValueError("VLAN priority (qos)", self.qos, "0 to 7")
        if self.proto not in VLAN_PROTO_NUMBERS:
            raise InvalidValueError("VLAN protocol", self.proto, "802.1Q or 802.1ad")

    def __str__(self) -> str:
        return f"{self.id} qos {self.qos} proto {self.proto}"


def _check_rate(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise InvalidValueError(name, value, "a whole number of Mbit/s, 0 for no limit")


def _norm_guid(value: str | None) -> str | None:
    return None if value is None else parse_guid(value).canonical


@dataclass(frozen=True, slots=True)
class VfConfig:
    """What to set on a VF. ``None`` leaves an attribute as it is.

    GUIDs are stored in the canonical ``0x…`` form; all-ones (``GUID_CLEAR``) is accepted here
    because restoring a VF writes it, so user-facing parsers must reject it themselves.
    """

    mac: str | None = None
    vlan: Vlan | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None
    node_guid: str | None = None
    port_guid: str | None = None
    link_state: LinkState | None = None

    def __post_init__(self) -> None:
        if self.mac is not None:
            object.__setattr__(self, "mac", parse_mac(self.mac))
        object.__setattr__(self, "node_guid", _norm_guid(self.node_guid))
        object.__setattr__(self, "port_guid", _norm_guid(self.port_guid))
        _check_rate("min_tx_rate", self.min_tx_rate)
        _check_rate("max_tx_rate", self.max_tx_rate)
        if self.link_state is not None:
            object.__setattr__(self, "link_state", LinkState(self.link_state))

    @classmethod
    def of(cls, pairs: Iterable[tuple[VfAttr, object]]) -> VfConfig:
        """A config from ``(attribute, value)`` pairs (validated like any other)."""
        kwargs: dict[str, Any] = {attr.value: value for attr, value in pairs}
        return cls(**kwargs)

    def items(self) -> Iterator[tuple[VfAttr, object]]:
        """The attributes that are set, in application order."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                yield VfAttr(f.name), value

    def value(self, attr: VfAttr) -> object:
        result: object = getattr(self, attr.value)
        return result

    def attrs(self) -> tuple[VfAttr, ...]:
        return tuple(attr for attr, _ in self.items())

    def __bool__(self) -> bool:
        return any(True for _ in self.items())


@dataclass(frozen=True, slots=True)
class VfState:
    """A VF's settings as its PF reports them. ``None``: the driver does not report it."""

    pf: str
    index: int
    mac: str | None = None
    vlan: Vlan | None = None
    spoofchk: bool | None = None
    trust: bool | None = None
    min_tx_rate: int | None = None
    max_tx_rate: int | None = None
    node_guid: str | None = None
    port_guid: str | None = None
    link_state: LinkState | None = None

    def with_values(self, pairs: Iterable[tuple[VfAttr, object]]) -> VfState:
        """A copy with some attributes replaced."""
        kwargs: dict[str, Any] = {attr.value: value for attr, value in pairs}
        return replace(self, **kwargs)

    def value(self, attr: VfAttr) -> object:
        result: object = getattr(self, attr.value)
        return result


def format_value(attr: VfAttr, value: object) -> str:
    """How an attribute's value reads in messages and tables (``on``/``off`` for flags)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "-" if value is None else str(value)


class LinkOps(Protocol):
    """Read and program the VFs of a PF. One real implementation (pyroute2), one fake."""

    def list_vfs(self, pf: str) -> tuple[VfState, ...]:
        """Every VF of ``pf`` in index order (empty if it has none).

        Raises :class:`PfNotFoundError`."""
        ...

    def get_vf(self, pf: str, vf_index: int) -> VfState:
        """One VF's settings. Raises :class:`PfNotFoundError`, :class:`VfNotFoundError`."""
        ...

    def set_vf(self, pf: str, vf_index: int, config: VfConfig) -> None:
        """Set every attribute ``config`` gives, one kernel request each, in
        :class:`VfAttr` order; both GUIDs go together and are followed by a VF driver rebind
        (skipped for ``vfio-pci``). Stops at the first refusal and raises it as a
        :class:`VfRefusedError` naming that attribute; attributes before it stay set.
        Raises :class:`PfNotFoundError`, :class:`VfNotFoundError`, :class:`VfPermissionError`."""
        ...
