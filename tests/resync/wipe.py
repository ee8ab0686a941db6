"""NATS losing its data, for real: stop nats-server, delete its JetStream store, start it again empty."""

from __future__ import annotations

import shutil

from albus.broker import NatsServer


def wipe(server: NatsServer) -> None:
    """Same port, empty store: connected clients reconnect to a server that has no stream at all."""
    server.stop()
    shutil.rmtree(server.store_dir / "jetstream")
    server.start()
