"""Fixtures of the guest-configuration tests: the real tools they feed vfkeeper's output to.

Debian's ``cloud-init`` (its ``devel net-convert`` and its Python package, run by Debian's own
``python3``) and ``netplan.io`` (``netplan generate``), ``xorriso`` for reading config drives
back. Where one is missing the tests that need it skip and say how to install it;
``VFKEEPER_GUEST_TOOLS_REQUIRED=1`` (``./dev.sh test`` sets it in CI once the packages are
installed) turns that skip into a failure, so a broken harness cannot hide behind skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

INSTALL = ("install Debian's packages: apt-get install --no-install-recommends "
           "cloud-init netplan.io xorriso (./dev.sh setup does, as root)")


def unavailable(reason: str) -> None:
    if os.environ.get("VFKEEPER_GUEST_TOOLS_REQUIRED") == "1":
        pytest.fail(f"{reason} (VFKEEPER_GUEST_TOOLS_REQUIRED=1)", pytrace=False)
    pytest.skip(reason)


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        unavailable(f"{name} is not installed: {INSTALL}")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def cloud_init() -> str:
    return tool("cloud-init")


@pytest.fixture(scope="session")
def netplan() -> str:
    return tool("netplan")


@pytest.fixture(scope="session")
def xorriso() -> str:
    return tool("xorriso")


@pytest.fixture(scope="session")
def cloudinit_python() -> str:
    """Debian's python3, the interpreter the cloud-init package is installed for."""
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import cloudinit.sources.helpers.openstack"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable(f"Debian's python3 cannot import cloud-init: {probe.stderr.strip()[-200:]}; "
                    f"{INSTALL}")
    return python
