"""What a boot tells the guest besides its network (host name, SSH keys, user data): checked
where it enters, on SQLite and PostgreSQL, with nothing written when it is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vfkeeper.controller.guest_data import guest_of, hostname_from

Inventory = Any
SPECS = [{"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"}]
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz3l2Zb0s5n1i3m1GpXQ2w8tH9b1X0rQ1kQyC1mZ0Zy "
       "alice@laptop")


@pytest.fixture
def port(api: httpx.Client, inventory: Inventory) -> str:
    assert api.put("/v1/hosts/host-a/inventory", json=inventory("host-a", vfs=2)).is_success
    assert api.put("/v1/device-specs", json={"entries": SPECS}).is_success
    assert api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                          "segmentation": {"type": "vlan", "id": 100}}
                    ).is_success
    return str(api.post("/v1/ports", json={"network": "n1"}).json()["id"])


def test_what_the_boot_gave_is_stored_and_defaults_fill_the_rest(
        api: httpx.Client, port: str, app: Any) -> None:
    resp = api.post("/v1/instances", json={"name": "Web Server_1", "ports": [port],
                                           "public_keys": {"alice": KEY},
                                           "user_data": "#cloud-config\nruncmd: [true]\n"})
    assert resp.status_code == 201, resp.text
    with app.state.ctx.db.read() as s:
        stored = guest_of(s, resp.json()["id"], "Web Server_1")
    assert stored == {"hostname": "web-server-1", "public_keys": {"alice": KEY},
                      "user_data": "#cloud-config\nruncmd: [true]\n"}


@pytest.mark.parametrize(("extra", "field", "says"), [
    ({"hostname": "-bad"}, "hostname", "not a host name"),
    ({"hostname": "a" * 64}, "hostname", "1-63 characters"),
    ({"hostname": "UPPER"}, "hostname", "lower-case"),
    ({"public_keys": {"k": "not a key"}}, "public_keys", "OpenSSH public key"),
    ({"public_keys": {"k": KEY + "\nssh-rsa AAAA"}}, "public_keys", "control character"),
    ({"user_data": "x" * 65537}, "user_data", "at most 65536 characters"),
    ({"user_data": "é" * 32769}, "user_data", "65538 bytes"),
])
def test_bad_guest_data_is_422_naming_the_field_and_nothing_is_booted(
        api: httpx.Client, port: str, extra: dict[str, Any], field: str, says: str) -> None:
    resp = api.post("/v1/instances", json={"name": "vm", "ports": [port], **extra})
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["error"]["message"] and says in resp.json()["error"]["message"]
    assert api.get("/v1/instances").json() == []


def test_exactly_64_kib_of_user_data_fits(api: httpx.Client, port: str) -> None:
    resp = api.post("/v1/instances", json={"name": "vm", "ports": [port],
                                           "user_data": "x" * 65536})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(("name", "hostname"), [
    ("vm", "vm"), ("My VM_1", "my-vm-1"), ("--x--", "x"), ("***", "instance"),
    ("a" * 70, "a" * 63), ("é-host", "host")])
def test_a_host_name_is_made_from_the_instance_name_as_nova_does(name: str,
                                                                  hostname: str) -> None:
    assert hostname_from(name) == hostname
