"""Simulated hardware for tests and demos: fake sysfs trees shaped on real NICs.

Describe a host with :class:`HostSpec` / :class:`PfSpec` (NIC models from :data:`NIC_MODELS`),
then :func:`build_tree` writes it as a real directory tree with real symlinks that
``SysfsReader(root)`` reads like a host's ``/sys``. :func:`simulate_host` does both for the
common case of N identical PFs.
"""

from vfkeeper.sim.builder import build_tree, simulate_host
from vfkeeper.sim.errors import SimError, SimSpecError, UnknownModelError
from vfkeeper.sim.models import NIC_MODELS, NicModel
from vfkeeper.sim.spec import (
    DEFAULT_EXTRA_DEVICES,
    DEFAULT_PKEYS,
    HostSpec,
    PciFunctionSpec,
    PfSpec,
)

__all__ = [
    "DEFAULT_EXTRA_DEVICES",
    "DEFAULT_PKEYS",
    "NIC_MODELS",
    "HostSpec",
    "NicModel",
    "PciFunctionSpec",
    "PfSpec",
    "SimError",
    "SimSpecError",
    "UnknownModelError",
    "build_tree",
    "simulate_host",
]
