"""Running a simulator: in-process (`SimServer`, async or in a thread) or as a subprocess (`SimProcess`)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from albus.sim import certs, persist
from albus.sim.app import Config, Controller, build_app
from albus.sim.dataplane import DataPlane
from albus.sim.heap import HeapSettler
from albus.sim.seed import apply_seed, load_seed, seed_system

Json = Any
PROFILES = ("default", "realistic")
LISTEN_LINE = re.compile(r"albus-sim listening on (\S+) user=(\S+) password=(\S+)")


class SimServer:
    """One simulated controller.

        async with SimServer(port=0, seed=DEFAULT_TEST_SEED, health_interval=0.5) as sim:
            sim.url, sim.username, sim.password, sim.admin_url

    `seed` is a YAML path or an already-parsed mapping (format in albus/sim/seed.py).
    `profile="realistic"` turns the API rate limit on (32 req/s average per client IP, burst 64).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, username: str = "admin",
                 password: str = "albus-sim", seed: str | Path | dict[str, Json] | None = None,
                 health_interval: float | None = None, session_timeout: float = 15 * 60,
                 profile: str = "default", rate_limit: bool | None = None, rate: float = 32.0, burst: int = 64,
                 https: bool = False, cert_dir: str | Path | None = None, state_file: str | Path | None = None,
                 allow_basic_auth: bool = False, probe_networks: list[str] | None = None,
                 dataplane: bool = False, settle_heap: bool = False) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.https = https
        self._cert_dir = Path(cert_dir) if cert_dir else None
        self._temp_cert_dir: Path | None = None  # made by start() when no cert_dir was given; stop() removes it
        self.state_file = Path(state_file) if state_file else None
        self.ctl = Controller(Config(username=username, password=password, allow_basic_auth=allow_basic_auth,
                                     secure_cookies=https))
        self.ctl.sessions.idle_timeout = session_timeout
        self.ctl.health.interval = health_interval
        # Loopback always; test hosts' networks only when a test names them.
        self.ctl.health.probe_networks += [ipaddress.ip_network(n, strict=False) for n in probe_networks or []]
        if dataplane:  # forward real traffic on the VIPs (test/demo tool, docs/simulator.md "Data plane")
            self.ctl.dataplane = DataPlane(self.ctl.store, self.ctl.health)
        self.ctl.limiter.enabled = (profile == "realistic") if rate_limit is None else rate_limit
        self.ctl.limiter.rate = rate
        self.ctl.limiter.burst = burst
        self._seed = seed
        # process-wide (gc.freeze): the simulator's own process turns it on, in-process test servers do not
        self._settler = HeapSettler(self.ctl.store) if settle_heap else None
        self._runner: web.AppRunner | None = None
        self._saver: persist.Saver | None = None
        self.cert_path: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/_sim"

    def _populate(self) -> None:
        o = self.ctl.objects
        if self.state_file is not None and self.state_file.exists():
            persist.load(self.ctl.store, self.state_file)
            return
        seed_system(o)
        apply_seed(o, load_seed(self._seed))

    async def start(self) -> None:
        self._populate()
        ctx: ssl.SSLContext | None = None
        if self.https:
            d = self._cert_dir
            if d is None:
                d = self._temp_cert_dir = Path(tempfile.mkdtemp(prefix="albus-sim-tls-"))
            cpath, kpath = certs.self_signed([self.host, "localhost"], d)
            self.cert_path = cpath
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cpath, kpath)
        self._runner = web.AppRunner(build_app(self.ctl), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx, reuse_address=True)
        await site.start()
        addrs = self._runner.addresses
        self.port = int(addrs[0][1])
        self.ctl.health.start()
        if self._settler is not None:
            self._settler.start()
        if self.ctl.dataplane is not None:
            await self.ctl.dataplane.start()
        if self.state_file is not None:
            self._saver = persist.Saver(self.ctl.store, self.state_file)
            self._saver.flush()
            self._saver.start()

    async def stop(self) -> None:
        if self.ctl.dataplane is not None:
            await self.ctl.dataplane.stop()
        await self.ctl.health.stop()
        if self._settler is not None:
            await self._settler.stop()
        if self._saver is not None:
            await self._saver.stop()
            self._saver = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._temp_cert_dir is not None:  # every test's simulator left one behind in /tmp
            shutil.rmtree(self._temp_cert_dir, ignore_errors=True)
            self._temp_cert_dir = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # ---- in a thread, for synchronous callers (e.g. avisdk tests) --------------------------------
    def start_in_thread(self) -> SimServer:
        """Run on an event loop in a daemon thread; returns once listening. Stop with `stop_thread()`."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # report start failures to the caller thread
                failure.append(e)
                loop.close()
                started.set()
                return
            started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="albus-sim", daemon=True)
        self._loop = loop
        self._thread.start()
        started.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._loop.is_closed():
            return  # already stopped
        fut = asyncio.run_coroutine_threadsafe(self.stop(), self._loop)
        fut.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the simulator's loop thread (state is not thread-safe) and return its result."""
        async def wrap() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result(30)


class SimProcess:
    """`python -m albus.sim` as a child process; parses the URL and login from its first stdout line."""

    def __init__(self, *args: str, timeout: float = 30.0) -> None:
        self.args = list(args)
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = self.username = self.password = ""

    def start(self) -> SimProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "albus.sim", "--port", "0", *self.args],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the CLI prints this line first, then flushes
        m = LISTEN_LINE.search(line)
        if not m:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url, self.username, self.password = m.group(1), m.group(2), m.group(3)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
