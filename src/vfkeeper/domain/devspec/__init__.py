"""Device specs: which PCI devices vfkeeper may hand out, with which tags.

Nova's ``[pci] device_spec`` syntax, unchanged, plus extension keys after the Kubernetes SR-IOV
device plugin's selectors. Pure: the host's state comes in as a :class:`HostView`.

    specs = DeviceSpecSet.parse(['{"devname": "ens1f0", "physical_network": "physnet1"}'])
    matcher = specs.bind(HostView.from_inventory(inventory))
    match = matcher.match(device_view)          # Match(spec_index, tags) or None
    why = matcher.explain(device_view)          # spec by spec, key by key
"""

from vfkeeper.domain.devspec.device import (
    DeviceView,
    HostView,
    canonical_address,
    view_of,
    view_of_record,
)
from vfkeeper.domain.devspec.errors import (
    DeviceSpecError,
    InvalidDeviceRecord,
    InvalidDeviceSpec,
    SpecHostError,
)
from vfkeeper.domain.devspec.explain import Explanation, KeyVerdict, Match, SpecVerdict
from vfkeeper.domain.devspec.keys import REGISTRY, SpecKey
from vfkeeper.domain.devspec.matcher import DeviceSpecSet, HostMatcher, describe_device
from vfkeeper.domain.devspec.spec import CompiledSpec, SpecEntry

__all__ = [
    "REGISTRY",
    "CompiledSpec",
    "DeviceSpecError",
    "DeviceSpecSet",
    "DeviceView",
    "Explanation",
    "HostMatcher",
    "HostView",
    "InvalidDeviceRecord",
    "InvalidDeviceSpec",
    "KeyVerdict",
    "Match",
    "SpecEntry",
    "SpecHostError",
    "SpecKey",
    "SpecVerdict",
    "canonical_address",
    "describe_device",
    "view_of",
    "view_of_record",
]
