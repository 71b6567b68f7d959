"""Fixtures of the agent tests; the simulated host itself is in ``agent_sim.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_sim import SimHost


@pytest.fixture
def host(tmp_path: Path) -> SimHost:
    return SimHost(tmp_path / "state")
