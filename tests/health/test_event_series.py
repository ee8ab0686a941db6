"""A repeated Event is one Event with a series count, as the real API server stores it (client-go's behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from health_helpers import Kube

from albus.controlplane.launcher import ControlPlane
from services.health.kube_writes import ServiceWriter
from services.health.service_status import EventSpec


async def test_a_repeat_bumps_the_series_and_another_note_is_a_new_event(
        health_kubeconfig: Path, control_plane: ControlPlane, kube: Kube, kube_namespace: str) -> None:
    ns = kube_namespace
    svc = await kube.create_lb_service(ns, "flappy")
    api: Any = control_plane.kube_client(health_kubeconfig)
    try:
        writer = ServiceWriter(api, "test")
        down = EventSpec("Warning", "MemberDown", "HealthCheck", "pod x/a is down: OPER_DOWN")
        for _ in range(3):
            writer.event(svc, down)
        writer.event(svc, EventSpec("Warning", "MemberDown", "HealthCheck", "pod x/b is down: OPER_DOWN"))
        assert (writer.events_written, writer.events_bumped) == (2, 2)
    finally:
        api.close()
    events = sorted(await kube.events(ns, "flappy"), key=lambda e: str(e["note"]))
    assert [e["note"] for e in events] == ["pod x/a is down: OPER_DOWN", "pod x/b is down: OPER_DOWN"]
    assert events[0]["series"]["count"] == 3 and "series" not in events[1]
    # The core view (what kubectl describe shows) counts the repeats too.
    core = await kube.call("GET", f"/api/v1/namespaces/{ns}/events")
    counts = {e["message"]: e.get("count") or (e.get("series") or {}).get("count") for e in core["items"]}
    assert counts["pod x/a is down: OPER_DOWN"] == 3
