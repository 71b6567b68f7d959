"""Subnet-manager backends: put InfiniBand port GUIDs into partitions (PKeys) at the fabric's
subnet manager, and read back what it has.

Controller side only: the SM is a fabric-wide service, nothing on a host talks to it. One small
interface (:class:`~vfkeeper.sm.protocol.SubnetManager`), one implementation per SM
(``opensm``: a partitions file vfkeeper owns, validated before OpenSM is told to reload;
``ufm``: UFM's REST API; ``none``: membership is managed outside vfkeeper), one contract suite
run against each (``tests/sm/``), and an in-memory fake (``fake``) that passes the same suite,
for the controller's tests.
"""
