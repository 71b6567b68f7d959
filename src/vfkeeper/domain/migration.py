"""Which libvirt migration URIs a host may announce for itself.

A host's agent tells the controller where peers' libvirt migrates domains to it (the heartbeat's
``migration_uri``); the controller hands that URI to the source host, whose agent passes it to
libvirt's ``virDomainMigrateToURI3``. libvirt's URIs can make the *source* run programs and open
files of the URI's choosing: ``qemu+ext`` runs its ``?command=``, ``qemu+ssh`` hands its host
part to ssh (``-oProxyCommand=...`` is an ssh option), and ``?socket=``, ``?keyfile=``,
``?netcat=``, ``?command=``, ``?proxy=`` name local sockets, keys and helper programs. So a host
may announce only:

* scheme ``qemu+tcp``, ``qemu+tls`` or ``qemu+ssh``;
* path ``/system``, and no query string or fragment at all;
* as host its own registered name, or that name followed by one of the controller's migration
  domains (``host-a.example.org`` with domain ``example.org``), optionally with ``:PORT``;
* with ``qemu+ssh`` only, an optional plain ``USER@``;
* letters, digits and ``. - _ : / @`` after the scheme, and no part starting with ``-``.

The controller checks this at the heartbeat (with its configured domains); the source host's
agent checks it again before it migrates (with any domain: it guards against a URI an older
controller stored, and the domain list is the controller's policy).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from vfkeeper.domain.errors import InvalidMigrationUriError, InvalidValueError

SCHEMES = ("qemu+tcp", "qemu+tls", "qemu+ssh")
PATH = "/system"
_ALLOWED = re.compile(r"[A-Za-z0-9._:/@-]")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class _Parts:
    """A URI split the way libvirt reads it: ``SCHEME://[USER@]HOST[:PORT]/PATH``."""

    scheme: str
    rest: str
    user: str | None
    hostname: str
    port: str | None
    path: str

    @classmethod
    def of(cls, uri: str) -> _Parts:
        scheme, _, rest = uri.partition("://")
        authority, slash, path = rest.partition("/")
        user, at, hostport = authority.rpartition("@")
        hostname, colon, port = hostport.partition(":")
        return cls(scheme, rest, user if at else None, hostname, port if colon else None,
                   slash + path)


def check_domain(domain: str) -> str:
    """``domain`` (lower case, without a trailing dot) when it is a DNS domain name, else
    ``InvalidValueError``."""
    name = domain.lower().removesuffix(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in name.split(".")):
        raise InvalidValueError("migration domain", domain,
                                "a DNS domain name such as example.org")
    return name


def expected_uris(host: str, domains: Collection[str] | None = None) -> str:
    """What a host named ``host`` may announce, for error messages."""
    names = " or ".join([repr(host), *(repr(f"{host}.{d}") for d in sorted(domains or ()))])
    return (f"qemu+tcp://{host}/system, qemu+tls://{host}/system or "
            f"qemu+ssh://[USER@]{host}/system, with host {names} and optionally :PORT "
            "after it, and no query string")


def check_migration_uri(uri: str, host: str, domains: Collection[str] | None = None) -> str:
    """``uri`` when host ``host`` may announce it as its migration URI, else
    :class:`InvalidMigrationUriError` saying why.

    ``domains``: the DNS domains a host's name may be qualified with; ``None`` accepts any
    (the agent's check), an empty collection none (only the bare name)."""
    parts = _Parts.of(uri)
    for check in _CHECKS:
        problem = check(parts)
        if problem:
            raise InvalidMigrationUriError(uri, problem, expected_uris(host, domains))
    problem = _foreign(parts.hostname, host, domains)
    if problem:
        raise InvalidMigrationUriError(uri, problem, expected_uris(host, domains))
    return uri


def _scheme(p: _Parts) -> str | None:
    if p.scheme in SCHEMES and p.rest:
        return None
    if not p.rest:
        return "it is not a URI of the form SCHEME://HOST/system"
    return (f"the scheme {p.scheme!r} is not accepted: only qemu+tcp, qemu+tls and qemu+ssh, "
            "the transports that connect to a peer's libvirtd (others run a program or open a "
            "file on the host that migrates)")


def _query(p: _Parts) -> str | None:
    if "?" not in p.rest and "#" not in p.rest:
        return None
    return ("it has a query string or fragment: none is accepted, because libvirt's URI "
            "parameters (command, socket, keyfile, netcat, proxy, ...) choose programs, sockets "
            "and keys on the host that migrates")


def _option(p: _Parts) -> str | None:
    for what, value in (("user name", p.user), ("host", p.hostname), ("port", p.port)):
        if value is not None and value.startswith("-"):
            return f"its {what} starts with '-', which ssh would take for an option"
    return None


def _characters(p: _Parts) -> str | None:
    bad = sorted({c for c in p.rest if not _ALLOWED.fullmatch(c)})
    if not bad:
        return None
    return (f"it contains {''.join(bad)!r}: after the scheme a migration URI has only letters, "
            "digits and . - _ : / @ (no spaces, quotes, '=' or shell characters)")


def _path(p: _Parts) -> str | None:
    if p.path == PATH:
        return None
    return (f"its path is {p.path!r}: migrations go to libvirt's system instance, "
            f"{PATH!r}, and nothing follows it")


def _user(p: _Parts) -> str | None:
    if p.user is None:
        return None
    if p.scheme != "qemu+ssh":
        return f"a user name ({p.user}@) is only used by qemu+ssh"
    if not _USER.fullmatch(p.user):
        return (f"the user name {p.user!r} is not a plain user name (letters, digits, '_', "
                "'.' and '-', at most 32)")
    return None


def _port(p: _Parts) -> str | None:
    if p.port is None or (p.port.isdigit() and 0 < int(p.port) < 65536):
        return None
    return f"its port {p.port!r} is not a number from 1 to 65535"


_CHECKS: tuple[Callable[[_Parts], str | None], ...] = (
    _scheme, _query, _option, _characters, _path, _user, _port)


def _foreign(hostname: str, host: str, domains: Collection[str] | None) -> str | None:
    """Why ``hostname`` (the URI's host) is not host ``host``, or None when it is."""
    given, own = hostname.lower(), host.lower()
    if given == own:
        return None
    if not given:
        return "it names no host (libvirt would take that for the migrating host itself)"
    suffix = given.removeprefix(own + ".") if given.startswith(own + ".") else None
    if suffix is None or not all(_LABEL.fullmatch(label) for label in suffix.split(".")):
        return (f"its host {hostname!r} is not this host: a host announces only its own "
                f"libvirt, under its registered name {host!r}")
    if domains is None or suffix in {d.lower().removesuffix(".") for d in domains}:
        return None
    configured = ", ".join(sorted(domains)) or "none"
    return (f"its host {hostname!r} qualifies {host!r} with domain {suffix!r}, which is not one "
            f"of the controller's migration domains ({configured}; 'vfkeeper serve "
            "--migration-domain' adds one)")
