"""Errors of the domain core.

Every error carries the data a user needs to fix the problem, and its message says what was
wrong and what to do. The tree (add new errors where they belong, and list them here)::

    DomainError                      base of everything the domain core raises
    ├── InvalidValueError            a value given by a user or read from a host is malformed
    │   ├── InvalidGuidError         not an InfiniBand GUID in any accepted form, or a forbidden one
    │   ├── InvalidMacError          not a 48-bit Ethernet MAC address
    │   ├── InvalidMigrationUriError a libvirt migration URI vfkeeper does not let a host announce
    │   ├── InvalidPciAddressError   not a PCI address ``dddd:bb:ss.f``
    │   └── InvalidVlanError         a VLAN id outside 1-4094
    └── VifError                     a VIF cannot be rendered from what it was given
        ├── UnsupportedVifError      the vif_type x vnic_type combination does not exist
        └── VifFieldError            a field the combination needs is missing, or one it cannot use

``InvalidValueError`` is also a ``ValueError`` so that pydantic validators and typer callbacks that
call the domain parsers turn it into their own validation errors.
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every error the domain core raises."""


class InvalidValueError(DomainError, ValueError):
    """A value is malformed. ``value`` is what was given, ``expected`` says what is accepted."""

    def __init__(self, what: str, value: object, expected: str) -> None:
        self.what = what
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {what} {value!r}: expected {expected}")


class InvalidGuidError(InvalidValueError):
    """Not an InfiniBand GUID in any accepted form, or a GUID the caller does not allow."""

    def __init__(self, value: object, expected: str) -> None:
        super().__init__("GUID", value, expected)


class InvalidMacError(InvalidValueError):
    """Not a 48-bit Ethernet MAC address."""

    def __init__(self, value: object, expected: str) -> None:
        super().__init__("MAC address", value, expected)


class InvalidMigrationUriError(InvalidValueError):
    """A libvirt migration URI that is not one a host may announce for itself; ``problem``
    says what is wrong with it, ``expected`` what to send instead."""

    def __init__(self, value: str, problem: str, expected: str) -> None:
        super().__init__("migration URI", value, expected)
        self.problem = problem
        self.args = (f"migration URI {value!r} is refused: {problem}; send {expected}",)


class InvalidPciAddressError(InvalidValueError):
    """Not a PCI address."""

    def __init__(self, value: object, expected: str) -> None:
        super().__init__("PCI address", value, expected)


class InvalidVlanError(InvalidValueError):
    """A VLAN id outside the range a VF can be tagged with."""

    def __init__(self, value: object, expected: str) -> None:
        super().__init__("VLAN id", value, expected)


class VifError(DomainError):
    """A VIF cannot be rendered from what it was given."""


class UnsupportedVifError(VifError):
    """The ``vif_type`` x ``vnic_type`` combination is not one vfkeeper renders."""

    def __init__(self, vif_type: str, vnic_type: str, supported: Sequence[str]) -> None:
        self.vif_type = str(vif_type)
        self.vnic_type = str(vnic_type)
        self.supported = tuple(str(s) for s in supported)
        super().__init__(
            f"vif_type {self.vif_type!r} cannot be used with vnic_type {self.vnic_type!r}; "
            f"with {self.vif_type!r} use vnic_type {' or '.join(map(repr, self.supported))}"
        )


class VifFieldError(VifError):
    """A field the VIF form needs is missing, or a field it cannot use was given."""

    def __init__(self, field: str, form: str, problem: str) -> None:
        self.field = field
        self.form = form
        self.problem = problem
        super().__init__(f"{form}: {field} {problem}")
