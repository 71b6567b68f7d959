"""The agent's HTTP client of the controller (httpx): inventory, heartbeat, desired state,
actual state. Every failure is a typed :class:`ControllerError`; the run loop logs it and tries
again on its next tick (nothing is lost: the next pass reports the whole state again)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from vfkeeper.agent.errors import AgentError
from vfkeeper.domain.agent_state import ActualState
from vfkeeper.domain.desired_state import DesiredState
from vfkeeper.domain.inventory import HostInventory


class ControllerError(AgentError):
    """The controller could not be reached, or refused a request."""


class ControllerUnreachableError(ControllerError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the controller at {url} ({reason}); is 'vfkeeper serve' "
                         "running there? The agent keeps retrying.")


class ControllerRejectedError(ControllerError):
    def __init__(self, method: str, path: str, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"the controller refused {method} {path}: HTTP {status} {code}: "
                         f"{message}")


class DesiredStateMismatchError(ControllerError):
    """The controller's desired-state document does not fit this agent's model: the two are of
    different releases (docs/operations.md § Upgrades)."""

    def __init__(self, host: str, exc: ValidationError) -> None:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors()[:5])
        self.problems = problems
        super().__init__(
            f"the controller's desired state for host {host} does not fit this agent "
            f"({problems}); the controller and this agent are of different vfkeeper releases: "
            "upgrade this agent to the controller's release. Until then the agent changes "
            "nothing on the host (running VMs keep their devices).")


class ControllerStoreUnavailableError(ControllerRejectedError):
    """The controller answered 503 ``store_unavailable``: its database does not answer."""

    def __init__(self, method: str, path: str, message: str) -> None:
        super().__init__(method, path, 503, "store_unavailable", message)
        self.args = (f"the controller's database is unavailable, retrying ({method} {path}: "
                     f"{message})",)


class ControllerClient:
    def __init__(self, url: str, token: str | None, host: str,
                 transport: httpx.BaseTransport | None = None, timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.host = host
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=timeout_s)  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ControllerUnreachableError(self.url, str(exc) or type(exc).__name__) from exc
        if resp.is_success:
            return resp.json() if resp.content else None
        try:
            error = resp.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "?", resp.text[:200]
        if resp.status_code == 503 and code == "store_unavailable":
            raise ControllerStoreUnavailableError(method, path, message)
        raise ControllerRejectedError(method, path, resp.status_code, code, message)

    def put_inventory(self, inventory: HostInventory) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "PUT", f"/v1/hosts/{self.host}/inventory", inventory.model_dump(mode="json"))
        return result

    def heartbeat(self, migration_uri: str | None = None) -> None:
        body = {"migration_uri": migration_uri} if migration_uri else None
        self._call("POST", f"/v1/hosts/{self.host}/heartbeat", body)

    def desired_state(self) -> DesiredState:
        document = self._call("GET", f"/v1/hosts/{self.host}/desired-state")
        try:
            return DesiredState.model_validate(document)
        except ValidationError as exc:
            raise DesiredStateMismatchError(self.host, exc) from exc

    def put_actual_state(self, state: ActualState) -> dict[str, Any] | None:
        """The controller's answer: what it took, and which task reports it refused."""
        answer = self._call("PUT", f"/v1/hosts/{self.host}/actual-state",
                            state.model_dump(mode="json"))
        return answer if isinstance(answer, dict) else None
