"""Optional persistence: the store as one JSON file, written shortly after changes and on shutdown."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from albus.sim.store import Record, Store
from albus.sim.tasks import cancel

Json = Any
FORMAT = 1


def save(store: Store, path: Path) -> None:
    objs = [{"type": r.type, "uuid": r.uuid, "tenant": r.tenant, "system": r.system, "data": r.data}
            for t in store.by_type.values() for r in t.values()]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "objects": objs}))
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous state


def load(store: Store, path: Path) -> int:
    """Load a saved store into an empty one. Records are stored as saved (they were validated then)."""
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported state format {data.get('format')!r}")
    n = 0
    for o in data["objects"]:
        store.insert(Record(o["type"], o["uuid"], o["tenant"], o["data"], system=bool(o["system"])))
        n += 1
    return n


class Saver:
    """Writes the store when it changed, at most every `period` seconds."""

    def __init__(self, store: Store, path: Path, period: float = 0.5) -> None:
        self.store = store
        self.path = path
        self.period = period
        self._saved = store.version
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            self.flush()

    def flush(self) -> None:
        if self.store.version != self._saved:
            save(self.store, self.path)
            self._saved = self.store.version

    async def stop(self) -> None:
        await cancel(self._task)
        self.flush()
