"""Pins the REST API's OpenAPI document and the agent<->controller desired-state document, so
neither can drift silently. (The other direction, the inventory document, is pinned by
``tests/unit/test_inventory_schema.py``.)

After a deliberate change, regenerate the golden files and review the diff:

    VFKEEPER_REGEN_GOLDEN=1 .venv/bin/pytest tests/controller/test_schema_pins.py

then update docs/api.md (and bump ``ACCEPTED_SCHEMA_VERSIONS`` handling or agents, if the
desired-state document changed incompatibly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.domain.desired_state import DesiredState

HERE = Path(__file__).parent
REGEN = "VFKEEPER_REGEN_GOLDEN"


def _check(document: dict[str, Any], golden: Path, what: str) -> None:
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if os.environ.get(REGEN):
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: create it with {REGEN}=1 pytest {__file__}"
    assert text == golden.read_text(), (
        f"the {what} changed. If that is deliberate, regenerate {golden.name} with "
        f"`{REGEN}=1 .venv/bin/pytest tests/controller/test_schema_pins.py`, review the diff, "
        "update docs/api.md, and commit them together; otherwise undo the change."
    )


def test_the_openapi_document_is_pinned(tmp_path: Path) -> None:
    app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp_path / 'pin.sqlite'}"))
    document = app.openapi()
    document["info"]["version"] = "<vfkeeper version>"  # releases must not break the pin
    app.state.ctx.db.dispose()
    _check(document, HERE / "openapi.golden.json", "OpenAPI document")


def test_the_desired_state_document_is_pinned() -> None:
    _check(DesiredState.model_json_schema(), HERE / "desired_state.golden.json",
           "desired-state document agents read (GET /v1/hosts/{name}/desired-state)")


def test_the_controller_and_the_agent_share_the_one_desired_state_model(tmp_path: Path) -> None:
    """The document has one model in the domain core: the route serves it and the agent's
    client validates with it, so the golden file above pins both sides."""
    from vfkeeper.agent import controller_client

    app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp_path / 'pin.sqlite'}"))
    document = app.openapi()
    app.state.ctx.db.dispose()
    served = document["paths"]["/v1/hosts/{name}/desired-state"]["get"]["responses"]["200"]
    assert served["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DesiredState"}
    component = document["components"]["schemas"]["DesiredState"]
    assert component["description"] == DesiredState.model_json_schema()["description"]
    assert set(component["properties"]) == set(DesiredState.model_fields)
    assert controller_client.DesiredState is DesiredState
