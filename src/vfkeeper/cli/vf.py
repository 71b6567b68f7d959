"""``vfkeeper vf``: show and set a PF's VFs on this host (netlink, through LinkOps).

Local commands for operators: they talk to the kernel, not to a controller. A malformed value is
a usage error (exit 2) before anything is touched. A driver's refusal exits 1 naming PF, VF,
attribute and value; what the command had already changed is put back first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from typing import Any

import typer

from vfkeeper.agent.linkops import (
    STRICT_POLICY,
    LinkOps,
    LinkOpsError,
    LinkState,
    VfConfig,
    VfRefusedError,
    VfState,
    Vlan,
    apply,
)
from vfkeeper.agent.linkops.protocol import VfAttr, format_value
from vfkeeper.domain.errors import InvalidValueError
from vfkeeper.domain.guid import parse_guid, parse_mac

LinkOpsFactory = Callable[[], "LinkOps | AbstractContextManager[LinkOps]"]
REFUSED = 1


class OnOff(StrEnum):
    ON = "on"
    OFF = "off"


class VlanProto(StrEnum):
    Q = "802.1Q"
    AD = "802.1ad"


def _real_linkops() -> AbstractContextManager[LinkOps]:
    # imported here: pyroute2 costs every other command's start-up ~0.2 s otherwise
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps  # noqa: PLC0415

    return Pyroute2LinkOps()


def _opened(factory: LinkOpsFactory) -> AbstractContextManager[LinkOps]:
    made = factory()
    if isinstance(made, AbstractContextManager):
        return made
    return nullcontext(made)


def _mac(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_mac(value)
    except InvalidValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _guid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_guid(value, allow_zero=False, allow_clear=False).canonical
    except InvalidValueError as exc:
        raise typer.BadParameter(str(exc)) from None


IFNAMSIZ = 16


def _pf(value: str) -> str:
    """A netdev name the kernel could have given (its ``dev_valid_name``)."""
    if (not value or len(value.encode()) >= IFNAMSIZ or value in (".", "..")
            or any(c in value for c in "/:") or any(c.isspace() for c in value)):
        raise typer.BadParameter(
            f"{value!r} is not a network interface name (1-{IFNAMSIZ - 1} bytes, no '/', ':' or "
            "spaces); give the PF's netdev as 'ip link' shows it, e.g. enp3s0f0")
    return value


def _flag(value: OnOff | None) -> bool | None:
    return None if value is None else value is OnOff.ON


def _row(vf: VfState) -> dict[str, Any]:
    return {attr.value: format_value(attr, vf.value(attr)) for attr in VfAttr}


def _json_row(vf: VfState) -> dict[str, Any]:
    row: dict[str, Any] = {"vf": vf.index}
    for attr in VfAttr:
        value = vf.value(attr)
        if isinstance(value, Vlan):
            value = {"id": value.id, "qos": value.qos, "proto": value.proto}
        row[attr.value] = str(value) if isinstance(value, LinkState) else value
    return row


def _table(vfs: tuple[VfState, ...]) -> str:
    headers = ["vf", *(attr.value for attr in VfAttr)]
    rows = [[str(vf.index), *_row(vf).values()] for vf in vfs]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [headers, *rows])  # fmt: skip


def _fail(exc: LinkOpsError) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    if isinstance(exc, VfRefusedError):
        typer.echo("Nothing was changed: this command's earlier settings were put back.", err=True)
    return typer.Exit(REFUSED)


def register(app: typer.Typer, linkops: LinkOpsFactory = _real_linkops) -> None:
    """Add ``vfkeeper vf``. ``linkops`` makes the LinkOps to use (tests pass a fake)."""
    vf_app = typer.Typer(
        name="vf",
        help="Show and set the VFs of a PF on this host (netlink; needs root to set).",
        no_args_is_help=True,
    )

    @vf_app.command("show")
    def show(
        pf: str = typer.Argument(
            ..., metavar="PF", callback=_pf, help="The PF's netdev name, e.g. enp3s0f0 or ib0."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Print every VF's settings as the PF's driver reports them ('-': not reported)."""
        try:
            with _opened(linkops) as ops:
                vfs = ops.list_vfs(pf)
        except LinkOpsError as exc:
            raise _fail(exc) from None
        if as_json:
            typer.echo(json.dumps({"pf": pf, "vfs": [_json_row(vf) for vf in vfs]}, indent=2))
        elif not vfs:
            typer.echo(f"{pf} has no VFs (sriov_numvfs is 0, or it is not an SR-IOV PF)")
        else:
            typer.echo(_table(vfs))

    @vf_app.command("set")
    def set_(
        pf: str = typer.Argument(..., metavar="PF", callback=_pf, help="The PF's netdev name."),
        vf_index: int = typer.Argument(..., min=0, metavar="VF_INDEX", help="The VF's index."),
        *,
        mac: str | None = typer.Option(None, "--mac", callback=_mac, help="VF MAC address."),
        vlan: int | None = typer.Option(
            None, "--vlan", min=0, max=4095, metavar="N", help="Port VLAN id; 0 removes it."
        ),
        qos: int = typer.Option(0, "--qos", min=0, max=7, help="VLAN priority (with --vlan)."),
        vlan_proto: VlanProto = typer.Option(
            VlanProto.Q, "--vlan-proto", help="VLAN protocol (with --vlan)."
        ),
        trust: OnOff | None = typer.Option(None, "--trust", help="Trusted VF (promisc, MACs)."),
        spoofchk: OnOff | None = typer.Option(None, "--spoofchk", help="Source MAC check."),
        state: LinkState | None = typer.Option(None, "--state", help="VF link state."),
        min_rate: int | None = typer.Option(
            None, "--min-rate", min=0, metavar="MBPS", help="Guaranteed TX rate, Mbit/s."
        ),
        max_rate: int | None = typer.Option(
            None, "--max-rate", min=0, metavar="MBPS", help="TX rate limit, Mbit/s; 0: none."
        ),
        node_guid: str | None = typer.Option(
            None, "--node-guid", callback=_guid, metavar="GUID", help="InfiniBand node GUID."
        ),
        port_guid: str | None = typer.Option(
            None, "--port-guid", callback=_guid, metavar="GUID", help="InfiniBand port GUID."
        ),
    ) -> None:
        """Set attributes of one VF. All or nothing: on a refusal, the command's earlier
        changes are put back and it exits 1."""
        config = VfConfig(
            mac=mac,
            vlan=None if vlan is None else Vlan(vlan, qos, vlan_proto.value),
            spoofchk=_flag(spoofchk),
            trust=_flag(trust),
            min_tx_rate=min_rate,
            max_tx_rate=max_rate,
            node_guid=node_guid,
            port_guid=port_guid,
            link_state=state,
        )
        if not config:
            raise typer.BadParameter("give at least one attribute to set (see --help)")
        try:
            with _opened(linkops) as ops:
                result = apply(ops, pf, vf_index, config, policy=STRICT_POLICY)
        except LinkOpsError as exc:
            raise _fail(exc) from None
        for attr in result.changed:
            typer.echo(f"{pf} VF {vf_index}: {attr} = {format_value(attr, config.value(attr))}")
        for attr in result.unchanged:
            shown = format_value(attr, config.value(attr))
            typer.echo(f"{pf} VF {vf_index}: {attr} already {shown}")

    app.add_typer(vf_app)
