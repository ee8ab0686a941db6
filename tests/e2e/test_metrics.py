"""Every service process serves /metrics, /healthz and /readyz; after a Service converges, the counters show it.

The four services run as processes (each on a free loopback port written to
its endpoint file, as ``albus up`` runs them); one LoadBalancer Service goes
through the pipeline, then each service's /metrics is scraped and parsed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from albus.stack import ServiceProcess
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    rsp = requests.get(f"{url}/metrics", timeout=10)
    rsp.raise_for_status()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(rsp.text) for s in fam.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(v for (n, lbl), v in samples.items() if n == name and set(labels.items()) <= set(lbl))


def test_each_service_serves_probes_and_counts_the_work(pipeline: Pipeline) -> None:
    p = pipeline
    urls: dict[str, str] = {}
    for name, child in p.children.items():
        assert isinstance(child, ServiceProcess)
        urls[name] = child.endpoint()
        assert urls[name].startswith("http://127.0.0.1:")
    assert len(set(urls.values())) == 4, "a port of its own each"

    for name, url in urls.items():
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        wait_for(lambda url=url: requests.get(f"{url}/readyz", timeout=10).status_code == 200, 90,
                 f"{name} ready")

    p.core.create_namespaced_service(p.namespace, lb_service("web", [{"port": 80, "targetPort": 8080,
                                                                      "protocol": "TCP"}]))
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.7.11", [("http", 8080, "TCP")])
    wait_for(lambda: p.vips("web"), 90, "the web Service's VIP in its status")

    def grown(name: str, check: Callable[[Samples], bool], what: str) -> None:
        wait_for(lambda: check(scrape(urls[name])), 30, f"{name}: {what}")

    pub, got = "albus_bus_messages_published_total", "albus_bus_messages_received_total"
    grown("watcher", lambda s: total(s, pub, kind="k8s.Service") > 0
          and total(s, pub, kind="k8s.EndpointSlice") > 0 and total(s, "albus_watcher_leader") == 1,
          "Services and EndpointSlices published, leading")
    grown("translator", lambda s: total(s, got, kind="k8s.Service") > 0 and total(s, pub, kind="avi") > 0
          and total(s, "albus_translator_translate_seconds_count") > 0, "objects in, trees out, latency observed")
    grown("syncer", lambda s: total(s, got, kind="avi") > 0 and total(s, pub, kind="outcome") > 0
          and total(s, "albus_syncer_controller_calls_total", method="POST") > 0
          and total(s, "albus_syncer_controller_calls_total", method="GET") > 0
          and total(s, "albus_syncer_apply_seconds_count", result="ok") > 0
          and total(s, "albus_syncer_partitions_held") > 0,
          "trees in, outcomes out, controller calls and applies counted")
    grown("health", lambda s: total(s, got, kind="outcome") > 0 and total(s, "albus_health_pool_members") == 1,
          "outcomes in, the pool's one member counted from the runtime sweep")

    for name in urls:  # the loop's lateness is sampled in every process (every 0.5 s: waited for, as a
        # pipeline that converged within half a second of a process's start has no sample yet)
        grown(name, lambda s: total(s, "albus_event_loop_lag_seconds_count") > 0, "the loop's lateness sampled")
    syncer = scrape(urls["syncer"])
    for name, url in urls.items():  # what a run shows, for the log (-s)
        print(name, {f"{n}{dict(lbl) or ''}": v for (n, lbl), v in scrape(url).items()
                     if n.startswith("albus_") and not n.endswith(("_bucket", "_created")) and v})
    writes = [lbl for (n, lbl), v in syncer.items() if n == "albus_syncer_controller_calls_total" and v > 0
              and dict(lbl)["method"] == "POST"]
    assert all(dict(lbl)["status"].startswith("2") for lbl in writes), writes
    # Labels stay low-cardinality: object types and subject kinds, never names.
    labels = {v for (_, lbl) in syncer for _, v in lbl}
    assert not any("web" in v for v in labels), labels
