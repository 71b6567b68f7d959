"""Every document a guest reads, rendered at once, as the files a config drive holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vfkeeper.guest import nocloud, openstack
from vfkeeper.guest.models import Instance

DriveFormat = Literal["config-2", "nocloud"]


@dataclass(frozen=True, slots=True)
class GuestDocuments:
    """The rendered text of each document, named as the metadata service serves it."""

    network_data_json: str
    meta_data_json: str
    user_data: str | None
    """OpenStack's ``openstack/latest/user_data``: only when user data was given."""
    nocloud_network_config: str
    nocloud_meta_data: str
    nocloud_user_data: str

    def files(self, fmt: DriveFormat) -> dict[str, bytes]:
        """The files of a config drive in ``fmt``, by path inside the drive."""
        if fmt == "nocloud":
            return {"meta-data": self.nocloud_meta_data.encode(),
                    "user-data": self.nocloud_user_data.encode(),
                    "network-config": self.nocloud_network_config.encode()}
        files = {"openstack/latest/meta_data.json": self.meta_data_json.encode(),
                 "openstack/latest/network_data.json": self.network_data_json.encode()}
        if self.user_data is not None:
            files["openstack/latest/user_data"] = self.user_data.encode()
        return files


def render(instance: Instance) -> GuestDocuments:
    return GuestDocuments(
        network_data_json=openstack.dumps(openstack.network_data(instance)),
        meta_data_json=openstack.dumps(openstack.meta_data(instance)),
        user_data=instance.user_data,
        nocloud_network_config=nocloud.dumps(nocloud.network_config(instance)),
        nocloud_meta_data=nocloud.dumps(nocloud.meta_data(instance)),
        nocloud_user_data=nocloud.user_data(instance),
    )
