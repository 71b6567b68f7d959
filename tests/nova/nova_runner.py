"""Runs inside the Nova venv (scripts/nova-venv.sh), never imported by vfkeeper's tests.

Reads ``{"host": [device...], "cases": [{"specs": [entry...], "devices": [device...]}]}`` on
stdin and writes one result per case on stdout: ``{"error": "<Nova exception class>"}`` or
``{"results": [[spec_index, tags] | null, ...]}``.

Nova reads the compute host's ``/sys`` through four functions of ``nova.pci.utils``; they are
replaced here by answers from the ``host`` device list, which is the same host vfkeeper sees.
"""

import importlib
import json
import sys
import warnings

warnings.simplefilter("ignore")
# Imported by name: this directory is called "nova" too, which confuses import sorting.
exception = importlib.import_module("nova.exception")
utils = importlib.import_module("nova.pci.utils")
whitelist = importlib.import_module("nova.pci.whitelist")


def install_host(host):
    by_addr = {d["address"]: d for d in host}
    by_netdev = {n: d for d in host for n in d.get("netdevs", [])}

    def is_pf(d):
        return d.get("dev_type") == "type-PF" if "sriov_totalvfs" not in d \
            else d["sriov_totalvfs"] > 0

    def get_function_by_ifname(ifname):
        d = by_netdev.get(ifname)
        return (d["address"], is_pf(d)) if d else (None, False)

    def is_physical_function(domain, bus, slot, function):
        d = by_addr.get(f"{domain}:{bus}:{slot}.{function}")
        return bool(d and is_pf(d))

    def get_vf_product_id_by_pf_addr(addr):
        for d in host:
            if d.get("parent_addr") == addr:
                return d["product_id"]
        raise exception.PciDeviceNotFoundById(id=addr)

    def get_pci_ids_by_pci_addr(addr):
        d = by_addr.get(addr)
        if d is None:
            raise exception.PciDeviceNotFoundById(id=addr)
        return d["vendor_id"], d["product_id"]

    utils.get_function_by_ifname = get_function_by_ifname
    utils.is_physical_function = is_physical_function
    utils.get_vf_product_id_by_pf_addr = get_vf_product_id_by_pf_addr
    utils.get_pci_ids_by_pci_addr = get_pci_ids_by_pci_addr


def nova_dict(d):
    out = {k: d.get(k) for k in ("address", "vendor_id", "product_id", "parent_addr")}
    serial = d.get("card_serial_number")
    out["capabilities"] = {"vpd": {"card_serial_number": serial}} if serial else {}
    return out


def run_case(case):
    try:
        wl = whitelist.Whitelist(case["specs"])
    except Exception as exc:  # Nova's own exceptions and bare Python errors alike
        return {"error": type(exc).__name__}
    results = []
    for dev in case["devices"]:
        found = None
        for i, spec in enumerate(wl.specs):
            if spec.match(nova_dict(dev)):
                found = [i, spec.get_tags()]
                break
        results.append(found)
    return {"results": results}


def main():
    payload = json.load(sys.stdin)
    out = []
    for case in payload["cases"]:
        install_host(case.get("host", payload["host"]))
        out.append(run_case(case))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
