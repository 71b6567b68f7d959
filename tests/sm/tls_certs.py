"""A throwaway certificate authority for TLS tests, made with the ``openssl`` command line.

:func:`make_ca` writes a CA certificate and a server certificate it signed (for ``127.0.0.1``
and ``localhost``), so a test server can speak real TLS and a client can verify it with the CA
file, exactly as an operator pins the CA of their UFM. A second, unrelated CA is what a test
uses to show that a wrong CA is refused.

``openssl`` is Debian's ``openssl`` package (on every Debian system; ``./dev.sh`` installs it
on a bare one). The ``cryptography`` package is not used: it is not a vfkeeper dependency.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


class OpensslMissing(Exception):
    """``openssl`` is not installed; the message says how to get it."""


@dataclass(frozen=True)
class TestCa:
    """Files of one CA: ``ca_file`` (PEM certificate a client trusts), and the server
    certificate and key it signed."""

    __test__ = False  # not a pytest test class

    ca_file: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise OpensslMissing("the openssl command is missing: apt-get install -y openssl")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, text=True)


def make_ca(directory: Path, name: str = "vfkeeper test CA") -> TestCa:
    """Create a CA and a server certificate for 127.0.0.1/localhost under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", *_EC, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=directory)
    (directory / "server.ext").write_text(_SERVER_EXTENSIONS)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2",
             "-extfile", "server.ext", cwd=directory)
    return TestCa(directory / "ca.pem", directory / "server.pem", directory / "server.key")
