"""The agent validates the desired state with the controller's own model: a document of
another release is refused with what to do, never half-understood."""

from __future__ import annotations

import httpx
import pytest

from vfkeeper.agent.controller_client import ControllerClient, DesiredStateMismatchError

PORT = {"address": "0000:03:00.1", "parent_pf": "0000:03:00.0", "vf_index": 0,
        "port_id": "p1", "vnic_type": "direct", "vif_type": "hw_veb",
        "mac": "02:76:66:00:00:01", "vlan": 100, "request_id": "r1", "instance_id": "i1",
        "instance_name": "vm1"}


def _client(document: dict[str, object]) -> ControllerClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=document))
    return ControllerClient("http://vfk", "t", "host-a", transport)


def test_a_document_of_this_release_is_read() -> None:
    state = _client({"host": "host-a", "generation": 3, "vfs": [PORT]}).desired_state()
    assert [(p.port_id, p.vlan) for p in state.vfs] == [("p1", 100)]


@pytest.mark.parametrize(("change", "named"), [
    ({"mtu_policy": "jumbo"}, "vfs.0.mtu_policy"),  # a field a newer controller sends
    ({"vlan": 5000}, "vfs.0.vlan"),                # a value outside what the model allows
])
def test_a_document_this_agent_does_not_understand_is_refused_saying_upgrade(
        change: dict[str, object], named: str) -> None:
    client = _client({"host": "host-a", "generation": 3, "vfs": [{**PORT, **change}]})
    with pytest.raises(DesiredStateMismatchError) as caught:
        client.desired_state()
    assert named in str(caught.value) and "upgrade this agent" in str(caught.value)
