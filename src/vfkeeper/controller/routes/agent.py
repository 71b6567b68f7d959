"""``PUT /v1/hosts/{name}/actual-state``: what a host's agent reports after each pass."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vfkeeper.controller import agent_state, task_reports
from vfkeeper.controller.auth import require_host_access
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import HostName
from vfkeeper.domain.agent_state import ActualState


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/hosts", tags=["hosts"])

    @r.put("/{name}/actual-state",
           dependencies=[require_host_access(ctx.auth, "report the actual state", write=True)])
    def put_actual_state(name: HostName, state: ActualState) -> dict[str, Any]:
        """Per port: phase, status (BUILD/ACTIVE/DOWN/ERROR), last error, what the host shows;
        plus devices held by unknown domains (never handed out), vanished and releasing ones;
        plus how far the host got with its part of instances' lifecycle tasks; plus what keeps
        the agent from reconciling the host (``problems``: no instance is placed there while
        the last report has one)."""
        with ctx.db.write() as s:
            stored = agent_state.store_actual(s, name, state, ctx.clock())
        # Its own transaction, which locks the instance, its ports, then its hosts in id order
        # like every write touching two hosts (none holds a host's lock while it waits for
        # another row, so none can deadlock with a claim or a delete).
        with ctx.db.write() as s:
            tasks = state.tasks if state.complete else ()  # a failed pass reports none
            applied = task_reports.apply_reports(s, name, tasks)
        stored["tasks_ended"], stored["tasks_refused"] = applied.ended, applied.refused
        return stored

    return r
