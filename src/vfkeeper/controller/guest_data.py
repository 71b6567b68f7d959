"""What a boot tells the guest besides its network: its host name, SSH public keys and user
data, checked where they enter and stored with the instance (``instance_guest``).

* ``hostname``: an RFC 1123 name (labels of letters, digits and ``-``, not starting or ending
  with ``-``, at most 63 characters each and 253 in all). Left out: the instance's name made
  into one, as Nova does (lower case, other characters become ``-``).
* ``public_keys``: name → an OpenSSH public key on one line (``ssh-ed25519 AAAA… comment``),
  as Nova's ``meta_data.json`` carries them.
* ``user_data``: text up to 64 KiB encoded (Nova's limit is 64 KiB of base64; cloud-init reads
  it as the NoCloud ``user-data`` file).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import insert
from sqlalchemy.orm import Session

from vfkeeper.domain.text import TextRules
from vfkeeper.store.guest_models import InstanceGuest

MAX_USER_DATA = 65536
MAX_KEYS = 32
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_KEY = re.compile(r"(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}"
                  r"( [^\r\n]*)?")


def check_hostname(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value[:80]!r} is not a host name: use labels of lower-case letters, "
                         "digits and '-' (not first or last), 1-63 characters each, joined by "
                         "'.', 253 in all")
    return value


def hostname_from(name: str) -> str:
    """An instance name made into a host name, as Nova does: ``My VM_1`` → ``my-vm-1``."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return text or "instance"


def _check_key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise ValueError("not an OpenSSH public key on one line, such as 'ssh-ed25519 AAAAC3… "
                         "user@host' (the contents of a .pub file)")
    return value


def _check_user_data(value: str) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_USER_DATA:
        raise ValueError(f"user data is {size} bytes; at most {MAX_USER_DATA} (64 KiB) fit")
    return value


Hostname = Annotated[str, AfterValidator(check_hostname)]
KeyName = Annotated[str, TextRules(255)]
PublicKey = Annotated[str, TextRules(16384), AfterValidator(_check_key)]
PublicKeys = Annotated[dict[KeyName, PublicKey], Field(max_length=MAX_KEYS)]
UserData = Annotated[str, TextRules(MAX_USER_DATA, min_length=0, prose=True),
                     AfterValidator(_check_user_data)]


def save(session: Session, instance_id: str, hostname: str | None,
         public_keys: dict[str, str], user_data: str | None) -> None:
    """Store what the boot gave (nothing when it gave nothing: the defaults need no row)."""
    if hostname is None and not public_keys and user_data is None:
        return
    session.execute(insert(InstanceGuest).values(
        instance_id=instance_id, hostname=hostname, public_keys=public_keys,
        user_data=user_data))


def guest_of(session: Session, instance_id: str, name: str) -> dict[str, Any]:
    """``{"hostname", "public_keys", "user_data"}`` of an instance, with the defaults."""
    row = session.get(InstanceGuest, instance_id)
    return {"hostname": (row.hostname if row and row.hostname else hostname_from(name)),
            "public_keys": dict(row.public_keys) if row else {},
            "user_data": row.user_data if row else None}
