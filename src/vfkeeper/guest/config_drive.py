"""Config-drive images: an ISO 9660 filesystem with the label cloud-init looks for.

``config-2`` holds ``openstack/latest/{meta_data.json,network_data.json,user_data}`` (what
Nova's config drive holds; cloud-init's ConfigDrive source); ``cidata`` holds NoCloud's
``meta-data``, ``user-data`` and ``network-config`` at the root. Built with pycdlib (a
maintained pure-Python ISO library), with Rock Ridge and Joliet names so every reader sees the
real file names; the plain ISO 9660 names are placeholders (``F0.;1``), as no reader of a
config drive uses them. The only module of :mod:`vfkeeper.guest` that does I/O, and only to the
file it is given.
"""

from __future__ import annotations

import io
from pathlib import Path

import pycdlib

from vfkeeper.guest.documents import DriveFormat, GuestDocuments

LABELS: dict[DriveFormat, str] = {"config-2": "config-2", "nocloud": "cidata"}


def build_iso(files: dict[str, bytes], label: str) -> bytes:
    """An ISO 9660 image (Rock Ridge + Joliet) with volume label ``label`` holding ``files``
    (path inside the image -> content)."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label)
    dirs: dict[str, str] = {"": ""}
    try:
        for index, path in enumerate(sorted(files)):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                rel = "/".join(parts[:depth])
                if rel not in dirs:
                    dirs[rel] = f"{dirs['/'.join(parts[:depth - 1])]}/D{len(dirs)}"
                    iso.add_directory(dirs[rel], rr_name=parts[depth - 1],
                                      joliet_path="/" + rel)
            content = files[path]
            parent = dirs["/".join(parts[:-1])]
            iso.add_fp(io.BytesIO(content), len(content), f"{parent}/F{index}.;1",
                       rr_name=parts[-1], joliet_path="/" + path)
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


def config_drive(documents: GuestDocuments, fmt: DriveFormat) -> bytes:
    """The config drive of an instance's documents, in ``fmt``."""
    return build_iso(documents.files(fmt), LABELS[fmt])


def write_config_drive(documents: GuestDocuments, fmt: DriveFormat, out: Path) -> None:
    """Write the config drive to ``out`` (replaced whole: written beside it, then renamed)."""
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(config_drive(documents, fmt))
    tmp.replace(out)
