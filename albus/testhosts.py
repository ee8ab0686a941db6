"""Test hosts: small backends that say who they are, and network namespaces to run them in.

* `Backend(name, host, port)` — a TCP+UDP server in a thread. TCP: an HTTP request gets
  `200` with a JSON body `{"backend", "method", "path", "host", "headers"}`; any other
  bytes are echoed prefixed with `<name>:`. UDP: each datagram is echoed prefixed with
  `<name>:`. It counts the connections it accepts.
* `TestHost` — a network namespace joined to this host by a veth pair, with a private
  /24 of 10.213.0.0/16 that exists only between the two ends (no packet leaves the
  machine). The real kube-apiserver refuses loopback addresses in EndpointSlices, so a
  test that needs a pod IP the simulator can forward to runs its backend there
  (`python -m albus.testhosts serve` inside the namespace). Needs root; `available()`
  says why not.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from types import TracebackType

_ids = itertools.count()
BASE = ipaddress.IPv4Network("10.213.0.0/16")


# ---- backends ----------------------------------------------------------------------------------------
def _http_reply(name: str, head: bytes) -> bytes:
    lines = head.decode("latin-1").split("\r\n")
    method, path = ([*lines[0].split(" "), "", ""])[:2]
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = json.dumps({"backend": name, "method": method, "path": path, "host": headers.get("host", ""),
                       "headers": headers}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


class Backend:
    """A TCP+UDP "who am I" server on (host, port), in daemon threads."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, udp: bool = True) -> None:
        self.name = name
        self.connections = 0
        outer = self

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                sock: socket.socket = self.request
                sock.settimeout(10)
                try:
                    data = sock.recv(65536)
                    if data[:8].split(b" ")[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH"):
                        while b"\r\n\r\n" not in data:
                            more = sock.recv(65536)
                            if not more:
                                return
                            data += more
                        sock.sendall(_http_reply(name, data.split(b"\r\n\r\n")[0]))
                        return
                    while data:
                        sock.sendall(name.encode() + b":" + data)
                        data = sock.recv(65536)
                except OSError:
                    return

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(name.encode() + b":" + data, self.client_address)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class TcpServer(socketserver.ThreadingTCPServer):
            address_family = family
            allow_reuse_address = True
            daemon_threads = True

        class UdpServer(socketserver.UDPServer):
            address_family = family
            allow_reuse_address = True

        self.tcp = TcpServer((host, port), Tcp)
        self.host, self.port = host, int(self.tcp.server_address[1])
        self.udp = UdpServer((host, self.port), Udp) if udp else None
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
                         for s in (self.tcp, self.udp) if s is not None]

    def start(self) -> Backend:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        for s in (self.tcp, self.udp):
            if s is not None:
                s.shutdown()
                s.server_close()

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def exchange(addr: str, port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send over TCP, half-close, read to the end. b"" when the far end closes without answering."""
    with socket.create_connection((addr, port), timeout=timeout) as s:
        out = b""
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while data := s.recv(65536):
                out += data
        except OSError as e:  # reset / not connected: refused after accept (e.g. no member up)
            if out or isinstance(e, TimeoutError):
                raise
        return out


# ---- network namespaces ------------------------------------------------------------------------------
def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def available() -> str | None:
    """None when namespaces and veth pairs can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"albus-probe-{os.getpid()}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-o", "addr", "show").stdout
    for net in BASE.subnets(new_prefix=24):
        if f" {net.network_address + 1}/" not in used:
            return net
    raise RuntimeError(f"no free /24 left in {BASE}")


class TestHost:
    """A network namespace behind a veth pair: this host is `.1`, the namespace `.2` of a free /24."""

    __test__ = False  # not a pytest test class

    def __init__(self, subnet: str | None = None) -> None:
        """`subnet`: a fixed /24 (the demo's, so its manifests can name the address); default: a free one."""
        n = next(_ids)
        self._want = ipaddress.IPv4Network(subnet) if subnet else None
        self.ns = f"albus-th{os.getpid()}-{n}"
        self.host_if = f"ath{os.getpid() % 100000}h{n}"[:15]
        self.ns_if = f"ath{os.getpid() % 100000}n{n}"[:15]
        self.subnet: ipaddress.IPv4Network | None = None
        self._servers: list[subprocess.Popen[bytes]] = []

    @property
    def cidr(self) -> str:
        return str(self.subnet)

    @property
    def address(self) -> str:
        """The namespace's address: what a pod IP in a test points at."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 2)

    def create(self) -> TestHost:
        if self._want is not None and f" {self._want.network_address + 1}/" in _ip("-o", "addr", "show").stdout:
            raise RuntimeError(f"{self._want} is already in use on this machine (another albus up --demo-backends?)")
        self.subnet = self._want or _free_subnet()
        gw, addr, plen = self.subnet.network_address + 1, self.address, self.subnet.prefixlen
        try:
            _ip("netns", "add", self.ns)
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.ns)
            _ip("addr", "add", f"{gw}/{plen}", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.ns, "addr", "add", f"{addr}/{plen}", "dev", self.ns_if)
            _ip("-n", self.ns, "link", "set", self.ns_if, "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def serve(self, name: str, *ports: int, timeout: float = 20.0) -> None:
        """Run `Backend(name)` on every port (TCP and UDP) inside the namespace; returns once they answer."""
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "albus.testhosts", "serve", "--name", name,
                *(f"0.0.0.0:{p}" for p in ports)]
        self._servers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + timeout
        for p in ports:
            while True:
                try:
                    socket.create_connection((self.address, p), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"backend {name} in {self.ns} not answering on {p}") from None
                    time.sleep(0.1)

    def stop_serving(self) -> None:
        """Stop every backend this host runs (the namespace and its address stay: `serve` starts them again)."""
        for proc in self._servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._servers.clear()

    def destroy(self) -> None:
        self.stop_serving()
        _ip("link", "del", self.host_if, check=False)  # deleting one end removes the pair
        _ip("netns", "del", self.ns, check=False)

    def __enter__(self) -> TestHost:
        return self.create()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.destroy()


# ---- `python -m albus.testhosts serve --name web 0.0.0.0:8080 ...` --------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m albus.testhosts")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run who-am-I backends (TCP+UDP) until interrupted")
    s.add_argument("--name", required=True)
    s.add_argument("listen", nargs="+", metavar="HOST:PORT")
    args = p.parse_args(argv)
    backends = []
    for hp in args.listen:
        host, _, port = hp.rpartition(":")
        backends.append(Backend(args.name, host.strip("[]"), int(port)).start())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    for b in backends:
        b.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
