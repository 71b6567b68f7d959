"""The agent's composition root and run loop (``vfkeeper agent``).

:func:`build` makes every dependency once — ``SysfsReader(root)``, LinkOps (pyroute2, or the
fake for a simulated host), DomainOps (libvirt, or the fake), the journal, the controller
client — and :class:`Agent` runs the loop: register (inventory), then on their own intervals
heartbeat, rescan (inventory again when it changed: VFs appearing or vanishing, a new
``sriov_numvfs``) and reconcile (desired state → host → actual state). A failed task is logged
and retried on its next tick, whatever it raised: one failing pass never ends the loop or stops
the heartbeats. A reconcile pass that fails is also reported to the controller as a host
problem (kind ``reconcile``), so no instance is placed on a host its agent cannot reconcile
until a pass succeeds again. SIGTERM ends the loop after the task in progress.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vfkeeper.agent.controller_client import (
    ControllerClient,
    ControllerError,
    ControllerRejectedError,
)
from vfkeeper.agent.desired import HostIndex
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.errors import AgentError, MigrationUriError
from vfkeeper.agent.executor import Reconciler
from vfkeeper.agent.journal import Journal
from vfkeeper.agent.libvirt.protocol import DomainOps
from vfkeeper.agent.linkops.protocol import LinkOps
from vfkeeper.agent.logs import OncePerChange, settings
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.agent.tasks import TaskRunner
from vfkeeper.domain.agent_state import ActualState, HostProblem
from vfkeeper.domain.errors import InvalidMigrationUriError
from vfkeeper.domain.inventory import HostInventory
from vfkeeper.domain.migration import check_migration_uri

log = logging.getLogger("vfkeeper.agent")
MAX_PROBLEM = 2000
"""Characters of a problem's message the agent sends."""


@dataclass(frozen=True)
class AgentConfig:
    controller: str
    token: str | None
    host: str | None = None
    sysfs_root: str = "/"
    libvirt_uri: str = "qemu:///system"
    state_dir: str = "/var/lib/vfkeeper"
    fake_linkops: bool = False
    fake_libvirt: bool = False
    heartbeat_s: float = 10.0
    rescan_s: float = 30.0
    reconcile_s: float = 5.0
    migration_uri: str | None = None
    """Where peers' libvirt migrates domains to this host; default ``qemu+tcp://<host>/system``
    (the fake libvirt too takes that URI: its fabric is keyed by it)."""


@dataclass
class Agent:
    """One agent: its dependencies and the state of its loop."""

    reader: SysfsReader
    linkops: LinkOps
    domain_ops: DomainOps
    client: ControllerClient
    reconciler: Reconciler
    hostname: str
    config: AgentConfig
    clock: Callable[[], float] = time.monotonic
    inventory: HostInventory | None = None
    last_report: ActualState | None = None
    tasks: TaskRunner = field(init=False)
    _due: dict[str, float] = field(default_factory=dict)
    _discovery: OncePerChange = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = TaskRunner(self.domain_ops)
        self._discovery = OncePerChange(log, logging.WARNING)

    def scan(self) -> HostInventory:
        return discover(self.reader, hostname=self.hostname)

    def rescan(self) -> bool:
        """Discover; send the inventory if it changed (or was never sent). True if sent."""
        inventory = self.scan()
        self._discovery.say({f"{w.path}\0{w.message}": f"discovery: {w.path}: {w.message}"
                             for w in inventory.warnings})  # fmt: skip
        if self.inventory is not None and inventory == self.inventory:
            return False
        self.client.put_inventory(inventory)
        if self.inventory is None:
            log.info("registered with the controller: %d devices, %d discovery warnings",
                     len(inventory.devices), len(inventory.warnings))
        else:
            log.info("inventory changed; sent again: %d devices", len(inventory.devices))
        self.inventory = inventory
        return True

    @property
    def migration_uri(self) -> str:
        return migration_uri(self.config, self.hostname)

    def heartbeat(self) -> None:
        """Tell the controller the agent is alive. A controller that does not know the host
        (an admin deleted it) answers 404: the agent registers it again with its inventory."""
        try:
            self.client.heartbeat(self.migration_uri)
        except ControllerRejectedError as exc:
            if (exc.status, exc.code) != (404, "not_found"):
                raise
            log.warning("the controller does not know host %s (deleted?): sending its "
                        "inventory to register it again", self.hostname)
            self.inventory = None
            self.rescan()
            self.client.heartbeat(self.migration_uri)

    def reconcile(self) -> ActualState:
        """One pass: desired state → host → actual state (reported)."""
        if self.inventory is None:
            self.rescan()
        assert self.inventory is not None
        desired = self.client.desired_state()
        ensure = getattr(self.domain_ops, "ensure_domains", None)
        if ensure is not None:  # a simulated hypervisor boots the instances placed here
            ensure(desired)
        index = HostIndex.of(self.inventory)
        outcome = self.reconciler.reconcile(desired, index)
        tasks = self.tasks.run(desired, outcome, index.netdev)
        report = self.reconciler.report(desired, outcome).model_copy(update={"tasks": tasks})
        answer = self.client.put_actual_state(report)
        for refused in (answer or {}).get("tasks_refused") or []:
            log.warning("the controller refused this host's report of task %s: %s",
                        refused.get("task_id"), refused.get("message"))
        self.last_report = report
        return report

    def tick(self) -> list[str]:
        """Run every task that is due; returns their names. Errors are logged, not raised."""
        now = self.clock()
        tasks: dict[str, tuple[float, Callable[[], Any]]] = {
            "rescan": (self.config.rescan_s, self.rescan),
            "heartbeat": (self.config.heartbeat_s, self.heartbeat),
            "reconcile": (self.config.reconcile_s, self.reconcile),
        }
        ran = []
        for name, (interval, task) in tasks.items():
            if self._due.get(name, 0.0) > now:
                continue
            self._due[name] = now + interval
            ran.append(name)
            try:
                task()
            except Exception as exc:  # one failing task must not end the loop
                self._failed(name, exc)
        return ran

    def _failed(self, task: str, exc: Exception) -> None:
        """Log a failed task with what to do; a failed reconcile pass is also reported."""
        if isinstance(exc, ControllerError):
            log.warning("%s failed: %s", task, exc)
            return
        if isinstance(exc, AgentError):
            message = f"the agent's {task} pass failed: {exc}"
        else:
            message = (f"the agent's {task} pass failed unexpectedly ({type(exc).__name__}: "
                       f"{str(exc)[:500]}); this is a bug in vfkeeper: report it with the "
                       "agent's log (run it with --log-level debug for the traceback). The "
                       "agent tries again at every tick")
        log.error("%s", message)
        log.debug("%s failed", task, exc_info=exc)
        if task == "reconcile":
            self._report_problem(message)

    def _report_problem(self, message: str) -> None:
        """Tell the controller this host cannot be reconciled (its scheduler then places
        nothing here); the report says nothing of the ports, so the controller keeps those."""
        generation = self.last_report.desired_generation if self.last_report else 0
        problem = HostProblem(kind="reconcile", message=message[:MAX_PROBLEM])
        try:
            self.client.put_actual_state(ActualState(host=self.hostname,
                                                     desired_generation=generation,
                                                     problems=(problem,)))
        except ControllerError as exc:
            log.warning("could not report the failed pass to the controller: %s", exc)

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set (SIGTERM/SIGINT set it in :func:`run_forever`)."""
        while not stop.is_set():
            self.tick()
            wake = min(self._due.values(), default=self.clock()) - self.clock()
            stop.wait(max(0.05, wake))


def migration_uri(config: AgentConfig, hostname: str) -> str:
    """Where peers migrate domains to this host: ``--migration-uri``, else libvirt's TCP
    transport on the host's name (a simulated host's fake libvirt answers to that URI too, so
    the controller checks every host's URI by one rule)."""
    return config.migration_uri or f"qemu+tcp://{hostname}/system"


