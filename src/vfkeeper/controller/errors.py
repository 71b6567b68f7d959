"""Errors of the controller, and the HTTP status each one becomes.

The tree (add new errors where they belong, and list them here)::

    ControllerError                 base; 500 ``internal_error``
    ├── MalformedRequestError       400 ``malformed_request``: the body is not JSON at all
    ├── AddressOutsideSubnetError   400 ``address_outside_subnet``: an asked-for IP address is
    │                               in none of the network's subnets
    ├── UnauthenticatedError        401 ``unauthenticated``: no bearer token, or an unknown one
    ├── ForbiddenError              403 ``forbidden``: the token's role may not do this
    ├── NotFoundError               404 ``not_found``: no such resource (or route)
    ├── MethodNotAllowedError       405 ``method_not_allowed``
    ├── BodyTooLargeError           413 ``body_too_large``: the body is over ``max_body_bytes``
    ├── ConflictError               409 ``conflict``: the request clashes with the cluster's state
    │   ├── AlreadyExistsError      409 ``already_exists``: the name is taken
    │   ├── InUseError              409 ``in_use``: something still uses the resource
    │   ├── AddressTakenError       409 ``address_taken``: the requested MAC or GUID is in use
    │   ├── AddressPoolExhaustedError 409 ``address_pool_exhausted``: no free MAC/GUID left
    │   ├── SubnetExhaustedError    409 ``subnet_exhausted``: no free IP address in a subnet
    │   ├── ClaimRaceError          409 ``claim_contended``: kept losing claim races; retry
    │   ├── GuidLeavingError        409 ``guid_leaving_partition``: the GUID is still leaving
    │   │                           a partition (the SM has not confirmed its removal)
    │   ├── OperatorPartitionConflictError 409 ``operator_partition``: the PKey is an
    │   │                           operator-owned partition (create the network shared)
    │   └── SyncElsewhereError      409 ``partition_sync_elsewhere``: another controller
    │                               replica drives the subnet manager now
    ├── InvalidInputError           422 ``invalid_input``: well-formed but unacceptable values
    ├── NotReadyError               503 ``not_ready``: the database does not answer, or its
    │                               schema is not at this vfkeeper's head (``/readyz``)
    └── SubnetManagerUnavailableError 503 ``sm_unavailable``: the subnet manager cannot be
                                    asked now

Every error carries ``details`` (a JSON-able dict with the data a user needs) and a message that
says what was wrong and what to do. :mod:`vfkeeper.controller.handlers` is the only place that
turns them (and the store's, scheduler's and domain's errors) into HTTP responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class ControllerError(Exception):
    """Base of every error the controller raises."""

    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details: dict[str, Any] = details or {}
        super().__init__(message)


class MalformedRequestError(ControllerError):
    http_status = 400
    code = "malformed_request"


class AddressOutsideSubnetError(ControllerError):
    http_status = 400
    code = "address_outside_subnet"

    def __init__(self, address: str, network: str, cidrs: Sequence[str]) -> None:
        where = f"its subnets are {', '.join(cidrs)}" if cidrs else "it has no subnets"
        super().__init__(
            f"IP address {address} is outside every subnet of network {network!r} ({where}); "
            "ask for an address inside one, or leave --ip out to get a free one",
            {"address": address, "network": network, "subnets": list(cidrs)},
        )


class UnauthenticatedError(ControllerError):
    http_status = 401
    code = "unauthenticated"


class ForbiddenError(ControllerError):
    http_status = 403
    code = "forbidden"

    def __init__(self, role: str, action: str) -> None:
        super().__init__(
            f"a token with role {role!r} may not {action}; use a token with a role that may",
            {"role": role, "action": action},
        )


class NotFoundError(ControllerError):
    http_status = 404
    code = "not_found"

    def __init__(self, kind: str, key: str, hint: str | None = None) -> None:
        self.kind = kind
        self.key = key
        message = f"no {kind} {key!r}"
        super().__init__(f"{message}; {hint}" if hint else message, {"kind": kind, "key": key})


class MethodNotAllowedError(ControllerError):
    http_status = 405
    code = "method_not_allowed"


class BodyTooLargeError(ControllerError):
    http_status = 413
    code = "body_too_large"

    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f"{declared} bytes" if declared is not None else "more"
        super().__init__(
            f"the request body is {size}; this controller accepts at most {limit} bytes "
            "(vfkeeper serve --max-body-bytes); send less, or raise the limit",
            {"limit_bytes": limit} | ({} if declared is None else {"declared_bytes": declared}),
        )


class ConflictError(ControllerError):
    http_status = 409
    code = "conflict"


class AlreadyExistsError(ConflictError):
    code = "already_exists"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"a {kind} named {name!r} already exists; pick another name or delete that one first",
            {"kind": kind, "name": name},
        )


class InUseError(ConflictError):
    code = "in_use"

    def __init__(self, kind: str, key: str, users: Sequence[str], what_to_do: str) -> None:
        super().__init__(
            f"{kind} {key!r} is in use by {', '.join(users)}; {what_to_do}",
            {"kind": kind, "key": key, "used_by": list(users)},
        )


class AddressTakenError(ConflictError):
    code = "address_taken"

    def __init__(self, kind: str, address: str, holder: str) -> None:
        super().__init__(
            f"{kind} {address} is already used by port {holder}; ask for another {kind} or "
            "leave it out to get a free one",
            {"kind": kind, "address": address, "port": holder},
        )


class AddressPoolExhaustedError(ConflictError):
    code = "address_pool_exhausted"

    def __init__(self, kind: str, pool: str, tries: int) -> None:
        super().__init__(
            f"found no free {kind} in {pool} after {tries} tries; configure a larger "
            f"{kind} range or delete unused ports",
            {"kind": kind, "pool": pool},
        )


class SubnetExhaustedError(ConflictError):
    code = "subnet_exhausted"

    def __init__(self, subnet: str, cidr: str, capacity: int) -> None:
        super().__init__(
            f"subnet {subnet} ({cidr}) has no free address: all {capacity} addresses of its "
            "allocation pools are held by ports; delete unused ports or add a subnet",
            {"subnet": subnet, "cidr": cidr, "capacity": capacity},
        )


class ClaimRaceError(ConflictError):
    code = "claim_contended"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"other boots took the chosen devices {attempts} times in a row; retry the boot",
            {"attempts": attempts},
        )


class InvalidInputError(ControllerError):
    http_status = 422
    code = "invalid_input"

    def __init__(self, field: str, problem: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {problem}", {"field": field, **(details or {})})


class NotReadyError(ControllerError):
    http_status = 503
    code = "not_ready"


class GuidLeavingError(ConflictError):
    code = "guid_leaving_partition"

    def __init__(self, guid: str, pkey: int) -> None:
        super().__init__(
            f"GUID {guid} is still leaving partition {pkey:#06x}: the subnet manager has not "
            "confirmed its removal, and a GUID is never given to another port before that; "
            f"ask again once it is gone (vfkeeper partition show {pkey:#06x}), or leave the "
            "GUID out to get a free one",
            {"guid": guid, "pkey": f"{pkey:#06x}"},
        )


class OperatorPartitionConflictError(ConflictError):
    code = "operator_partition"

    def __init__(self, message: str, pkey: int) -> None:
        super().__init__(message, {"pkey": f"{pkey:#06x}"})


class SyncElsewhereError(ConflictError):
    code = "partition_sync_elsewhere"

    def __init__(self) -> None:
        super().__init__("another controller replica drives the subnet manager now (it holds "
                         "the partition lock); ask again, or ask that replica")


class SubnetManagerUnavailableError(ControllerError):
    http_status = 503
    code = "sm_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
