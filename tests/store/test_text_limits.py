"""The limits the shared documents (agent reports, inventories) set on their text are the
lengths of the columns the controller stores that text in: they cannot drift apart."""

from __future__ import annotations

from vfkeeper.controller.fields import column_length
from vfkeeper.domain import agent_state, inventory_rules
from vfkeeper.store.agent_models import PortActual
from vfkeeper.store.models import Device, Host, Instance, Network, Port


def test_agent_report_limits_are_the_columns() -> None:
    assert agent_state.ID_MAX == column_length(Port.id) == column_length(Instance.id)
    assert column_length(Instance.task_id) == agent_state.ID_MAX
    assert column_length(PortActual.last_error) == agent_state.LAST_ERROR_MAX
    assert column_length(PortActual.waiting_for) == agent_state.WAITING_FOR_MAX


def test_inventory_limits_fit_the_columns() -> None:
    assert column_length(Host.name) == inventory_rules.HOSTNAME_MAX
    assert len("0000:00:00.0") <= column_length(Device.address)
    assert len("0000:00:00.0") <= column_length(PortActual.address)


def test_a_specs_physical_network_fits_the_devices_column() -> None:
    assert column_length(Network.physical_network) == column_length(Device.physical_network)
