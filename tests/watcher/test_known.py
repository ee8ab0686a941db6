"""The relist diff: publish what changed, tombstone only what is gone (no phantom deletes)."""

from __future__ import annotations

from typing import Any

from services.common import subjects
from services.common.bus import Delivery
from services.common.contracts import KindSynced, KubeObject, encode
from services.watcher.known import Seen, known_from_stream, plan_relist, seen_of
from services.watcher.trim import trim_service


def _svc(name: str, rv: str, port: int = 80, uid: str = "") -> dict[str, Any]:
    return trim_service({
        "metadata": {"name": name, "namespace": "ns", "uid": uid or f"u-{name}", "resourceVersion": rv},
        "spec": {"ports": [{"port": port}]},
    })


def test_relist_publishes_new_and_changed_and_tombstones_only_the_missing() -> None:
    known = {("ns", o["metadata"]["name"]): seen_of(o) for o in (_svc("same", "1"), _svc("changed", "1"),
                                                               _svc("gone", "1"), _svc("bumped", "1"))}
    listed = [_svc("same", "1"), _svc("changed", "9", port=81), _svc("new", "9"), _svc("bumped", "9")]
    plan = plan_relist(known, listed)
    assert [o["metadata"]["name"] for o in plan.upserts] == ["changed", "new"]
    assert [k for k, _ in plan.tombstones] == [("ns", "gone")]
    assert plan.tombstones[0][1].uid == "u-gone"


def test_relist_of_the_same_objects_is_a_no_op_and_an_empty_list_deletes_all() -> None:
    objs = [_svc("a", "1"), _svc("b", "2")]
    known = {("ns", o["metadata"]["name"]): seen_of(o) for o in objs}
    assert plan_relist(known, objs).unchanged
    assert sorted(k for k, _ in plan_relist(known, []).tombstones) == [("ns", "a"), ("ns", "b")]


def test_recreated_object_with_the_same_name_is_published() -> None:
    known = {("ns", "a"): seen_of(_svc("a", "1", uid="old"))}
    plan = plan_relist(known, [_svc("a", "5", uid="new")])
    assert [o["metadata"]["uid"] for o in plan.upserts] == ["new"]
    assert plan.tombstones == []


def _delivery(subject: str, data: bytes) -> Delivery:
    return Delivery(subject=subject, data=data, headers={}, stream_seq=1)


def test_known_from_stream_takes_live_objects_of_this_cluster_only() -> None:
    live = _svc("live", "3")
    msgs = [
        _delivery(subjects.k8s_object("c1", "Service", "ns", "live"), encode(KubeObject(
            cluster="c1", kind="Service", namespace="ns", name="live", uid="u-live", resource_version="3", obj=live))),
        _delivery(subjects.k8s_object("c1", "Service", "ns", "dead"), encode(KubeObject(
            cluster="c1", kind="Service", namespace="ns", name="dead", uid="u-dead", resource_version="4",
            deleted=True))),
        _delivery(subjects.k8s_synced("c1", "Service"), encode(KindSynced(
            cluster="c1", kind="Service", resource_version="4", count=1, epoch="e"))),
        _delivery(subjects.k8s_object("c2", "Service", "ns", "other"), encode(KubeObject(
            cluster="c2", kind="Service", namespace="ns", name="other", obj=_svc("other", "1")))),
    ]
    known = known_from_stream("c1", msgs)
    assert known == {"Service": {("ns", "live"): Seen("u-live", "3", seen_of(live).fingerprint)}}
