"""``/v1/instances/{id}/metadata/...``: what the instance's guest reads, as a metadata service
or a config drive would hold it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from vfkeeper.controller import metadata
from vfkeeper.controller.auth import require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import InstanceId
from vfkeeper.guest import config_drive as drives
from vfkeeper.guest.documents import GuestDocuments

JSON = "application/json"
YAML = "application/yaml"
TEXT = "text/plain; charset=utf-8"
ISO = "application/x-iso9660-image"

OPENSTACK: dict[str, tuple[Callable[[GuestDocuments], str], str]] = {
    "network_data.json": (lambda d: d.network_data_json, JSON),
    "meta_data.json": (lambda d: d.meta_data_json, JSON),
}
NOCLOUD: dict[str, tuple[Callable[[GuestDocuments], str], str]] = {
    "network-config": (lambda d: d.nocloud_network_config, YAML),
    "meta-data": (lambda d: d.nocloud_meta_data, YAML),
    "user-data": (lambda d: d.nocloud_user_data, TEXT),
}


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/instances/{instance_id}/metadata", tags=["metadata"])
    viewer = require_viewer(ctx.auth)

    def serve(instance_id: str, document: tuple[Callable[[GuestDocuments], str], str]
              ) -> Response:  # fmt: skip
        with ctx.db.read(snapshot=True) as s:
            docs = metadata.documents(s, instance_id)
        text, media_type = document
        return Response(text(docs), media_type=media_type)

    @r.get("/openstack/latest/{name}", dependencies=[viewer],
           responses={200: {"content": {JSON: {}}}})
    def openstack(instance_id: InstanceId,
                  name: Literal["network_data.json", "meta_data.json"]) -> Response:
        """OpenStack's ``network_data.json`` (links, networks, services; valid against Nova's
        schema) or ``meta_data.json`` (uuid, name, hostname, public_keys)."""
        return serve(instance_id, OPENSTACK[name])

    @r.get("/nocloud/{name}", dependencies=[viewer],
           responses={200: {"content": {YAML: {}, TEXT: {}}}})
    def nocloud(instance_id: InstanceId,
                name: Literal["network-config", "meta-data", "user-data"]) -> Response:
        """cloud-init NoCloud ``network-config`` (version 2), ``meta-data`` or ``user-data``."""
        return serve(instance_id, NOCLOUD[name])

    @r.get("/config-drive", dependencies=[viewer],
           responses={200: {"content": {ISO: {}}}})
    def config_drive(instance_id: InstanceId,
                     format: Literal["config-2", "nocloud"] = "config-2") -> Response:
        """The documents as an ISO 9660 config drive: label ``config-2`` with
        ``openstack/latest/…`` (cloud-init's ConfigDrive source) or ``cidata`` with NoCloud's
        files at its root."""
        with ctx.db.read(snapshot=True) as s:
            docs = metadata.documents(s, instance_id)
        image = drives.config_drive(docs, format)
        return Response(image, media_type=ISO, headers={
            "Content-Disposition": f'attachment; filename="{instance_id}-{format}.iso"'})

    return r
