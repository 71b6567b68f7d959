"""A host's agent may announce as its migration URI only libvirt's network transports to the
host itself: a stolen agent token must not make another host's libvirt run a command, pass
options to ssh or open a local socket or key (the source host hands the URI to libvirt)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings

GOOD = "qemu+tcp://host-a/system"

MALICIOUS = [
    "qemu+ext:///system?command=/tmp/evil",
    "qemu+ssh://-oProxyCommand=…",
    "qemu+ssh://-oProxyCommand=sh${IFS}-c${IFS}id/system",
    "file:///etc/passwd",
    "qemu+ssh://host-a/system?keyfile=/root/.ssh/id_rsa",
    "qemu+tcp://host-a/system?socket=/run/libvirt/evil",
    "qemu+ssh://host-a/system?netcat=/tmp/evil",
    "qemu+unix:///system?socket=/tmp/s",
    "qemu+tcp://host-b/system",  # another host's libvirt
    "qemu+tcp://host-a.attacker.test/system",  # a domain the controller was not given
    "qemu+tcp://host-a/system;reboot",
    "qemu+tcp://root@host-a/system",
]


def _client(app: FastAPI, role: str, transport: Callable[[Any], Any]) -> httpx.Client:
    with app.state.ctx.db.write() as s:
        token = create_token(s, role, "migration URI test")
    return httpx.Client(transport=transport(app), base_url="http://vfkeeper",
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def agent_a(app: FastAPI, api: httpx.Client, inventory: Callable[..., dict[str, Any]],
            asgi_transport: Callable[[Any], Any]) -> Iterator[httpx.Client]:
    """host-a's agent (its host registered by its inventory), its URI announced once."""
    assert api.put("/v1/hosts/host-a/inventory", json=inventory("host-a")).is_success
    with _client(app, "agent:host-a", asgi_transport) as agent:
        assert agent.post("/v1/hosts/host-a/heartbeat",
                          json={"migration_uri": GOOD}).status_code == 204
        yield agent


def _stored(api: httpx.Client) -> str | None:
    return api.get("/v1/hosts/host-a").json()["agent"]["migration_uri"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("uri", MALICIOUS)
def test_a_uri_that_could_run_something_elsewhere_is_refused_at_the_heartbeat(
    agent_a: httpx.Client, api: httpx.Client, uri: str
) -> None:
    resp = agent_a.post("/v1/hosts/host-a/heartbeat", json={"migration_uri": uri})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == "migration_uri"
    assert error["details"]["given"] == uri
    assert error["message"].startswith("migration_uri: ")
    assert " is refused: " in error["message"]  # what was wrong ...
    assert "send qemu+tcp://host-a/system" in error["message"]  # ... and what to send
    assert _stored(api) == GOOD  # nothing changed


def test_the_agents_good_uris_are_stored(agent_a: httpx.Client, api: httpx.Client) -> None:
    assert _stored(api) == GOOD
    for uri in ("qemu+tls://host-a:16514/system", "qemu+ssh://migrate@host-a/system"):
        assert agent_a.post("/v1/hosts/host-a/heartbeat",
                            json={"migration_uri": uri}).status_code == 204
        assert _stored(api) == uri
    assert agent_a.post("/v1/hosts/host-a/heartbeat").status_code == 204  # no body: kept
    assert _stored(api) == "qemu+ssh://migrate@host-a/system"


def test_an_admin_heartbeat_is_held_to_the_same_rule(agent_a: httpx.Client,
                                                     api: httpx.Client) -> None:
    resp = api.post("/v1/hosts/host-a/heartbeat",
                    json={"migration_uri": "qemu+ext:///system?command=/tmp/evil"})
    assert resp.status_code == 422 and _stored(api) == GOOD


def test_a_configured_migration_domain_qualifies_the_host_name(
    migrated_db_url: str, asgi_transport: Callable[[Any], Any],
    inventory: Callable[..., dict[str, Any]],
) -> None:
    app = create_app(ControllerSettings(db_url=migrated_db_url,
                                        migration_domains=("example.org",)))
    try:
        with _client(app, "admin", asgi_transport) as admin:
            assert admin.put("/v1/hosts/host-a/inventory",
                             json=inventory("host-a")).is_success
            ok = admin.post("/v1/hosts/host-a/heartbeat",
                            json={"migration_uri": "qemu+tls://host-a.example.org/system"})
            assert ok.status_code == 204
            refused = admin.post("/v1/hosts/host-a/heartbeat",
                                 json={"migration_uri": "qemu+tls://host-a.evil.test/system"})
            assert refused.status_code == 422
            assert "example.org" in refused.json()["error"]["message"]
            assert _stored(admin) == "qemu+tls://host-a.example.org/system"
    finally:
        app.state.ctx.db.dispose()
