"""Errors of the simulator.

The tree::

    SimError                 base of everything :mod:`vfkeeper.sim` raises
    ├── UnknownModelError    a NIC model name the simulator does not have
    └── SimSpecError         a host description a real kernel could not show (more VFs than
                             the PF offers, a vfio VF index beyond the VFs, clashing addresses)
"""

from __future__ import annotations

from collections.abc import Iterable


class SimError(Exception):
    """Base of every error the simulator raises."""


class UnknownModelError(SimError, ValueError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(
            f"unknown NIC model {name!r}; use one of: {', '.join(self.known)} "
            "('vfkeeper simulate models' lists them)"
        )


class SimSpecError(SimError, ValueError):
    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")
