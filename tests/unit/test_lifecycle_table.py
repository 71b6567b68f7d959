"""The one table of instance lifecycle transitions (vfkeeper.domain.lifecycle)."""

from __future__ import annotations

import pytest

from vfkeeper.domain.lifecycle import (
    RUNNING,
    TASKS,
    UNPLUGGED_FOR,
    InstanceStatus,
    TaskKind,
    running_task,
    shown_status,
)

A, M, SG, S, R = ("ACTIVE", "MIGRATING", "SUSPENDING", "SUSPENDED", "RESUMING")


@pytest.mark.parametrize(("kind", "start", "running", "done", "undone"), [
    ("migrate", A, M, A, A),
    ("suspend", A, SG, S, A),
    ("resume", S, R, A, S),
])
def test_each_task_starts_runs_and_ends_as_documented(
        kind: str, start: str, running: str, done: str, undone: str) -> None:
    task = TASKS[TaskKind(kind)]
    assert (task.starts_from, task.running, task.done, task.undone) == (start, running, done,
                                                                        undone)
    assert running_task(running) is task


def test_settled_statuses_run_no_task_and_unplugging_covers_suspended() -> None:
    assert running_task(A) is None and running_task(S) is None
    assert {M, SG, R} == RUNNING
    assert {M, SG, R, S} == UNPLUGGED_FOR


def test_a_settled_instance_with_a_port_in_error_is_shown_error() -> None:
    assert shown_status(A, ["ACTIVE", "ERROR"]) is InstanceStatus.ERROR
    assert shown_status(A, ["ACTIVE", "BUILD"]) is InstanceStatus.ACTIVE
    assert shown_status(A, []) is InstanceStatus.ACTIVE
    # a running task says more than a port's error (which the task itself may cause)
    assert shown_status(M, ["ERROR"]) is InstanceStatus.MIGRATING
    assert shown_status(S, ["ERROR"]) is InstanceStatus.SUSPENDED
