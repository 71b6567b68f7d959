"""``DomainOps`` on the libvirt Python binding (``libvirt-python``).

Every libvirt error is turned into a typed :mod:`~vfkeeper.agent.libvirt.errors` error by its
code and message (libvirt 9.0's wording, checked against libvirtd in the VM tier for hot-plug,
migration and managed save: ``tests/vm/test_libvirt_hotplug.py``). The binding is imported when
the object is built, so the rest of the agent imports without it.
"""

from __future__ import annotations

import re
from typing import Any

from vfkeeper.agent.libvirt.devices import domain_devices
from vfkeeper.agent.libvirt.errors import (
    DeviceInUseError,
    DeviceNotFoundError,
    DomainNotFoundError,
    DomainNotRunningError,
    DomainOpsError,
    DuplicateAliasError,
    HostdevBlocksError,
    LibvirtCallError,
    LibvirtUnavailableError,
)
from vfkeeper.agent.libvirt.protocol import Domain, DomainDevice, DomainDevices, DomainState

_IN_USE = re.compile(r"PCI device (\S+) is in use by driver \S+, domain (\S+)")
_PCI_ADDRESS = re.compile(r"\b([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b")
_HOSTDEV_REFUSED = ("cannot migrate a domain with <interface type='hostdev'>",
                    "cannot migrate a domain with <hostdev mode='subsystem' type='pci'>")
_NOT_FOUND = ("no device found", "not found", "no device matching", "device not present")


def _state(code: int, libvirt: Any) -> DomainState:
    states = {
        libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
        libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
        libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    }
    return states.get(code, DomainState.OTHER)


