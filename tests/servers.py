"""Real servers for the tests and the benchmarks (one copy, imported by ``tests/conftest.py``,
``tests/controller/test_two_controllers.py`` and ``bench/scheduler.py``):

* :func:`postgres_cluster`: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` as the
  ``postgres`` user when run as root, on a free loopback port, in a temp dir), stopped and
  deleted at the end;
* :func:`controller_process`: one real ``vfkeeper serve`` process (uvicorn) on a free loopback
  port, ready when it yields (``/openapi.json`` answers), always killed at the end.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

PG_BIN = Path(os.environ.get("VFKEEPER_PG_BIN", "/usr/lib/postgresql/15/bin"))
_db_counter = itertools.count()


class ServerUnavailable(Exception):
    """A real server cannot be started here; the message says what to install or set."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
    cmd = list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


class PostgresCluster:
    """A running throwaway cluster; ``new_database()`` gives each user its own database.
    ``stop()`` and ``start()`` take the server down and bring it back (same port, same data),
    as an outage of the database would."""

    def __init__(self, port: int, data: Path | None = None, options: str = "") -> None:
        self.port = port
        self._data = data
        self._options = options

    def stop(self) -> None:
        assert self._data is not None, "not a cluster this process started"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w",
                     "stop")

    def start(self) -> None:
        assert self._data is not None, "not a cluster this process started"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self._data), "-o", self._options, "-l",
                     str(self._data / "log"), "-w", "start")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://test@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str | None = None) -> str:
        name = f"t{os.getpid()}_{next(_db_counter)}"
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        clause = f' TEMPLATE "{template}"' if template else ""
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        engine.dispose()
        return self.url(name)


@contextmanager
def postgres_cluster(max_connections: int = 300) -> Iterator[PostgresCluster]:
    """Start a cluster, yield it, stop and delete it. Raises :class:`ServerUnavailable` when the
    server binaries (or, as root, ``runuser``) are missing."""
    if not (PG_BIN / "initdb").exists():
        raise ServerUnavailable(
            f"PostgreSQL server binaries not found in {PG_BIN}: install the Debian package "
            "'postgresql' (./dev.sh setup does), or set VFKEEPER_PG_BIN"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise ServerUnavailable("running as root and runuser is missing: cannot start "
                                "PostgreSQL as postgres")
    workdir = Path(tempfile.mkdtemp(prefix="vfkeeper-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "test", "--auth=trust", "--no-sync")
    opts = (f"-k {data} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={max_connections}")
    cluster = PostgresCluster(port, data, opts)
    cluster.start()
    try:
        yield cluster
    finally:
        with suppress(subprocess.CalledProcessError):  # already stopped by its user
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _vfkeeper_command() -> list[str]:
    script = Path(sys.executable).with_name("vfkeeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vfkeeper.cli.main"]


@contextmanager
def controller_process(
    db_url: str, log: Path, *, args: Sequence[str] = (), ready_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``vfkeeper serve --db DB_URL --listen 127.0.0.1:PORT ARGS`` and yield its base URL
    once ``/openapi.json`` answers. The process (and its group) is always killed at the end;
    its output goes to ``log``."""
    port = free_port()
    cmd = [*_vfkeeper_command(), "serve", "--db", db_url, "--listen", f"127.0.0.1:{port}",
           *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, log, ready_timeout_s)
        yield base
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:  # waits a little between polls, and notices a server that died
            code = proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise ServerUnavailable(f"vfkeeper serve exited with {code} before it was ready: "
                                f"{log.read_text(errors='replace')[-2000:]}")
    raise ServerUnavailable(f"vfkeeper serve did not answer {base}/openapi.json within "
                            f"{timeout_s:.0f} s; its log: {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
