"""What every route needs, built once by the app factory and passed down (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.auth import Auth
from vfkeeper.controller.cluster import SchedulingCache
from vfkeeper.controller.hosts import MatcherFactory
from vfkeeper.controller.partition_reconciler import PartitionReconciler
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.store.database import Database


@dataclass(frozen=True)
class Context:
    settings: ControllerSettings
    db: Database
    auth: Auth
    addresses: AddressPools
    matcher_for: MatcherFactory
    clock: Callable[[], datetime]
    scheduling: SchedulingCache
    """This process's cached cluster view."""
    partitions: PartitionReconciler
    """Drives the subnet manager (``ctx.partitions.backend``) from the membership rows."""