class LibvirtDomainOps:
    """Talks to libvirtd at ``uri`` (``qemu:///system`` on a host; ``test:///default`` in tests,
    where attach and detach are not implemented)."""

    def __init__(self, uri: str = "qemu:///system") -> None:
        try:
            import libvirt  # noqa: PLC0415 - optional dependency, needed only by the agent
        except ImportError as exc:
            raise LibvirtUnavailableError(uri, "the libvirt Python binding is missing") from exc
        self._lv: Any = libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come as exceptions
        try:
            self._conn: Any = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise LibvirtUnavailableError(uri, str(exc)) from exc
        self.uri = uri

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LibvirtDomainOps:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------

    def _domain(self, dom: Any) -> Domain:
        code = dom.state()[0]
        saved = code == self._lv.VIR_DOMAIN_SHUTOFF and bool(dom.hasManagedSaveImage(0))
        return Domain(dom.name(), dom.UUIDString(), _state(code, self._lv), saved)

    def _lookup(self, name: str) -> Any:
        try:
            return self._conn.lookupByName(name)
        except self._lv.libvirtError as exc:
            raise self._error(exc, "look up", name) from exc

    def list_domains(self) -> tuple[Domain, ...]:
        return tuple(sorted((self._domain(d) for d in self._conn.listAllDomains()),
                            key=lambda d: d.name))  # fmt: skip

    def devices(self, domain: str) -> DomainDevices:
        dom = self._lookup(domain)
        try:
            info = self._domain(dom)
            live = dom.XMLDesc(0) if info.state.active else ""
            config = dom.XMLDesc(self._lv.VIR_DOMAIN_XML_INACTIVE)
        except self._lv.libvirtError as exc:
            raise self._error(exc, "read the devices", domain) from exc
        return domain_devices(info, live, config)

    # -- changes --------------------------------------------------------------------------------

    def _flags(self, live: bool, config: bool) -> int:
        flags = 0
        if live:
            flags |= self._lv.VIR_DOMAIN_AFFECT_LIVE
        if config:
            flags |= self._lv.VIR_DOMAIN_AFFECT_CONFIG
        return flags

    def attach(self, domain: str, xml: str, *, live: bool, config: bool) -> None:
        dom = self._lookup(domain)
        try:
            dom.attachDeviceFlags(xml, self._flags(live, config))
        except self._lv.libvirtError as exc:
            raise self._error(exc, "attach a device", domain, xml=xml) from exc

    def detach(self, domain: str, device: DomainDevice, *, live: bool, config: bool) -> None:
        dom = self._lookup(domain)
        flags = self._flags(live, config)
        try:
            if device.alias is not None:
                dom.detachDeviceAlias(device.alias, flags)
            else:
                dom.detachDeviceFlags(device.xml, flags)
        except self._lv.libvirtError as exc:
            raise self._error(exc, "detach a device", domain, what=device.describe) from exc

    def domain_xml(self, domain: str, *, inactive: bool = False) -> str:
        dom = self._lookup(domain)
        flags = self._lv.VIR_DOMAIN_XML_MIGRATABLE
        if inactive:
            flags |= self._lv.VIR_DOMAIN_XML_INACTIVE
        try:
            return str(dom.XMLDesc(flags))
        except self._lv.libvirtError as exc:
            raise self._error(exc, "read the XML", domain) from exc

    def migrate(self, domain: str, dest_uri: str, *, dest_xml: str | None = None,
                persist_xml: str | None = None) -> None:
        dom = self._lookup(domain)
        lv = self._lv
        flags = (lv.VIR_MIGRATE_LIVE | lv.VIR_MIGRATE_PEER2PEER | lv.VIR_MIGRATE_PERSIST_DEST
                 | lv.VIR_MIGRATE_UNDEFINE_SOURCE)
        params: dict[str, Any] = {}
        if dest_xml is not None:
            params[lv.VIR_MIGRATE_PARAM_DEST_XML] = dest_xml
        if persist_xml is not None:
            params[lv.VIR_MIGRATE_PARAM_PERSIST_XML] = persist_xml
        try:
            dom.migrateToURI3(dest_uri, params, flags)
        except lv.libvirtError as exc:
            raise self._move_error(exc, "migrate", domain) from exc

    def managed_save(self, domain: str) -> None:
        dom = self._lookup(domain)
        try:
            dom.managedSave(0)
        except self._lv.libvirtError as exc:
            raise self._move_error(exc, "save", domain) from exc

    def define(self, xml: str) -> Domain:
        try:
            return self._domain(self._conn.defineXML(xml))
        except self._lv.libvirtError as exc:
            raise self._error(exc, "define", "(new)") from exc

    def start(self, domain: str) -> None:
        dom = self._lookup(domain)
        try:
            dom.create()
        except self._lv.libvirtError as exc:
            raise self._error(exc, "start", domain) from exc

    # -- errors ---------------------------------------------------------------------------------

    def _move_error(self, exc: Any, operation: str, domain: str) -> DomainOpsError:
        """A migration's or a save's error: libvirt's refusal of a domain holding a PCI
        function is typed (the agent unplugs those first). libvirtd 9.0 passes on QEMU's
        migration blockers (``cannot migrate domain: <address>: VFIO migration is not supported
        in kernel``, code 55); with a QEMU that reports none it checks the hostdevs itself
        (``cannot migrate a domain with <interface type='hostdev'>``, code 84)."""
        lv = self._lv
        code = int(exc.get_error_code() or 0)
        message = str(exc.get_error_message() or exc)
        lowered = message.lower()
        blockers = code == lv.VIR_ERR_OPERATION_INVALID and "cannot migrate domain:" in lowered \
            and "vfio" in lowered
        own_check = code == lv.VIR_ERR_OPERATION_UNSUPPORTED and any(
            s in lowered for s in _HOSTDEV_REFUSED)
        if blockers or own_check:
            devices = tuple(dict.fromkeys(_PCI_ADDRESS.findall(message)))
            return HostdevBlocksError(operation, domain, devices, message, code=code)
        return self._error(exc, operation, domain)

    def _error(self, exc: Any, operation: str, domain: str, *, xml: str = "",
               what: str = "") -> DomainOpsError:  # fmt: skip
        lv = self._lv
        code = int(exc.get_error_code() or 0)
        message = str(exc.get_error_message() or exc)
        lowered = message.lower()
        if code == lv.VIR_ERR_NO_DOMAIN:
            return DomainNotFoundError(domain)
        in_use = _IN_USE.search(message)
        if in_use:
            return DeviceInUseError(in_use.group(1), in_use.group(2), message)
        if "not running" in lowered:
            return DomainNotRunningError(domain, operation)
        if "non unique alias" in lowered:
            alias = re.search(r"non unique alias detected: (\S+)", message)
            return DuplicateAliasError(domain, alias.group(1) if alias else "?")
        if code == lv.VIR_ERR_DEVICE_MISSING or any(s in lowered for s in _NOT_FOUND):
            return DeviceNotFoundError(domain, what or xml, message)
        return LibvirtCallError(operation, domain, code, message)
