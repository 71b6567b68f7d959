"""The ``none`` backend: partition membership is managed outside vfkeeper.

Choose it when the fabric's partitions are someone else's job (an SM vfkeeper cannot reach,
partitions set by hand, a fabric with no tenant isolation). vfkeeper then still works out and
records what each port needs — its GUID, PKey and membership — so that the operator can see
it and make the SM match, but it changes nothing on any SM and cannot tell whether the SM has
done it:

* :meth:`NoSubnetManager.read` returns an empty view with ``managed_outside=True``: empty
  because vfkeeper is not told, not because the SM has nothing (a reconciler must not read it
  as "every GUID is missing", nor remove anything because of it);
* :meth:`NoSubnetManager.apply` sends nothing, records nothing and answers
  ``verified=False``: nobody checked that the fabric has the change.

So with ``none``, membership gives no guarantee of isolation. What the controller does with a
port it cannot verify (show the pending membership without waiting for it) is the
controller's decision, not this backend's.
"""

from __future__ import annotations

from vfkeeper.sm.protocol import ApplyResult, ChangeSet, SmView

NAME = "none"


class NoSubnetManager:
    """A :class:`~vfkeeper.sm.protocol.SubnetManager` that manages nothing (see the module)."""

    @property
    def name(self) -> str:
        return NAME

    def read(self) -> SmView:
        return SmView(managed_outside=True)

    def apply(self, changes: ChangeSet) -> ApplyResult:
        return ApplyResult(verified=False)
