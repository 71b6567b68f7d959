"""Why a device did or did not match: spec by spec, key by key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Match:
    """The first spec that matched a device, and the tags the device takes from it."""

    spec_index: int
    tags: Mapping[str, Any]


@dataclass(frozen=True)
class KeyVerdict:
    key: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class SpecVerdict:
    spec_index: int
    source: str
    spec: Mapping[str, Any]
    matched: bool
    keys: tuple[KeyVerdict, ...]
    shadowed_by: int | None
    """For a spec that matches too, the earlier spec that won (the first match decides)."""

    @property
    def deciding_key(self) -> str | None:
        """The first key that failed, or ``None`` when every key passed."""
        return next((k.key for k in self.keys if not k.ok), None)


@dataclass(frozen=True)
class Explanation:
    address: str
    device: str
    """A one-line summary of the device (type, IDs, parent, driver, netdevs)."""
    specs: tuple[SpecVerdict, ...]
    match: Match | None

    @property
    def verdict(self) -> str:
        if self.match is not None:
            return (f"{self.address} is assignable: spec #{self.match.spec_index} is the first "
                    f"that matches, so the device takes its tags {dict(self.match.tags)}")
        if not self.specs:
            return f"{self.address} is not assignable: there are no device specs"
        deciding = ", ".join(f"#{s.spec_index}: {s.deciding_key}" for s in self.specs)
        return (f"{self.address} is not assignable: no spec matches "
                f"(failing key per spec: {deciding})")

    def lines(self) -> list[str]:
        out = [f"device {self.address}: {self.device}"]
        for s in self.specs:
            if s.matched and s.shadowed_by is None:
                head = "MATCH (first match wins)"
            elif s.matched:
                head = f"matches too, but spec #{s.shadowed_by} comes first"
            else:
                head = f"no match — deciding key: {s.deciding_key}"
            src = f" [{s.source}]" if s.source else ""
            out.append(f"spec #{s.spec_index}{src} {dict(s.spec)}: {head}")
            if not s.keys:
                out.append("    (no match keys: every device matches)")
            for k in s.keys:
                out.append(f"    {'ok ' if k.ok else 'NO '} {k.key}: {k.detail}")
        out.append(self.verdict)
        return out
