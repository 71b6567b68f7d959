"""The UFM backend meets the subnet-manager contract against a UFM server written from UFM's
documentation (``ufm_server.py``), over real HTTPS with a CA the test makes, once with HTTP
Basic auth on ``/ufmRest`` and once with an access token on ``/ufmRestV3``."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sm_contract import A, B, SmContract
from tls_certs import TestCa, make_ca
from ufm_server import UfmPKey, UfmServer

from vfkeeper.sm.ufm import BasicAuth, TokenAuth, UfmBackend

GUIDS = [f"0x0002c903000000{n:02x}" for n in range(1, 5)]
OPERATOR = 0x0B01


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(Path(tmp_path_factory.mktemp("ufm-ca")))


@pytest.fixture
def ufm(ca: TestCa) -> Iterator[UfmServer]:
    with UfmServer(pkeys=[UfmPKey(OPERATOR, {GUIDS[3]: "full"}, name="storage")],
                   tls=ca) as server:
        yield server


@pytest.fixture
def port_guids() -> list[str]:
    return list(GUIDS)


@pytest.fixture
def operator_pkey() -> int:
    return OPERATOR


@pytest.fixture(params=["basic", "token"])
def sm(request: pytest.FixtureRequest, ufm: UfmServer, ca: TestCa) -> Iterator[UfmBackend]:
    auth: BasicAuth | TokenAuth = BasicAuth("admin", "123456")
    if request.param == "token":  # made the way an operator makes one: POST /app/tokens
        answer = httpx.post(f"{ufm.url}/ufmRest/app/tokens", auth=("admin", "123456"),
                            verify=ssl.create_default_context(cafile=ca.ca_file))
        auth = TokenAuth(answer.json()["access_token"])
    with UfmBackend(ufm.url, auth, owned={A, B}, ca_file=ca.ca_file, timeout=10) as backend:
        yield backend
    prefix = "/ufmRestV3/" if request.param == "token" else "/ufmRest/resources/"
    assert any(r.path.startswith(prefix) for r in ufm.requests)


class TestUfm(SmContract):
    pass
