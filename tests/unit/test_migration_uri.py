"""The migration URIs a host may announce (``vfkeeper.domain.migration``): libvirt's network
transports to the host itself, nothing that makes the migrating host run a program, pass an
option to ssh or open a local socket or key."""

from __future__ import annotations

import pytest

from vfkeeper.domain.errors import InvalidMigrationUriError, InvalidValueError
from vfkeeper.domain.migration import check_migration_uri

GOOD = [
    "qemu+tcp://host-a/system",
    "qemu+tls://host-a/system",
    "qemu+ssh://host-a/system",
    "qemu+tcp://host-a:16509/system",
    "qemu+tls://HOST-A:16514/system",
    "qemu+ssh://root@host-a/system",
    "qemu+ssh://virt_mig.1@host-a:2222/system",
]


@pytest.mark.parametrize("uri", GOOD)
def test_libvirts_network_transports_to_the_host_itself_are_accepted(uri: str) -> None:
    assert check_migration_uri(uri, "host-a", domains=()) == uri


# (uri, words of the problem)
BAD = [
    ("qemu+ext:///system?command=/tmp/evil", "scheme 'qemu+ext' is not accepted"),
    ("qemu+ssh://-oProxyCommand=touch${IFS}/tmp/pwned/system", "starts with '-'"),
    ("qemu+ssh://-oProxyCommand=…", "starts with '-'"),
    ("file:///etc/passwd", "scheme 'file' is not accepted"),
    ("qemu+unix:///system?socket=/run/evil.sock", "scheme 'qemu+unix'"),
    ("qemu+libssh2://host-a/system", "scheme 'qemu+libssh2'"),
    ("qemu:///system", "scheme 'qemu'"),
    ("host-a", "not a URI"),
    ("", "not a URI"),
    ("qemu+ssh://host-a/system?keyfile=/root/.ssh/id_rsa", "query string"),
    ("qemu+tcp://host-a/system?socket=/tmp/s", "query string"),
    ("qemu+ssh://host-a/system?netcat=/tmp/evil", "query string"),
    ("qemu+tls://host-a/system#frag", "query string or fragment"),
    ("qemu+ssh://-l/system", "starts with '-'"),
    ("qemu+ssh://-user@host-a/system", "user name starts with '-'"),
    ("qemu+ssh://host-a:-p1/system", "port starts with '-'"),
    ("qemu+tcp://host a/system", "contains ' '"),
    ("qemu+tcp://host-a/system;reboot", "contains ';'"),
    ("qemu+ssh://$(reboot)@host-a/system", "contains '$()'"),
    ("qemu+tcp://host-a`id`/system", "contains '`'"),
    ("qemu+tcp://host-a/system\n", "contains '\\n'"),
    ("qemu+tcp://host-a/session", "path is '/session'"),
    ("qemu+tcp://host-a", "path is ''"),
    ("qemu+tcp://host-a/system/extra", "path is '/system/extra'"),
    ("qemu+tcp://root@host-a/system", "only used by qemu+ssh"),
    ("qemu+ssh://user:secret@host-a/system", "'user:secret' is not a plain user"),
    ("qemu+ssh://a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w@host-a/system", "plain user"),
    ("qemu+tcp://host-a:0/system", "port '0'"),
    ("qemu+tcp://host-a:65536/system", "port '65536'"),
    ("qemu+tcp://host-a:/system", "port ''"),
    ("qemu+tcp:///system", "names no host"),
    ("qemu+tcp://host-b/system", "'host-b' is not this host"),
    ("qemu+tcp://host-ab/system", "not this host"),
    ("qemu+tcp://evil-host-a/system", "not this host"),
    ("qemu+tcp://10.0.0.1/system", "not this host"),
    ("qemu+tcp://host-a..example.org/system", "not this host"),
    ("qemu+tcp://host-a.example.org/system", "domain 'example.org', which is not one of"),
    ("qemu+tcp://host-a.attacker.test/system", "domain 'attacker.test'"),
]


@pytest.mark.parametrize(("uri", "says"), BAD)
def test_anything_else_is_refused_saying_what_is_wrong_and_what_to_send(uri: str,
                                                                        says: str) -> None:
    with pytest.raises(InvalidMigrationUriError) as caught:
        check_migration_uri(uri, "host-a", domains=())
    assert says in caught.value.problem
    assert isinstance(caught.value, InvalidValueError)  # the API's 422 for bad values
    message = str(caught.value)
    assert repr(uri) in message and "send qemu+tcp://host-a/system" in message


def test_the_host_may_be_qualified_by_a_configured_domain_only() -> None:
    assert check_migration_uri("qemu+tls://host-a.example.org/system", "host-a",
                               domains=("example.org",))
    assert check_migration_uri("qemu+tls://Host-A.Example.Org:16514/system", "host-a",
                               domains=("example.org.",))
    with pytest.raises(InvalidMigrationUriError, match=r"domain 'lab\.example\.org'"):
        check_migration_uri("qemu+tls://host-a.lab.example.org/system", "host-a",
                            domains=("example.org",))
    with pytest.raises(InvalidMigrationUriError, match=r"'host-a\.example\.org'"):  # expected form
        check_migration_uri("qemu+tls://host-b.example.org/system", "host-a",
                            domains=("example.org",))


def test_without_a_domain_list_any_dns_qualification_passes_but_nothing_else() -> None:
    """The agent's check before it migrates: the domain list is the controller's policy, the
    agent only keeps URIs that could run something away from libvirt."""
    assert check_migration_uri("qemu+tcp://host-a.example.org/system", "host-a")
    for uri, _ in BAD:
        if "domain '" in _:
            continue
        with pytest.raises(InvalidMigrationUriError):
            check_migration_uri(uri, "host-a")
