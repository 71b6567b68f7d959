"""``/v1/partitions``: InfiniBand partition membership — what vfkeeper wants in each partition,
what the subnet manager has, the difference, and a forced sync."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path

from vfkeeper.controller import partitions as pt
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import InvalidInputError, SyncElsewhereError
from vfkeeper.sm.errors import SmError

PkeyText = Annotated[str, Path(max_length=6, description="The PKey in hex: 0x0a01 or a01.")]


def _pkey(text: str) -> int:
    pkey = pt.parse_pkey_text(text)
    if pkey is None or not 0x0001 <= pkey <= 0x7FFE:
        raise InvalidInputError("pkey", f"{text!r} is not a PKey: give it in hex, from 0x0001 "
                                "to 0x7ffe (e.g. 0x0a01)")
    return pkey


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/partitions", tags=["partitions"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "sync partitions")

    @r.get("", dependencies=[viewer])
    def list_partitions() -> dict[str, Any]:
        """Every PKey vfkeeper's networks use, with its members counted by state, and the
        reconciler's last pass. PKeys are hex strings."""
        with ctx.db.read() as s:
            return {"subnet_manager": ctx.partitions.status(),
                    "partitions": pt.summary(s, managed=ctx.partitions.managed)}

    @r.get("/{pkey}", dependencies=[viewer])
    def show_partition(pkey: PkeyText) -> dict[str, Any]:
        """What vfkeeper wants in the partition (each GUID's state), what the subnet manager
        has (read now), and the difference."""
        key = _pkey(pkey)
        with ctx.db.read() as s:
            managed = ctx.partitions.managed
            summary = next((p for p in pt.summary(s, managed=managed)
                            if p["pkey"] == f"{key:#06x}"), None)
            members = pt.memberships(s, managed=managed, pkey=key)
        out: dict[str, Any] = {
            "pkey": f"{key:#06x}", "networks": summary["networks"] if summary else [],
            "shared": bool(summary and summary["shared"]), "wanted": members,
            "subnet_manager": {"backend": ctx.partitions.backend.name}}
        if not ctx.partitions.managed:
            out["subnet_manager"]["managed_outside"] = True
            out["differences"] = []
            return out
        try:
            view = ctx.partitions.backend.read()
        except SmError as exc:
            out["subnet_manager"]["error"] = str(exc)
            out["differences"] = None
            return out
        part = view.partitions.get(key)
        have = dict(part.members) if part else {}
        out["subnet_manager"].update({
            "exists": part is not None, "operator_owned": bool(part and part.operator_owned),
            "members": [{"guid": g, "membership": m} for g, m in have.items()]})
        out["differences"] = _differences(key, members, have)
        return out

    @r.post("/sync", dependencies=[admin])
    def sync_partitions() -> dict[str, Any]:
        """Compare the subnet manager with the allocations now and send what differs (one
        batch). 409 when another controller replica drives the SM at the moment."""
        report = ctx.partitions.run_pass(full=True, wait=True)
        if not report.ran:
            raise SyncElsewhereError()
        return report.view()

    return r


def _differences(pkey: int, members: list[dict[str, Any]], have: Mapping[str, str]) -> list[str]:
    out = []
    wanted = {m["guid"]: m for m in members}
    for guid, m in wanted.items():
        got = have.get(guid)
        if m["state"] in (pt.PENDING_ADD, pt.MEMBER) and got != m["membership"]:
            out.append(f"{guid}: wanted as a {m['membership']} member, the SM has it "
                       f"{'as ' + got if got else 'not at all'}")
        elif m["state"] == pt.PENDING_REMOVE and got is not None:
            out.append(f"{guid}: leaving, the SM still has it as a {got} member")
    out.extend(f"{guid}: the SM has it as a {m} member; no allocation needs it"
               for guid, m in have.items() if guid not in wanted)
    return out
