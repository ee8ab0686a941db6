"""List-then-watch semantics: resuming from a resourceVersion, 410 after compaction, bookmarks."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from albus.controlplane.launcher import ControlPlane

from .helpers import names, watch_events

pytestmark = pytest.mark.k8s


def _cm(name: str, value: str = "1") -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"v": value})


def test_watch_resumes_from_list_resource_version(kube_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    core.create_namespaced_config_map(kube_namespace, _cm("a"))
    core.create_namespaced_config_map(kube_namespace, _cm("b"))
    listed = core.list_namespaced_config_map(kube_namespace)
    assert sorted(i.metadata.name for i in listed.items) == ["a", "b"]
    list_rv = listed.metadata.resource_version

    # Changes made after the list, before the watch starts, must not be lost.
    core.create_namespaced_config_map(kube_namespace, _cm("c"))
    core.patch_namespaced_config_map("a", kube_namespace, {"data": {"v": "2"}})

    events = watch_events(core.list_namespaced_config_map, kube_namespace, count=2, resource_version=list_rv)
    assert names(events) == [("ADDED", "c"), ("MODIFIED", "a")]
    assert events[1]["object"].data == {"v": "2"}
    last_rv = events[-1]["object"].metadata.resource_version

    # A second watch resuming from the last event sees only what came after it.
    core.delete_namespaced_config_map("b", kube_namespace)
    events = watch_events(core.list_namespaced_config_map, kube_namespace, count=1, resource_version=last_rv)
    assert names(events) == [("DELETED", "b")]


def test_watch_field_and_label_selectors(kube_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="other", labels={"app": "x"}))
    )
    core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="mine", labels={"app": "albus"}))
    )
    by_label = watch_events(
        core.list_namespaced_config_map, kube_namespace, count=1, resource_version=rv, label_selector="app=albus"
    )
    by_field = watch_events(
        core.list_namespaced_config_map, kube_namespace, count=1, resource_version=rv,
        field_selector="metadata.name=other",
    )
    assert names(by_label) == [("ADDED", "mine")]
    assert names(by_field) == [("ADDED", "other")]


def test_watch_from_compacted_resource_version_is_gone(
    control_plane: ControlPlane, kube_client: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_client)
    old_rv = core.create_namespaced_config_map(kube_namespace, _cm("x")).metadata.resource_version
    for i in range(3):
        core.patch_namespaced_config_map("x", kube_namespace, {"data": {"v": str(i)}})

    # Before compaction the old resourceVersion is still watchable.
    before = watch_events(core.list_namespaced_config_map, kube_namespace, count=1, resource_version=old_rv)
    assert names(before) == [("MODIFIED", "x")]

    revision = control_plane.compact(probe_paths=[f"/api/v1/namespaces/{kube_namespace}/configmaps"])
    assert revision > int(old_rv)

    with pytest.raises(ApiException) as gone:
        watch_events(core.list_namespaced_config_map, kube_namespace, count=1, resource_version=old_rv)
    assert gone.value.status == 410

    # The documented recovery works: list again, then watch from the new list.
    relisted = core.list_namespaced_config_map(kube_namespace)
    assert [i.data for i in relisted.items] == [{"v": "2"}]
    core.patch_namespaced_config_map("x", kube_namespace, {"data": {"v": "after"}})
    events = watch_events(
        core.list_namespaced_config_map, kube_namespace, count=1, resource_version=relisted.metadata.resource_version
    )
    assert names(events) == [("MODIFIED", "x")]
    assert events[0]["object"].data == {"v": "after"}


def test_watch_bookmark_advances_past_filtered_changes(kube_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    start_rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    # kube-apiserver sends a bookmark 2 s before a watch's timeout (and about
    # every minute), carrying the newest resourceVersion it has processed, if
    # that is newer than what the watcher has seen. The timeout is the deadline.
    resp = core.list_namespaced_config_map(
        kube_namespace,
        watch=True,
        label_selector="app=albus",
        resource_version=start_rv,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
        _preload_content=False,
    )
    try:
        # The watch is registered once its response headers are back. A change
        # it filters out moves the resourceVersion on; the bookmark says so.
        unseen = core.create_namespaced_config_map(
            kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="unseen", labels={"app": "other"}))
        ).metadata.resource_version
        events = []
        for line in iter_resp_lines(resp):
            events.append(json.loads(line))
            if events[-1]["type"] == "BOOKMARK":
                break
    finally:
        resp.close()
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(unseen)
