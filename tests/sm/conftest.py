"""The ``ibsim`` tier's fixtures: one simulated fabric with the real OpenSM per test module.

Where ibsim or OpenSM is missing, or the fabric does not come up, the tests skip and say how
to install them; ``VFKEEPER_IBSIM_REQUIRED=1`` (``./dev.sh test`` sets it in CI once the
Debian packages are installed) turns that skip into a failure, so a broken harness cannot hide
behind skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ibsim_fabric import PORT_GUIDS, Fabric, FabricUnavailable


def unavailable(reason: str) -> None:
    if os.environ.get("VFKEEPER_IBSIM_REQUIRED") == "1":
        pytest.fail(f"{reason} (VFKEEPER_IBSIM_REQUIRED=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def fabric(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Fabric]:
    """A running fabric; its partitions file starts as the module's ``INITIAL_PARTITIONS``."""
    initial: str = request.module.INITIAL_PARTITIONS
    fab = Fabric(tmp_path_factory.mktemp("ibsim"), PORT_GUIDS)
    try:
        fab.start(initial)
    except FabricUnavailable as exc:
        unavailable(f"the ibsim + OpenSM fabric is unavailable: {exc}")
    try:
        yield fab
    finally:
        fab.stop()
