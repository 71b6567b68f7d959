"""vfkeeper: SR-IOV and InfiniBand VF passthrough as a managed service for KVM/libvirt clusters."""

__version__ = "0.1.0"
