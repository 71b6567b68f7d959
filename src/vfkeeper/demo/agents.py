"""Host agents in the demo.

The demo does not run host agents yet: nothing programs the simulated VFs or attaches them to
libvirt domains, so ports stay ``BUILD`` (the controller has claimed and bound them; no agent
has reported them ``ACTIVE``). The controller publishes what each agent would do at
``GET /v1/hosts/{name}/desired-state``; this step shows that, and says plainly that no agent
ran.
"""

from __future__ import annotations

from vfkeeper.demo.session import Session, table

NO_AGENTS = ("Host agents are not part of this demo yet: no VF was programmed and nothing was "
             "attached to a libvirt domain, so the ports stay BUILD. This is what the "
             "controller asks each host's agent to make true:")


def run_step(session: Session) -> None:
    session.say(NO_AGENTS)
    rows = []
    for host in session.get("/v1/hosts"):
        state = session.get(f"/v1/hosts/{host['name']}/desired-state")
        for vf in state["vfs"]:
            rows.append((host["name"], str(state["generation"]), vf["address"],
                         vf["vif_type"], vf["mac"] or vf["guid"] or "-",
                         f"vlan {vf['vlan']}" if vf["vlan"] else
                         (f"pkey {vf['pkey']}" if vf["pkey"] else "-")))
    session.console.print(table("desired VF state (GET /v1/hosts/NAME/desired-state)",
                                ("host", "generation", "device", "vif_type", "MAC / GUID",
                                 "VLAN / PKey"), rows))
