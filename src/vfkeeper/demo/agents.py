"""The demo's host agents: one real :class:`~vfkeeper.agent.main.Agent` per simulated host.

Each agent is built by the agent's own composition root (:func:`vfkeeper.agent.main.build`)
with an ``agent:<host>`` token, the host's fake sysfs tree, a fake kernel
(:func:`~vfkeeper.agent.simhost.fake_linkops`, built from that tree's inventory as
``vfkeeper agent --fake-linkops`` does), a journal in its own state directory, and a
hypervisor of its own (:class:`~vfkeeper.demo.hypervisor.HypervisorOnTestDriver`: domains on a
libvirt test-driver connection, device hot-plug in the agent's in-memory model). It talks to
the demo's controller over HTTP like any agent.

While the steps run, the demo calls each agent's tasks itself, at the moments the story needs
them (register, heartbeat, one reconcile pass): the same methods the agent's loop calls on its
intervals, so the output is the same on every run. With ``--keep`` each agent then runs its
real loop (:meth:`~vfkeeper.agent.main.Agent.run`) in a thread until Ctrl-C.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.libvirt.protocol import DomainDevice
from vfkeeper.agent.linkops.fake import FakeLinkOps
from vfkeeper.agent.linkops.protocol import VfState
from vfkeeper.agent.main import Agent, AgentConfig, build
from vfkeeper.agent.reconcile import Step
from vfkeeper.agent.simhost import fake_linkops, locator
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.demo.hypervisor import HypervisorOnTestDriver, own_test_driver_uri
from vfkeeper.domain.agent_state import ActualState

STOP_TIMEOUT_S = 30.0
"""How long Ctrl-C waits for an agent to finish the task it is in."""


@dataclass
class HostAgent:
    """One simulated host's agent and the fakes behind it (which the demo reads to show what
    the host now looks like)."""

    name: str
    agent: Agent
    hypervisor: HypervisorOnTestDriver
    kernel: FakeLinkOps
    vf_of: dict[str, tuple[str, int]]
    """VF PCI address → (PF netdev, VF index)."""
    originals: dict[str, VfState] = field(default_factory=dict)
    """Every VF's settings before the agent first ran (the fake kernel as it started)."""
    steps: list[Step] = field(default_factory=list)
    """Every step the agent's executor carried out, in order."""

    def vf(self, address: str) -> VfState | None:
        """The VF's settings as the fake kernel shows them (``ip link show PF``)."""
        where = self.vf_of.get(address)
        return None if where is None else self.kernel.get_vf(*where)

    def port_profile(self, address: str) -> str | None:
        """The 802.1Qbh port profile libvirt associated for the VF, if any."""
        return self.hypervisor.model.port_profiles.get(address)

    def domain_devices(self, domain: str) -> tuple[DomainDevice, ...]:
        """The domain's live devices (the persistent ones when it is not running)."""
        held = self.hypervisor.devices(domain)
        return held.live if held.domain.state.active else held.config

    def take_steps(self) -> list[Step]:
        done, self.steps[:] = list(self.steps), []
        return done


def start_agent(name: str, sysfs_root: Path, state_root: Path, controller: str,
                token: str) -> HostAgent:  # fmt: skip
    """Build the host's agent (nothing is sent to the controller yet)."""
    inventory = discover(SysfsReader(sysfs_root), hostname=name)
    kernel = fake_linkops(inventory)
    vf_of = locator(inventory)
    hypervisor = HypervisorOnTestDriver(own_test_driver_uri(state_root / "libvirt-test-node.xml"),
                                      kernel, vf_of.get)
    config = AgentConfig(controller=controller, token=token, host=name,
                         sysfs_root=str(sysfs_root), libvirt_uri=hypervisor.uri,
                         state_dir=str(state_root / "state"), fake_linkops=True)
    agent = build(config, linkops=kernel, domain_ops=hypervisor)
    originals = {address: kernel.get_vf(*where) for address, where in vf_of.items()}
    host = HostAgent(name, agent, hypervisor, kernel, vf_of, originals)
    agent.reconciler.executor.after_step = host.steps.append
    return host


@dataclass
class Fleet:
    """Every simulated host's agent."""

    hosts: dict[str, HostAgent] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, roots: dict[str, Path], state_dir: Path, controller: str,
              token_for: Callable[[str], str]) -> Fleet:  # fmt: skip
        """An agent per host root; ``token_for(role)`` creates each one's token."""
        return cls({name: start_agent(name, root, state_dir / name, controller,
                                      token_for(f"agent:{name}"))
                    for name, root in roots.items()})

    def __getitem__(self, host: str) -> HostAgent:
        return self.hosts[host]

    def register(self) -> None:
        """Each agent's first tasks: send the inventory, heartbeat."""
        for host in self.hosts.values():
            host.agent.rescan()
            host.agent.heartbeat()

    def reconcile(self, hosts: list[str] | None = None) -> dict[str, ActualState]:
        """One heartbeat and one reconcile pass of each agent (of ``hosts``, or all)."""
        reports = {}
        for name in hosts or list(self.hosts):
            agent = self.hosts[name].agent
            agent.heartbeat()
            reports[name] = agent.reconcile()
        return reports

    def run_in_background(self) -> None:
        """Each agent's own loop in a thread; every instance placed from now on gets a
        running domain on its host's test driver when the agent next looks."""
        for host in self.hosts.values():
            host.hypervisor.boots_placed_instances = True
            thread = threading.Thread(target=host.agent.run, args=(self._stop,),
                                      name=f"vfkeeper-demo-agent-{host.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the loops (each ends after the task it is in) and close the connections."""
        self._stop.set()
        for thread in self._threads:
            thread.join(STOP_TIMEOUT_S)
        for host in self.hosts.values():
            host.agent.client.close()
            host.hypervisor.close()
