"""A real controller (the ``vfkeeper serve`` app under uvicorn) on a loopback port, in a thread.

The listening socket is bound before the server thread starts, so the port is known (and
connections queue in its backlog) from the first moment; :meth:`RunningController.start`
returns once uvicorn has started serving, or raises if it could not.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings

START_TIMEOUT_S = 30.0


class ControllerStartError(RuntimeError):
    """uvicorn did not start serving; the message says what happened."""


@dataclass
class RunningController:
    """``start()`` serves ``app`` on ``sock``; ``stop()`` shuts it down and waits."""

    app: FastAPI
    sock: socket.socket
    _server: uvicorn.Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _error: BaseException | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="vfkeeper-demo-controller",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive():
                raise ControllerStartError(f"the controller stopped while starting: "
                                           f"{self._error or 'uvicorn exited'}")
            if time.monotonic() > deadline:
                raise ControllerStartError(f"the controller did not start within "
                                           f"{START_TIMEOUT_S:.0f} s")
            self._thread.join(0.01)

    def _serve(self) -> None:
        assert self._server is not None
        try:
            self._server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start() / wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises ``KeyboardInterrupt`` here)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.sock.close()
        self.app.state.ctx.db.dispose()


def controller(settings: ControllerSettings, host: str = "127.0.0.1") -> RunningController:
    """The controller app for ``settings`` (schema upgraded) with a socket bound to a free port
    of ``host``; not serving until :meth:`RunningController.start`."""
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return RunningController(app, sock)


def admin_token(running: RunningController, name: str = "vfkeeper demo") -> str:
    """A new admin token, written to the controller's database as ``vfkeeper token create``
    does."""
    return token(running, "admin", name)


def token(running: RunningController, role: str, name: str) -> str:
    """A new token with ``role`` (``admin``, ``agent:<host>``), as ``vfkeeper token create``
    makes one."""
    with running.app.state.ctx.db.write() as session:
        return create_token(session, role, name)
