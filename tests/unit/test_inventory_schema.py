"""Pins the JSON form of HostInventory (what agents send and ``discover --json`` prints), so
it cannot drift silently, and checks docs/inventory-schema.md documents every field."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vfkeeper.domain.inventory import SCHEMA_VERSION, HostInventory

GOLDEN = Path(__file__).with_suffix(".golden.json")
DOC = Path(__file__).parents[2] / "docs" / "inventory-schema.md"

HOW_TO_UPDATE = (
    "HostInventory's JSON schema changed. If that is deliberate: (1) bump SCHEMA_VERSION in "
    "src/vfkeeper/domain/inventory.py (any change, an added optional field too: readers refuse "
    "unknown fields); (2) describe the change in docs/inventory-schema.md's history and tell "
    "the controller which versions to accept; (3) regenerate the golden file with "
    "VFKEEPER_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_inventory_schema.py"
)


def _structure(node: Any) -> Any:
    """The schema without prose (titles, descriptions): names, types, defaults, required."""
    if isinstance(node, dict):
        return {k: _structure(v) for k, v in node.items() if k not in ("title", "description")}
    if isinstance(node, list):
        return [_structure(v) for v in node]
    return node


def current() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION,
            "schema": _structure(HostInventory.model_json_schema())}


def test_schema_matches_the_golden_file() -> None:
    if os.environ.get("VFKEEPER_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")
    assert json.loads(GOLDEN.read_text()) == current(), HOW_TO_UPDATE


def _fields(schema: dict[str, Any]) -> set[str]:
    names = set(schema["properties"])
    for sub in schema.get("$defs", {}).values():
        names |= set(sub["properties"])
    return names


def test_docs_describe_every_field_and_the_version() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    missing = _fields(current()["schema"]) - documented
    assert not missing, f"docs/inventory-schema.md lacks rows for: {sorted(missing)}"
    assert f"Current `schema_version`: **{SCHEMA_VERSION}**" in text
