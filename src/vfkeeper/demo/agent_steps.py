"""The demo's steps in which the host agents act: the instances' domains are defined, each
agent programs and attaches its ports, the XML now in a domain, and a delete the agent undoes
(detach, restore the VF's original settings) before the pools count the VFs free."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from vfkeeper.agent.linkops.protocol import VfState
from vfkeeper.agent.reconcile import Step
from vfkeeper.demo import scenario, views
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.session import DemoStepError, Session, table


def _summary(steps: list[Step]) -> str:
    def name(step: Step) -> str:
        where = "+".join(w for w, on in (("live", step.live), ("config", step.config)) if on)
        return f"{step.kind} ({where})" if where else str(step.kind)

    counts = Counter(name(s) for s in steps)
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing to do"


def boot_domains(session: Session, fleet: Fleet) -> None:
    """What a VM manager does before an agent can attach anything: define and start each
    instance's domain on its host's hypervisor."""
    for inst in sorted(session.get("/v1/instances"), key=lambda i: str(i["created_at"])):
        hypervisor = fleet[inst["host"]].hypervisor
        domain = hypervisor.boot(inst["name"], inst["id"])
        session.say(f"{inst['host']}: domain {domain.name} (UUID = instance id) defined and "
                    f"{domain.state} on {hypervisor.uri}")


def attach_ports(session: Session, fleet: Fleet) -> list[views.PortState]:
    """Define the domains, run one reconcile pass of every agent, show what they did."""
    session.say("Each host's hypervisor is a libvirt test-driver connection of its own "
                "(domains defined, started and listed by libvirt); the test driver implements "
                "no device hot-plug, so attach and detach go to the agent's in-memory libvirt "
                "model (FakeDomainOps), and VFs are programmed in a fake kernel (FakeLinkOps). "
                "The instances' domains, as a VM manager would start them:")
    boot_domains(session, fleet)
    session.say("Each agent runs one reconcile pass: GET its desired state → record each VF's "
                "original settings in its journal → program the VF → attach the device live "
                "and to the persistent config → PUT its actual state:")
    for host, report in fleet.reconcile().items():
        statuses = Counter(p.status for p in report.ports).most_common()
        session.say(f"{host}: {_summary(fleet[host].take_steps())} → ports "
                    + ", ".join(f"{n} {status}" for status, n in statuses))
    rows = views.port_states(session, fleet)
    session.console.print(views.port_state_table(rows))
    session.console.print(views.kernel_table(rows, fleet))
    for r in rows:
        if r.status == "ERROR":
            session.say(f"[bold]{r.port}[/bold] is ERROR: {r.actual.get('last_error')}")
    _check_attached(rows)
    return rows


def _check_attached(rows: list[views.PortState]) -> None:
    """Every port ACTIVE with the kernel showing its settings."""
    bad = [r.port for r in rows if r.status != "ACTIVE"
           or (r.kernel is not None and not r.kernel_matches)]  # fmt: skip
    if bad:
        raise DemoStepError(f"ports not ACTIVE with their VF programmed: {', '.join(bad)}")


def show_domain_xml(session: Session, fleet: Fleet,
                    instance_name: str = scenario.XML_INSTANCE) -> dict[str, str]:
    """The device XML of each port of the instance as its domain now holds it, compared with
    what the controller's desired state renders (:func:`views.instance_xml`)."""
    inst = views.instance_named(session, instance_name)
    host = fleet[inst["host"]]
    rendered = views.instance_xml(session, instance_name)
    ids = {p["name"] or p["id"]: p["id"] for p in session.get("/v1/ports", instance=inst["id"])}
    held = {d.alias: d.xml for d in host.domain_devices(instance_name)}
    out = {}
    for port_name, want in rendered.items():
        xml = held.get(f"ua-vfk-{ids[port_name]}")
        if xml is None:
            raise DemoStepError(f"{port_name} is not in domain {instance_name}")
        out[port_name] = xml
        same = "the XML the desired state renders" if xml == want else "NOT what was rendered"
        session.say(f"[bold]{port_name}[/bold] in domain {instance_name} on {host.name} "
                    f"(live definition; {same}):")
        session.console.print(xml, markup=False)
    return out


@dataclass(frozen=True)
class Release:
    host: str
    devices: list[str]
    free_before: int
    free_after: int
    vfs_original: dict[str, VfState | None]
    vfs_before: dict[str, VfState | None]
    vfs_after: dict[str, VfState | None]
    held_before: int
    held_after: int
    left_in_journal: int


def _vf_change_table(release: Release, infiniband: dict[str, bool]) -> Any:
    def text(states: dict[str, VfState | None], device: str) -> str:
        state = states[device]
        return "-" if state is None else views.vf_text(state, infiniband[device])

    rows = [(d, text(release.vfs_original, d), text(release.vfs_before, d),
             text(release.vfs_after, d)) for d in release.devices]
    return table(f"{release.host}: the VFs in its fake kernel",
                 ("VF", "before any agent ran", "while attached", "after the agent's pass"),
                 rows)


def delete_instance(session: Session, fleet: Fleet,
                    name: str = scenario.DELETED_INSTANCE) -> Release:
    """Delete the instance; its host's agent detaches the devices and restores the VFs; the
    pools count them free again."""
    inst = views.instance_named(session, name)
    host = fleet[inst["host"]]
    ib = {p["binding:profile"]["pci_slot"]: p["binding:vif_type"] == "ib_hostdev"
          for p in session.get("/v1/ports", instance=inst["id"])}
    devices = [a["device"] for a in inst["allocations"]]
    before = session.get("/v1/pools", host=host.name)
    vfs_before = {d: host.vf(d) for d in devices}
    held_before = len(host.domain_devices(name))
    session.cli("instance", "delete", inst["id"])
    session.say(f"{host.name}'s agent runs a reconcile pass:")
    report = fleet.reconcile([host.name])[host.name]
    session.say(f"{host.name}: {_summary(host.take_steps())}; still releasing: "
                f"{len(report.releasing)}")
    after = session.get("/v1/pools", host=host.name)
    release = Release(host.name, devices, sum(p["free"] for p in before),
                      sum(p["free"] for p in after), {d: host.originals.get(d) for d in devices},
                      vfs_before,
                      {d: host.vf(d) for d in devices}, held_before,
                      len(host.domain_devices(name)),
                      len(host.agent.reconciler.journal.load().records))
    session.say(f"domain {name} on {host.name}: {release.held_before} passthrough devices "
                f"before, {release.held_after} after (the domain itself is the VM manager's "
                "to remove)")
    session.console.print(_vf_change_table(release, ib))
    if any(ib.values()):
        session.say("A GUID of zero (never set) and of all ones (cleared) both mean no "
                    "administrative GUID: restoring one the VF never had clears it.")
    session.console.print(views.pool_change_table(host.name, before, after))
    session.say(f"{len(devices)} devices returned to {host.name}'s pools "
                f"({', '.join(devices)}): free {release.free_before} → {release.free_after}")
    return release