def build(config: AgentConfig, *, transport: Any = None, linkops: LinkOps | None = None,
          domain_ops: DomainOps | None = None) -> Agent:  # fmt: skip
    """Build an agent; ``transport`` (httpx), ``linkops`` and ``domain_ops`` are for tests."""
    reader = SysfsReader(config.sysfs_root)
    hostname = config.host or discover(reader).hostname
    try:  # refused here rather than by every heartbeat (any DNS domain: the controller's list)
        check_migration_uri(migration_uri(config, hostname), hostname)
    except InvalidMigrationUriError as exc:
        raise MigrationUriError(str(exc)) from exc
    inventory = discover(reader, hostname=hostname)
    if linkops is None:
        linkops = _linkops(config, inventory)
    if domain_ops is None:
        domain_ops = _domain_ops(config, inventory, linkops)
    client = ControllerClient(config.controller, config.token, hostname, transport)
    reconciler = Reconciler(linkops, domain_ops, Journal(config.state_dir))
    log.info("agent starting: %s", settings(startup_settings(config, hostname)))
    return Agent(reader, linkops, domain_ops, client, reconciler, hostname, config)


def startup_settings(config: AgentConfig, hostname: str) -> dict[str, object]:
    """The effective settings, as the start-up line says them (never the token itself)."""
    return {
        "host": hostname, "controller": config.controller,
        "token": "given" if config.token else "none", "sysfs root": config.sysfs_root,
        "VF programming": "in memory (--fake-linkops)" if config.fake_linkops else "netlink",
        "libvirt": "simulated (--fake-libvirt)" if config.fake_libvirt else config.libvirt_uri,
        "state dir": config.state_dir, "migration URI": migration_uri(config, hostname),
        "heartbeat every": f"{config.heartbeat_s:g} s", "rescan every": f"{config.rescan_s:g} s",
        "reconcile every": f"{config.reconcile_s:g} s",
    }  # fmt: skip


def _linkops(config: AgentConfig, inventory: HostInventory) -> LinkOps:
    if config.fake_linkops:
        from vfkeeper.agent.simhost import fake_linkops  # noqa: PLC0415

        return fake_linkops(inventory)
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps  # noqa: PLC0415

    return Pyroute2LinkOps(root=config.sysfs_root)


def _domain_ops(config: AgentConfig, inventory: HostInventory, linkops: LinkOps) -> DomainOps:
    if config.fake_libvirt:
        from vfkeeper.agent.simhost import SimulatedHypervisor, locator  # noqa: PLC0415

        where = locator(inventory)
        return SimulatedHypervisor(linkops, where.get,
                                   uri=migration_uri(config, inventory.hostname))
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps  # noqa: PLC0415

    return LibvirtDomainOps(config.libvirt_uri)


def run_forever(agent: Agent) -> None:
    """The daemon: register, then loop until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)
    agent.client.close()
