"""Run by Debian's own python3 (the interpreter cloud-init is installed for), not the venv.

Feeds a network_data.json to stock cloud-init's OpenStack converter as a guest's cloud-init
would at boot, with cloud-init looking at a fake ``/sys/class/net`` that holds the guest's
interfaces (an IPoIB interface's 20-byte address ends with its port GUID), then renders the
result with one of cloud-init's renderers into an output directory.

    python3 cloudinit_probe.py NETWORK_DATA.json SYSFS_DIR DISTRO RENDERER OUT_DIR

Prints the version 1 config cloud-init derived, as JSON, on stdout.
"""

import json
import sys

from cloudinit import distros, net
from cloudinit.net import eni, netplan, network_state, networkd, sysconfig
from cloudinit.sources.helpers import openstack


def main() -> None:
    nd_path, sysfs, distro_name, renderer, out = sys.argv[1:6]
    net.SYS_CLASS_NET = sysfs.rstrip("/") + "/"
    with open(nd_path) as f:
        v1 = openstack.convert_net_json(json.load(f), known_macs=None)
    distro = distros.fetch(distro_name)(distro_name, {}, None)
    classes = {"eni": eni.Renderer, "netplan": netplan.Renderer,
               "networkd": networkd.Renderer, "sysconfig": sysconfig.Renderer}
    config = dict(distro.renderer_configs.get(renderer) or {})
    if renderer == "netplan":
        config["postcmds"] = False
        config["netplan_path"] = config["netplan_path"].lstrip("/")
    r = classes[renderer](config=config)
    ns = network_state.parse_net_config_data(v1, renderer=r)
    r.render_network_state(network_state=ns, target=out.rstrip("/") + "/")
    json.dump(v1, sys.stdout)


main()
