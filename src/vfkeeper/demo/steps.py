"""The steps of the cluster demo. Each one talks to the controller only through its REST API
(:class:`~vfkeeper.demo.session.Session`), prints what it did, and returns what it found, so
tests can check the outcome of each step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfkeeper.demo import scenario, views
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.scenario import DemoHost, InstancePlan
from vfkeeper.demo.session import DemoStepError, Session, table
from vfkeeper.sim import build_tree


def build_hosts(session: Session, hosts_dir: Path,
                hosts: tuple[DemoHost, ...] = scenario.HOSTS) -> dict[str, Path]:
    """Write each host's fake sysfs tree under ``hosts_dir/NAME``; return the roots."""
    roots: dict[str, Path] = {}
    rows = []
    for host in hosts:
        roots[host.name] = root = hosts_dir / host.name
        build_tree(host.spec, root)
        nics = ", ".join(f"{pf.model} ({pf.vfs} VFs, NUMA {pf.numa_node})"
                         for pf in host.spec.pfs)
        rows.append((host.name, nics, host.story, str(root)))
    session.console.print(table("simulated hosts (fake sysfs trees)",
                                ("host", "NICs", "role", "sysfs root"), rows))
    return roots


def register_hosts(session: Session, fleet: Fleet,
                   hosts: tuple[DemoHost, ...] = scenario.HOSTS) -> None:
    """Each host's agent sends its inventory and a heartbeat (its own ``agent:<host>``
    token); an admin sets the host's device specs. Then ``host list`` / ``pool list``."""
    fleet.register()
    for host in hosts:
        agent = fleet[host.name].agent
        assert agent.inventory is not None
        specs = session.put(f"/v1/hosts/{host.name}/device-specs",
                            {"entries": list(host.device_specs)})
        if specs["host_problems"]:
            raise DemoStepError(f"{host.name}: device specs refused: {specs['host_problems']}")
        session.say(f"{host.name}: its agent (token role agent:{host.name}) discovered "
                    f"{len(agent.inventory.devices)} PCI functions, sent the inventory and a "
                    "heartbeat; device specs: "
                    + "; ".join(_spec_text(s) for s in host.device_specs))
    session.cli("host", "list")
    session.cli("pool", "list")


def _spec_text(spec: dict[str, str]) -> str:
    tags = {k: v for k, v in spec.items() if k not in ("address", "product_id")}
    what = f"{spec['address']} VFs" if "product_id" in spec else f"{spec['address']} (the PF)"
    return what + " → " + ", ".join(f"{k}={v}" for k, v in tags.items())


def create_networks(session: Session,
                    networks: tuple[scenario.NetworkPlan, ...] = scenario.NETWORKS) -> None:
    for net in networks:
        session.cli("network", "create", net.name, "--physical-network", net.physical_network,
                    "--type", net.segmentation, "--id", net.seg_id)
    session.cli("network", "list")


@dataclass(frozen=True)
class Boot:
    plan: InstancePlan
    instance: dict[str, Any]
    ports: list[dict[str, Any]]


def _create_ports(session: Session, plan: InstancePlan) -> list[str]:
    return [session.post("/v1/ports", {"network": p.network, "name": p.name,
                                       "vnic_type": p.vnic_type})["id"]
            for p in plan.ports]


def boot_instances(session: Session, plans: tuple[InstancePlan, ...] = scenario.INSTANCES
                   ) -> dict[str, Boot]:
    """Create each instance's ports, boot it, and print where it went."""
    boots = {}
    for plan in plans:
        port_ids = _create_ports(session, plan)
        inst = session.post("/v1/instances", {"name": plan.name, "ports": port_ids,
                                               "numa_policy": plan.numa_policy})
        ports = [session.get(f"/v1/ports/{pid}") for pid in port_ids]
        boots[plan.name] = Boot(plan, inst, ports)
        vnics = ", ".join(p.vnic_type for p in plan.ports)
        session.say(f"booted {plan.name} ({plan.why}; {vnics}; numa_policy {plan.numa_policy}) "
                    f"→ [bold]{inst['host']}[/bold]")
    return boots


def show_placements(session: Session) -> list[views.Placement]:
    rows = views.placements(session)
    session.console.print(views.placement_table(rows))
    return rows


def try_unplaceable(session: Session, plan: InstancePlan = scenario.UNPLACEABLE) -> int:
    """Ask for what no host can give; the CLI prints the scheduler's reason for every host."""
    port_ids = _create_ports(session, plan)
    session.say(f"{plan.name} asks for {plan.why} (numa_policy {plan.numa_policy}):")
    args = ["instance", "boot", plan.name]
    for pid in port_ids:
        args += ["--port", pid]
    status = session.cli(*args, "--numa-policy", plan.numa_policy)
    if status == 0:
        raise DemoStepError(f"{plan.name} was placed, but the demo expected no host to fit it")
    for pid in port_ids:
        session.delete(f"/v1/ports/{pid}")
    return status
