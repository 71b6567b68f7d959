"""What the agent says in its log (``vfkeeper.agent.*`` loggers): one line per step it took,
naming the port, the VF and the domain; refusals in the kernel's or libvirt's own words (the
typed errors carry them); and problems once per change, not once per pass.

Levels: INFO for each step and for start-up; WARNING for a best-effort setting the NIC refused
and for new discovery warnings; ERROR for a port that cannot go on and for host problems. HTTP
requests are logged by httpx at INFO, which :func:`configure_logging` turns down to DEBUG
unless ``--log-level debug``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from vfkeeper.agent.linkops.protocol import VfConfig, format_value
from vfkeeper.agent.reconcile import Step, StepKind

HTTP_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    """The agent's logging: ``level`` for vfkeeper's own lines; HTTP request lines only when
    ``level`` is ``debug``."""
    number = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=number, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("vfkeeper").setLevel(number)
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(number if number <= logging.DEBUG else logging.WARNING)


def settings(values: Mapping[str, object]) -> str:
    """``key value, key value`` for a start-up line."""
    return ", ".join(f"{k} {v}" for k, v in values.items())


def config_text(config: VfConfig) -> str:
    """``mac=…, vlan=…`` (``nothing`` when empty)."""
    return ", ".join(f"{a.value}={format_value(a, v)}" for a, v in config.items()) or "nothing"


def vf_text(step: Step) -> str:
    """``VF 0000:03:00.1 (enp3s0f0 vf 0)``: the function and, when known, its PF and index."""
    snapshot = step.record.snapshot if step.record else None
    pf = step.pf or (snapshot.pf if snapshot else None)
    index = step.vf_index if step.vf_index is not None else (
        snapshot.vf_index if snapshot else None)  # fmt: skip
    where = f" ({pf} vf {index})" if pf is not None and index is not None else ""
    return f"VF {step.function or '?'}{where}"


def _where(step: Step) -> str:
    return "live" if step.live else "persistent config"


def done(step: Step) -> str:
    """The INFO line for a step that happened (a program step has its own, with its result)."""
    vf, kind = vf_text(step), step.kind
    if kind is StepKind.RECORD:
        assert step.record is not None
        originals = step.record.snapshot.original if step.record.snapshot else VfConfig()
        return (f"port {step.port_id}: record: {vf} for domain {step.record.domain}; "
                f"originals {config_text(originals)}")
    if kind is StepKind.ATTACH:
        return f"port {step.port_id}: attach: {vf} to domain {step.domain} ({_where(step)})"
    if kind is StepKind.DETACH:
        return f"port {step.port_id}: detach: {vf} from domain {step.domain} ({_where(step)})"
    if kind is StepKind.RESTORE:
        assert step.record is not None and step.record.snapshot is not None
        return (f"port {step.port_id}: restore: {vf} back to "
                f"{config_text(step.record.snapshot.original)}")
    if kind is StepKind.FORGET:
        return f"port {step.port_id}: forget: journal record removed; {vf} given back"
    return f"port {step.port_id}: {kind}: {vf}"


class OncePerChange:
    """Logs a message for a key only when it differs from the last one logged for that key;
    keys no longer given are forgotten (so a problem that comes back is logged again)."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self._log = logger
        self._level = level
        self._said: dict[str, str] = {}

    def say(self, messages: Mapping[str, str]) -> None:
        for key, message in messages.items():
            if self._said.get(key) != message:
                self._log.log(self._level, "%s", message)
        self._said = dict(messages)
