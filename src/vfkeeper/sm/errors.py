"""Errors of the subnet-manager backends.

The tree (add new errors where they belong, and list them here)::

    SmError                        base of everything a backend raises
    ├── InvalidPartitionError      a PKey, GUID or membership vfkeeper may not hand to an SM
    ├── OperatorPartitionError     the change would touch a partition vfkeeper does not own
    ├── SmConfigError              the backend's settings cannot work (no file, no pid, bad URL)
    ├── SmUnavailableError         the SM cannot be reached or asked now; try again later
    ├── SmRefusedError             the SM answered no; ``answer`` is its own words, verbatim
    └── PartitionsFileError        a partitions file OpenSM would not parse (never installed)

Each message says what was wrong and what to do.
"""

from __future__ import annotations


class SmError(Exception):
    """Base of every error a subnet-manager backend raises."""


class InvalidPartitionError(SmError, ValueError):
    def __init__(self, problem: str, what_to_do: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}; {what_to_do}")


class OperatorPartitionError(SmError):
    def __init__(self, pkey: int, where: str) -> None:
        self.pkey = pkey
        super().__init__(
            f"partition {pkey:#06x} is defined outside vfkeeper ({where}); vfkeeper never "
            "changes it. Use another PKey for the network, or mark it shared when you create "
            "the network")


class SmConfigError(SmError):
    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


class SmUnavailableError(SmError):
    def __init__(self, backend: str, problem: str) -> None:
        self.backend = backend
        super().__init__(f"the subnet manager ({backend}) is unavailable: {problem}; vfkeeper "
                         "retries with backoff, and ports waiting for membership stay BUILD")


class SmRefusedError(SmError):
    """``answer``: the SM's own words, verbatim (cut to a sane length by the backend);
    ``status``: the HTTP status when the SM speaks HTTP (UFM); ``what_to_do``: vfkeeper's
    hint, said before the answer so that a long answer does not bury it."""

    def __init__(self, backend: str, action: str, answer: str, *, status: int | None = None,
                 what_to_do: str | None = None) -> None:
        self.backend = backend
        self.answer = answer
        self.status = status
        head = f"the subnet manager ({backend}) refused to {action}"
        if status is None and what_to_do is None:
            super().__init__(f"{head}: {answer}")
            return
        if status is not None:
            head += f" with HTTP {status}"
        if what_to_do:
            head += f"; {what_to_do}"
        super().__init__(f"{head}. It answered: {answer}")


class PartitionsFileError(SmError):
    """``consequence`` says what OpenSM would do with the file; by default that it would not
    parse it and would fail open. Pass it for what OpenSM accepts but reads differently."""

    FAIL_OPEN = ("OpenSM would not parse this file and would fall back to one default "
                 "partition with every port a full member, so it was not installed; the file "
                 "OpenSM has stays as it was")

    def __init__(self, path: str, line: int | None, problem: str, *,
                 consequence: str | None = None) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}. {consequence or self.FAIL_OPEN}")
