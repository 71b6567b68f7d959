"""The subnet-manager backend ``vfkeeper serve --subnet-manager`` chose, built from the
controller's settings; a combination that cannot work is :class:`SmConfigError` at start."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.sm.errors import SmConfigError
from vfkeeper.sm.none import NoSubnetManager
from vfkeeper.sm.opensm import OpenSmBackend
from vfkeeper.sm.opensm_tools import CommandReload, Reload, SignalReload, SmpqueryReadback
from vfkeeper.sm.protocol import SubnetManager
from vfkeeper.sm.ufm import BasicAuth, TokenAuth, UfmBackend

OwnedPkeys = Callable[[], AbstractSet[int]]


def build_backend(settings: ControllerSettings, owned: OwnedPkeys) -> SubnetManager:
    """The backend for ``settings``; ``owned``: the PKeys vfkeeper manages (asked by UFM, which
    cannot tell who made a PKey)."""
    if settings.subnet_manager == "opensm":
        return _opensm(settings)
    _not_for("opensm", settings, partitions_file="--partitions-file",
             partitions_base="--partitions-base", opensm_pidfile="--opensm-pidfile",
             opensm_reload_command="--opensm-reload-command")
    if settings.subnet_manager == "ufm":
        return _ufm(settings, owned)
    _not_for("ufm", settings, ufm_url="--ufm-url", ufm_user="--ufm-user",
             ufm_password_file="--ufm-password-file", ufm_token_file="--ufm-token-file",
             ufm_ca_file="--ufm-ca-file")
    return NoSubnetManager()


def _not_for(backend: str, settings: ControllerSettings, **options: str) -> None:
    given = [flag for field, flag in options.items() if getattr(settings, field)]
    if given:
        raise SmConfigError(given[0], f"applies to --subnet-manager {backend} only, and "
                            f"--subnet-manager is {settings.subnet_manager}")


def _opensm(settings: ControllerSettings) -> OpenSmBackend:
    if not settings.partitions_file:
        raise SmConfigError("--partitions-file", "--subnet-manager opensm needs the partitions "
                            "file OpenSM reads (opensm -P PATH); vfkeeper owns that file")
    target = Path(settings.partitions_file)
    if not target.parent.is_dir():
        raise SmConfigError("--partitions-file", f"the directory {target.parent} does not "
                            "exist")
    base = Path(settings.partitions_base) if settings.partitions_base else None
    if base is not None and not base.is_file():
        raise SmConfigError("--partitions-base", f"{base} does not exist: create it (it may "
                            "be empty) or leave the setting out")
    reload: Reload
    if settings.opensm_pidfile and settings.opensm_reload_command:
        raise SmConfigError("--opensm-reload-command", "give --opensm-pidfile or "
                            "--opensm-reload-command, not both")
    if settings.opensm_reload_command:
        try:
            argv = tuple(shlex.split(settings.opensm_reload_command))
        except ValueError as exc:
            raise SmConfigError("--opensm-reload-command", f"cannot split it into words: "
                                f"{exc}") from exc
        reload = CommandReload(argv)
    elif settings.opensm_pidfile:
        reload = SignalReload(Path(settings.opensm_pidfile))
    else:
        raise SmConfigError("--opensm-pidfile", "--subnet-manager opensm needs a way to tell "
                            "OpenSM to reload: --opensm-pidfile PATH (SIGHUP to that pid) or "
                            "--opensm-reload-command CMD")
    readback = SmpqueryReadback() if settings.opensm_readback else None
    backend = OpenSmBackend(target, base, reload, readback)
    backend.read()  # an unreadable or broken installed file is refused now, not at first boot
    return backend


def _read_secret(path: str, flag: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise SmConfigError(flag, f"cannot read {path}: {exc.strerror or exc}") from exc


def _ufm(settings: ControllerSettings, owned: OwnedPkeys) -> UfmBackend:
    if not settings.ufm_url:
        raise SmConfigError("--ufm-url", "--subnet-manager ufm needs UFM's base address "
                            "(https://ufm.example.com)")
    auth: BasicAuth | TokenAuth
    if settings.ufm_token_file:
        if settings.ufm_user or settings.ufm_password_file:
            raise SmConfigError("--ufm-token-file", "give a token or a user and password, "
                                "not both")
        auth = TokenAuth(_read_secret(settings.ufm_token_file, "--ufm-token-file"))
    elif settings.ufm_user and settings.ufm_password_file:
        auth = BasicAuth(settings.ufm_user,
                         _read_secret(settings.ufm_password_file, "--ufm-password-file"))
    else:
        raise SmConfigError("--ufm-token-file", "--subnet-manager ufm needs credentials: "
                            "--ufm-token-file PATH, or --ufm-user NAME with "
                            "--ufm-password-file PATH")
    if settings.ufm_ca_file:
        try:
            Path(settings.ufm_ca_file).read_bytes()
        except OSError as exc:
            raise SmConfigError("--ufm-ca-file", f"cannot read {settings.ufm_ca_file}: "
                                f"{exc.strerror or exc}") from exc
    return UfmBackend(settings.ufm_url, auth, owned=owned, ca_file=settings.ufm_ca_file,
                      insecure=settings.ufm_insecure, timeout=settings.ufm_timeout_s)
