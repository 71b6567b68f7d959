"""Fixtures of the agent tests; the simulated host itself is in ``agent_sim.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_sim import SimHost, sim_agent, token
from fastapi import FastAPI

from manual_clock import ManualClock
from vfkeeper.agent.main import Agent
from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import ControllerSettings


@pytest.fixture
def host(tmp_path: Path) -> SimHost:
    return SimHost(tmp_path / "state")


@pytest.fixture
def app(migrated_db_url: str, clock: ManualClock) -> Iterator[FastAPI]:
    """An in-process controller whose agents count as dead after 60 s of the test clock."""
    application = create_app(ControllerSettings(db_url=migrated_db_url, agent_timeout_s=60),
                             clock=clock, seed=3)
    yield application
    application.state.ctx.db.dispose()


@pytest.fixture
def admin(app: FastAPI, asgi_transport: Callable[[Any], Any]) -> Iterator[httpx.Client]:
    with httpx.Client(transport=asgi_transport(app), base_url="http://vfk",
                      headers={"Authorization": f"Bearer {token(app, 'admin')}"}) as c:
        yield c


@pytest.fixture
def agent(app: FastAPI, asgi_transport: Callable[[Any], Any], tmp_path: Path) -> Agent:
    return sim_agent(app, asgi_transport(app), tmp_path)
