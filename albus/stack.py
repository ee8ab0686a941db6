"""Child processes of a local albus stack: the four services and the simulator.

``albus up`` and the end-to-end tests both run the services exactly as a
container would (``albus <service> --config FILE``), each as its own process
with its own log, so a test can kill -9 one and start it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SERVICES = ("watcher", "translator", "syncer", "health")


class Child:
    """One child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> Child:
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def service(name: str, config: Path, logs: Path, extra: list[str] | None = None,
            env: dict[str, str] | None = None, suffix: str = "") -> Child:
    argv = [sys.executable, "-m", "albus.cli", name, "--config", str(config), *(extra or [])]
    return Child(name + suffix, argv, logs / f"{name}{suffix}.log", env)


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
