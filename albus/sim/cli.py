"""`albus sim` / `python -m albus.sim`: run a simulated Avi controller until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from albus.sim.seed import DEFAULT_TEST_SEED
from albus.sim.server import PROFILES, SimServer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="albus sim", description="Simulated Avi (NSX ALB) controller REST API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443 if "--https" in (argv or sys.argv) else 8080,
                   help="0 picks a free port")
    p.add_argument("--port-file", type=Path, help="write the chosen port to this file once listening")
    p.add_argument("--username", default="admin")
    p.add_argument("--password", default="albus-sim")
    p.add_argument("--seed", help="YAML seed file (clouds, SE groups, networks, tenants, BGP peers)")
    p.add_argument("--default-seed", action="store_true",
                   help="add the test seed (vip-net 127.0.100.0/24 + fd00:a1b0::/64, tenant team-a, BGP label rack-a)")
    p.add_argument("--profile", choices=PROFILES, default="default",
                   help="realistic: API rate limit on (32 req/s average per client IP)")
    p.add_argument("--rate", type=float, default=32.0, help="rate limit, requests/s per client IP")
    p.add_argument("--burst", type=int, default=64, help="rate limit burst")
    p.add_argument("--health-interval", type=float, help="override every health monitor's send_interval (s)")
    p.add_argument("--session-timeout", type=float, default=900.0, help="idle session timeout (s), 0 = never")
    p.add_argument("--https", action="store_true", help="serve HTTPS with a generated self-signed certificate")
    p.add_argument("--cert-dir", type=Path, help="where to write the generated certificate (HTTPS)")
    p.add_argument("--state", type=Path, help="persist objects to this JSON file and reload them on start")
    p.add_argument("--allow-basic-auth", action="store_true")
    p.add_argument("--probe-network", action="append", default=[], metavar="CIDR",
                   help="also health-probe members in this network (loopback always); members elsewhere "
                        "are never contacted and report up, 'not probed'")
    p.add_argument("--dataplane", action="store_true",
                   help="forward real traffic: listen on every enabled virtual service's VIP ports (VIPs must "
                        "be addresses of this machine, e.g. 127.x) and forward to members in the probe networks")
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> int:
    seed: object = args.seed
    if args.default_seed and args.seed:
        print("--seed and --default-seed are exclusive", file=sys.stderr)
        return 2
    if args.default_seed:
        seed = DEFAULT_TEST_SEED
    sim = SimServer(host=args.host, port=args.port, username=args.username, password=args.password,
                    seed=seed,  # type: ignore[arg-type]
                    health_interval=args.health_interval, session_timeout=args.session_timeout,
                    profile=args.profile, rate=args.rate, burst=args.burst, https=args.https,
                    cert_dir=args.cert_dir, state_file=args.state, allow_basic_auth=args.allow_basic_auth,
                    probe_networks=args.probe_network, dataplane=args.dataplane, settle_heap=True)
    await sim.start()
    if args.port_file:
        args.port_file.write_text(str(sim.port))  # before the line, so a reader of the line finds the file
    # first stdout line is the contract with launchers (SimProcess, e2e tests): keep its shape
    print(f"albus-sim listening on {sim.url} user={sim.username} password={sim.password}", flush=True)
    if sim.cert_path:
        print(f"albus-sim certificate {sim.cert_path}", flush=True)
    print(f"albus-sim admin API {sim.admin_url} (no login)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(_serve(args))
