"""The controller's settings (``docs/configuration.md`` § Controller documents each one)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vfkeeper.controller.addresses import parse_guid_range, parse_mac_prefix
from vfkeeper.domain.migration import check_domain

DEFAULT_DB_URL = "sqlite:///vfkeeper.sqlite"
DEFAULT_LISTEN = "127.0.0.1:8470"
DEFAULT_MAC_PREFIX = "02:76:66"
DEFAULT_GUID_RANGE = "0x0276660000000001-0x027666fffffffffe"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""16 MiB: a host of 4,160 PCI functions (64 ConnectX-5 PFs x 64 VFs, 128-entry PKey tables)
sends a 4.0 MB inventory, the discovery benchmark's 1,040-function host 1.0 MB."""


class ControllerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str = DEFAULT_DB_URL
    listen: str = DEFAULT_LISTEN
    auth: bool = True
    """False only with ``--insecure-no-auth``: every request is treated as admin."""
    mac_prefix: str = DEFAULT_MAC_PREFIX
    guid_range: str = DEFAULT_GUID_RANGE
    agent_timeout_s: float = Field(default=90.0, gt=0)
    """An agent not heard from for this long counts as dead; its host gets no new instances."""
    weigher: Literal["pack", "spread"] = "pack"
    claim_attempts: int = Field(default=8, ge=1)
    """How often a boot re-schedules after losing a race for the devices it picked."""
    token_cache_ttl_s: float = Field(default=10.0, ge=0)
    """How long a verified bearer token's role is trusted without a database look-up (0: look
    it up on every request); a token removed from the database stops working within it."""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    """The largest request body accepted (413 above it; see docs/api.md)."""
    migration_domains: tuple[str, ...] = ()
    """DNS domains a host's name may be qualified with in the migration URI its agent
    announces (``host-a.example.org`` needs ``example.org``); none: only the bare name."""

    @field_validator("migration_domains")
    @classmethod
    def _migration_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_domain(d) for d in value)
    subnet_manager: Literal["none", "opensm", "ufm"] = "none"
    """Which subnet manager vfkeeper puts InfiniBand port GUIDs into partitions with
    (:mod:`vfkeeper.controller.sm_setup`); ``none``: membership is managed outside vfkeeper."""
    partitions_file: str | None = None
    partitions_base: str | None = None
    opensm_pidfile: str | None = None
    opensm_reload_command: str | None = None
    ufm_url: str | None = None
    ufm_user: str | None = None
    ufm_password_file: str | None = None
    ufm_token_file: str | None = None
    ufm_ca_file: str | None = None
    ufm_insecure: bool = False
    ufm_timeout_s: float = Field(default=10.0, gt=0)
    opensm_readback: bool = False
    """Read each changed port's PKey table back with ``smpquery`` after a reload."""
    partition_sync_interval_s: float = Field(default=60.0, gt=0)
    """How often the partition reconciler compares the SM's view with the allocations."""
    api_docs: bool = False
    """Serve ``/docs`` (Swagger UI) and ``/redoc``: FastAPI's pages, which load their scripts
    and styles from the jsDelivr CDN, so the browser needs the internet. ``/openapi.json`` is
    served either way."""

    @field_validator("mac_prefix")
    @classmethod
    def _mac_prefix(cls, value: str) -> str:
        parse_mac_prefix(value)
        return value

    @field_validator("guid_range")
    @classmethod
    def _guid_range(cls, value: str) -> str:
        parse_guid_range(value)
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8470`` for IPv6) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address {value!r} is not HOST:PORT (e.g. 127.0.0.1:8470)")
    return host.strip("[]"), int(port)
