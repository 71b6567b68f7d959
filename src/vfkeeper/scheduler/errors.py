"""Errors of the scheduler.

The scheduler *returns* :class:`~vfkeeper.scheduler.result.NoValidHost` when nothing fits (that is
an answer, not a fault); it *raises* only when it is given values it cannot work with. The tree::

    SchedulerError                 base of everything the scheduler raises
    ├── InvalidRequestError        an InstanceRequest / PciRequest is malformed (HTTP 400)
    ├── InvalidHostViewError       a HostView / PoolView the controller built is inconsistent (500)
    └── NoValidHostError           raised by callers that turn a NoValidHost into an error (409)

``InvalidRequestError`` and ``InvalidHostViewError`` are also ``ValueError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from vfkeeper.scheduler.result import NoValidHost


class SchedulerError(Exception):
    """Base of every error the scheduler raises."""

    http_status: ClassVar[int] = 500


class InvalidRequestError(SchedulerError, ValueError):
    """A scheduling request is malformed; ``field`` names the part, ``value`` what was given."""

    http_status: ClassVar[int] = 400

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {field} {value!r}: {expected}")


class InvalidHostViewError(SchedulerError, ValueError):
    """A host view handed to the scheduler contradicts itself (a controller bug, not a user's)."""

    def __init__(self, host: str, problem: str, fix: str) -> None:
        self.host = host
        self.problem = problem
        self.fix = fix
        super().__init__(f"host view {host!r}: {problem}; {fix}")


class NoValidHostError(SchedulerError):
    """No host can take the instance. ``result`` holds the per-host explanation."""

    http_status: ClassVar[int] = 409

    def __init__(self, result: NoValidHost) -> None:
        self.result = result
        super().__init__(result.explanation())
