"""Parse a domain's XML (``virDomainGetXMLDesc``) into frozen :class:`DomainDevice` values.

Pure: no libvirt call. Only ``<interface>`` and ``<hostdev>`` children of ``<devices>`` are
read; they are the only elements through which a VF reaches a guest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vfkeeper.agent.libvirt.protocol import Domain, DomainDevice, DomainDevices


def pci_address_of(address: ET.Element | None) -> str | None:
    """``<address domain='0x0000' bus='0x03' slot='0x10' function='0x1'/>`` → ``0000:03:10.1``."""
    if address is None:
        return None
    try:
        dom, bus, slot, fn = (int(address.get(k, "0"), 0) for k in
                              ("domain", "bus", "slot", "function"))  # fmt: skip
    except ValueError:
        return None
    return f"{dom:04x}:{bus:02x}:{slot:02x}.{fn}"


def _vlan(el: ET.Element) -> int | None:
    tag = el.find("vlan/tag")
    if tag is None or tag.get("id") is None:
        return None
    try:
        return int(tag.get("id", ""))
    except ValueError:
        return None


def _alias(el: ET.Element) -> str | None:
    alias = el.find("alias")
    return None if alias is None else alias.get("name")


def _virtualport(el: ET.Element) -> tuple[str | None, str | None]:
    port = el.find("virtualport")
    if port is None:
        return None, None
    params = port.find("parameters")
    return port.get("type"), None if params is None else params.get("profileid")


def _interface(el: ET.Element) -> DomainDevice:
    kind = el.get("type", "")
    source = el.find("source")
    pci = pci_address_of(source.find("address")) if source is not None else None
    mac = el.find("mac")
    virtualport, profileid = _virtualport(el)
    return DomainDevice(
        kind="interface",
        type=kind,
        xml=ET.tostring(el, encoding="unicode").strip(),
        pci_address=pci if kind == "hostdev" else None,
        source_dev=source.get("dev") if source is not None and kind == "direct" else None,
        mac=mac.get("address", "").lower() or None if mac is not None else None,
        vlan=_vlan(el),
        alias=_alias(el),
        virtualport=virtualport,
        profileid=profileid,
    )


def _hostdev(el: ET.Element) -> DomainDevice:
    kind = el.get("type", "")
    source = el.find("source")
    pci = pci_address_of(source.find("address")) if source is not None and kind == "pci" else None
    return DomainDevice(
        kind="hostdev",
        type=kind,
        xml=ET.tostring(el, encoding="unicode").strip(),
        pci_address=pci,
        alias=_alias(el),
    )


def parse_devices(xml: str) -> tuple[DomainDevice, ...]:
    """Every ``<interface>`` and ``<hostdev>`` of a domain's XML, in document order."""
    root = ET.fromstring(xml)
    out: list[DomainDevice] = []
    for el in root.findall("devices/*"):
        if el.tag == "interface":
            out.append(_interface(el))
        elif el.tag == "hostdev":
            out.append(_hostdev(el))
    return tuple(out)


def domain_devices(domain: Domain, live_xml: str, config_xml: str) -> DomainDevices:
    """Both device lists; a domain that is not running has only its persistent one."""
    config = parse_devices(config_xml)
    live = parse_devices(live_xml) if domain.state.active else ()
    return DomainDevices(domain, live, config)
