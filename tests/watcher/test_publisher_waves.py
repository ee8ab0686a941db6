"""A list is published in waves: many acknowledgements awaited together, the kind's marker after them all."""

from __future__ import annotations

from typing import Any

from albus.broker import NatsServer
from services.common import subjects
from services.common.bus import Bus
from services.watcher.publisher import PUBLISH_WINDOW, KindPublisher
from services.watcher.trim import trim_service


def _svc(i: int) -> dict[str, Any]:
    return trim_service({"metadata": {"name": f"s{i}", "namespace": "ns", "uid": f"u{i}", "resourceVersion": str(i)},
                         "spec": {"ports": [{"port": 80}]}})


async def test_a_list_is_published_many_at_a_time_and_marked_synced_after_the_last(
        fresh_nats: NatsServer) -> None:
    bus = await Bus.connect(fresh_nats.url, "watcher-test")
    await bus.ensure_streams()
    in_flight, most = 0, 0
    publish = bus.acks.publish

    async def counted(*args: Any, **kw: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await publish(*args, **kw)
        finally:
            in_flight -= 1

    bus.acks.publish = counted  # type: ignore[method-assign]
    pub = KindPublisher(bus, "c1", "Service", "epoch-1")
    await pub.relist([_svc(i) for i in range(300)], "300")
    assert pub.published == 300 and len(pub.known) == 300
    assert 1 < most <= PUBLISH_WINDOW, most
    objects = await bus.snapshot("k8s.c1.Service.*.*")
    marker = await bus.last(subjects.k8s_synced("c1", "Service"))
    await bus.close()
    assert len(objects) == 300 and marker is not None
    assert marker.stream_seq > max(d.stream_seq for d in objects.values()), "the marker comes after every object"
