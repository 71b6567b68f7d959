"""Fixtures for tests against libvirt itself: its RelaxNG schemas and its ``test:///default``
driver (defines and starts domains and networks in memory; checks no host resources).

Every test module here sets ``pytestmark = pytest.mark.libvirt``. Tests are skipped, with the
reason, when the binding or the schemas are missing (``./dev.sh`` installs both).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCHEMAS = Path("/usr/share/libvirt/schemas")

LIBVIRT_MISSING = "libvirt-python is not installed (./dev.sh installs it; needs libvirt-dev)"
LXML_MISSING = "lxml is not installed (pip install -e '.[dev]')"


def _schema(name: str) -> Any:
    etree = pytest.importorskip("lxml.etree", reason=LXML_MISSING)
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"libvirt schema {path} is missing (apt-get install libvirt-clients)")
    return etree.RelaxNG(file=str(path))


@pytest.fixture(scope="session")
def domain_rng() -> Any:
    return _schema("domain.rng")


@pytest.fixture(scope="session")
def network_rng() -> Any:
    return _schema("network.rng")


@pytest.fixture(scope="session")
def conn() -> Iterator[Any]:
    libvirt = pytest.importorskip("libvirt", reason=LIBVIRT_MISSING)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors reach us as exceptions
    c = libvirt.open("test:///default")
    yield c
    c.close()


def _validator(rng: Any) -> Callable[[str], None]:
    etree = pytest.importorskip("lxml.etree", reason=LXML_MISSING)

    def validate(xml: str) -> None:
        ok = rng.validate(etree.fromstring(xml))
        assert ok, f"libvirt's schema refuses it: {rng.error_log}\n{xml}"

    return validate


@pytest.fixture(scope="session")
def valid_domain(domain_rng: Any) -> Callable[[str], None]:
    """Asserts that a ``<domain>`` validates against domain.rng (shows libvirt's complaint)."""
    return _validator(domain_rng)


@pytest.fixture(scope="session")
def valid_network(network_rng: Any) -> Callable[[str], None]:
    """Asserts that a ``<network>`` validates against network.rng."""
    return _validator(network_rng)


@pytest.fixture
def name() -> str:
    """A unique object name: the test driver's state lives as long as the process."""
    return f"vfk-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def start_domain(conn: Any) -> Iterator[Callable[[str], str]]:
    """Define and start a domain; returns its live XML. Destroyed and undefined afterwards."""
    started: list[Any] = []

    def start(xml: str) -> str:
        dom = conn.defineXML(xml)
        started.append(dom)
        dom.create()
        assert dom.isActive()
        return str(dom.XMLDesc())

    yield start
    for dom in started:
        if dom.isActive():
            dom.destroy()
        dom.undefine()


@pytest.fixture
def start_network(conn: Any) -> Iterator[Callable[[str], str]]:
    """Define and start a network; returns its live XML. Destroyed and undefined afterwards."""
    started: list[Any] = []

    def start(xml: str) -> str:
        net = conn.networkDefineXML(xml)
        started.append(net)
        net.create()
        assert net.isActive()
        return str(net.XMLDesc())

    yield start
    for net in started:
        if net.isActive():
            net.destroy()
        net.undefine()
