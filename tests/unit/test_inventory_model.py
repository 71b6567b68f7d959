import pydantic
import pytest

from vfkeeper.domain.inventory import Device, HostInventory


def _vf(addr: str, index: int) -> Device:
    return Device(address=addr, dev_type="type-VF", parent_addr="0000:03:00.0", vf_index=index)


def test_inventory_is_immutable() -> None:
    inv = HostInventory(hostname="h", devices=(Device(address="0000:03:00.0", dev_type="type-PF"),))
    with pytest.raises(pydantic.ValidationError):
        inv.devices[0].driver = "x"  # type: ignore[misc]


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        Device.model_validate({"address": "0000:03:00.0", "dev_type": "type-PF", "bogus": 1})


def test_vfs_of_orders_by_vf_index() -> None:
    inv = HostInventory(
        hostname="h",
        devices=(
            Device(address="0000:03:00.0", dev_type="type-PF"),
            _vf("0000:03:00.3", 2),
            _vf("0000:03:00.1", 0),
            _vf("0000:03:00.2", 1),
        ),
    )
    assert [d.vf_index for d in inv.vfs_of("0000:03:00.0")] == [0, 1, 2]


def test_a_version_1_document_reads_with_the_version_2_fields_null() -> None:
    doc = {"schema_version": 1, "hostname": "h",
           "devices": [{"address": "0000:03:00.0", "dev_type": "type-PF"}]}
    inv = HostInventory.model_validate(doc)
    assert inv.schema_version == 1
    assert (inv.devices[0].sriov_vf_device, inv.devices[0].vpd_serial) == (None, None)
