"""Child processes of a local albus stack: the four services and the simulator.

``albus up`` and the end-to-end tests both run the services exactly as a
container would (``albus <service> --config FILE``), each as its own process
with its own log, so a test can kill -9 one and start it again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml

from albus.procs import Child

__all__ = ["SERVICES", "Child", "ServiceProcess", "SimProcess", "service", "write_config"]

SERVICES = ("watcher", "translator", "syncer", "health")


class ServiceProcess(Child):
    """A service process; its HTTP endpoint (/metrics, /healthz, /readyz) on a free loopback port of its own."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None,
                 endpoint_file: Path) -> None:
        self.endpoint_file = endpoint_file
        super().__init__(name, [*argv, "--metrics-port", "0", "--metrics-port-file", str(endpoint_file)],
                         log_path, env)

    def start(self) -> ServiceProcess:
        self.endpoint_file.unlink(missing_ok=True)  # a previous life's port
        super().start()
        return self

    def endpoint(self, timeout: float = 30.0) -> str:
        """``http://host:port`` of this life's endpoint, once it listens."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.endpoint_file.read_text().strip() if self.endpoint_file.exists() else ""
            if text:
                return f"http://{text}"
            if not self.alive:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not serve its endpoint in {timeout}s: {self.log_tail()}")


def service(name: str, config: Path, logs: Path, extra: list[str] | None = None,
            env: dict[str, str] | None = None, suffix: str = "") -> ServiceProcess:
    argv = [sys.executable, "-m", "albus.cli", name, "--config", str(config), *(extra or [])]
    return ServiceProcess(name + suffix, argv, logs / f"{name}{suffix}.log", env,
                          logs / f"{name}{suffix}.endpoint")


class SimProcess(Child):
    """The Avi controller simulator as its own process (as the real controller would be)."""

    def __init__(self, workdir: Path, seed: Path | None = None, state: Path | None = None,
                 username: str = "admin", password: str = "albus-sim", extra: list[str] | None = None) -> None:
        self.port_file = workdir / "sim.port"
        self.username = username
        self.password = password
        argv = [sys.executable, "-m", "albus.sim", "--host", "127.0.0.1", "--port", "0",
                "--port-file", str(self.port_file), "--username", username, "--password", password]
        if seed:
            argv += ["--seed", str(seed)]
        if state:
            argv += ["--state", str(state)]
        super().__init__("sim", argv + (extra or []), workdir / "logs" / "sim.log")

    def start(self, timeout: float = 20.0) -> SimProcess:
        self.port_file.unlink(missing_ok=True)
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"simulator exited: {self.log_tail()}")
            if self.port_file.exists() and self.port_file.read_text().strip():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"simulator did not start: {self.log_tail()}")

    @property
    def port(self) -> int:
        return int(self.port_file.read_text().strip())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_config(path: Path, *, cluster: str, controller: str, username: str, password: str,
                 nats_url: str, kubeconfig: str, vip_networks: list[dict[str, str]],
                 extra: dict[str, Any] | None = None) -> Path:
    """An albus values file in AKO's layout, for local runs and tests."""
    data: dict[str, Any] = {
        "AKOSettings": {"clusterName": cluster, "logLevel": "INFO"},
        "ControllerSettings": {"controllerHost": controller},
        "NetworkSettings": {"vipNetworkList": vip_networks},
        "albus": {"natsUrl": nats_url, "kubeconfig": kubeconfig},
        "credentials": {"username": username, "password": password},
    }
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
