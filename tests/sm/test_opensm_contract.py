"""The subnet-manager contract on the real OpenSM, on a simulated fabric (ibsim).

The backend under test writes the partitions file OpenSM reads, HUPs OpenSM through the pidfile
and reads the ports back with ``smpquery``. On top of what each contract case checks through
``sm.read()``, every read here also checks the **simulated ports' real PKey tables**, with
``smpquery`` run by the harness (not by the backend): each port carries exactly the partitions
the file gives it, 0x8xxx for a full member and 0x0xxx for a limited one, and none after its
removal. Every batch must come back verified, with no difference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ibsim_fabric import PORT_GUIDS, Fabric, expected_tables
from sm_contract import SmContract

from vfkeeper.sm.opensm import OpenSmBackend, install_atomically
from vfkeeper.sm.opensm_tools import SignalReload, SmpqueryReadback
from vfkeeper.sm.partitions_file import render
from vfkeeper.sm.protocol import ApplyResult, ChangeSet, SmView

pytestmark = pytest.mark.ibsim

OPERATOR_PKEY = 0x0B01
BASE = (f"# The operator's own partitions.\nstorage=0x0b01, ipoib :\n"
        f"\t{PORT_GUIDS[3]}=full ;\n")
INITIAL_PARTITIONS = render(BASE, [])


class FabricCheckedSm:
    """The backend, with every read checked against the simulated ports' PKey tables."""

    def __init__(self, backend: OpenSmBackend, fabric: Fabric) -> None:
        self.backend = backend
        self.fabric = fabric

    @property
    def name(self) -> str:
        return self.backend.name

    def read(self) -> SmView:
        view = self.backend.read()
        expected = expected_tables(view, PORT_GUIDS)
        assert self.fabric.wait_for_tables(expected) == expected, "the fabric differs from the file"
        return view

    def apply(self, changes: ChangeSet) -> ApplyResult:
        result = self.backend.apply(changes)
        assert result.verified and result.differences == ()
        return result


def reset(fabric: Fabric, base_file: Path, base: str) -> None:
    """Back to the operator's base alone, on file and on the ports."""
    base_file.write_text(base)
    install_atomically(fabric.partitions_file, render(base, []))
    fabric.hup()


@pytest.fixture
def sm(fabric: Fabric) -> FabricCheckedSm:
    base_file = fabric.workdir / "base.conf"
    reset(fabric, base_file, BASE)
    backend = OpenSmBackend(fabric.partitions_file, base_file, SignalReload(fabric.pidfile),
                            SmpqueryReadback(fabric.runner))
    checked = FabricCheckedSm(backend, fabric)
    checked.read()  # the reset reached the ports
    return checked


@pytest.fixture
def port_guids() -> list[str]:
    return PORT_GUIDS


@pytest.fixture
def operator_pkey() -> int:
    return OPERATOR_PKEY


class TestOpenSm(SmContract):
    pass
