"""Host agent: the only code that touches a host (sysfs, netlink, libvirt)."""
