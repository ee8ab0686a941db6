"""What every service's ``main`` does: arguments, configuration, logging, signals, exit code.

A service provides ``run(cfg, stop, args)``; this runs it until SIGTERM or
SIGINT sets ``stop``. Bad configuration exits with status 2 and a message
naming the field, before anything starts. Beside it, the service's HTTP
endpoint (``/metrics``, ``/healthz``, ``/readyz``: :mod:`services.common.probes`)
on ``albus.probes.<service>`` or ``--metrics-port``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.common import probes, tracing
from services.common.bus import BusRefused
from services.common.config import Config, ConfigError, load_config

Run = Callable[[Config, asyncio.Event, argparse.Namespace], Awaitable[None]]


def service_main(
    name: str,
    description: str | None,
    argv: list[str] | None,
    run: Run,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"albus {name}", description=description)
    parser.add_argument("--config", help="albus values file (default: $ALBUS_CONFIG)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help=f"port of /metrics, /healthz, /readyz (default: albus.probes.{name}; 0: a free one)")
    parser.add_argument("--metrics-port-file", metavar="FILE",
                        help="write the endpoint's host:port here once it listens (for a launcher; port 0)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"albus {name}: {exc}", file=sys.stderr)
        return 2
    tracing.setup_logging(cfg, f"albus-{name}")
    log = logging.getLogger(f"albus.{name}")
    traces = tracing.setup(cfg, f"albus-{name}")

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        port = args.metrics_port if args.metrics_port is not None else cfg.albus.probes.port(name)
        try:
            endpoint = await probes.serve(cfg.albus.probes.address, port)
        except OSError as exc:
            log.error("cannot serve metrics and probes on %s port %d: %s", cfg.albus.probes.address, port, exc)
            return 2
        log.info("metrics and probes on %s (/metrics /healthz /readyz)", endpoint.url)
        if args.metrics_port_file:
            # Whole or absent for a reader: written aside, then renamed.
            target = Path(args.metrics_port_file)
            aside = target.with_name(target.name + ".tmp")
            aside.write_text(f"{endpoint.host}:{endpoint.port}\n")
            aside.replace(target)
        try:
            await run(cfg, stop, args)
        except ConfigError as exc:
            log.error("%s", exc)
            return 2
        except BusRefused as exc:
            # Wrong credentials for this cluster: retrying cannot help, say so and stop.
            log.error("NATS refused this service's identity (%s); stopping", exc)
            return 3
        finally:
            await endpoint.close()
        return 0

    try:
        return asyncio.run(serve())
    finally:
        traces.shutdown()  # flush the last spans
