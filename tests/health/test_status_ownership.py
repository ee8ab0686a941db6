"""Whose status health writes: only Services albus handles; of others, at most what albus itself wrote, once."""

from __future__ import annotations

from typing import Any

from services.common import service_ownership as ownership
from services.common.config import Config
from services.common.contracts import ApplyOutcome, KubeObject, ObjRef
from services.health.conditions import CONDITION_TYPE
from services.health.desired import HealthState
from services.health.endpoint_pods import EndpointPods
from services.health.lb_ready import READY_CONDITION_TYPE
from services.health.service_status import plan

SVC = ObjRef(kind="Service", namespace="shop", name="web")
KEY = ("shop", "web")
NOW = "2026-01-01T00:00:00Z"
OTHERS_VIP = "192.0.2.7"


def _outcome(vips: tuple[str, ...] = ("10.0.0.5",), deleted: bool = False, ok: bool = True,
             sources: tuple[ObjRef, ...] = (SVC,)) -> ApplyOutcome:
    return ApplyOutcome(cluster="c", tenant="admin", vs_name="c--shop-web", checksum="x", ok=ok, deleted=deleted,
                        vips=() if deleted else vips, error=None if ok else "refused", sources=sources)


def _cond(type_: str = CONDITION_TYPE, message: str = "virtualservice c--shop-web has VIP 10.0.0.5") -> dict[str, Any]:
    return {"type": type_, "status": "True", "reason": "Programmed", "message": message, "lastTransitionTime": NOW}


def _service(ips: tuple[str, ...] = (), conds: tuple[dict[str, Any], ...] = (), lb_class: str | None = None,
             type_: str = "LoadBalancer") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ips:
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]}
    if conds:
        status["conditions"] = list(conds)
    spec: dict[str, Any] = {"type": type_}
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"}, "spec": spec, "status": status}


def test_a_service_only_a_slice_named_gets_no_write_at_all() -> None:
    """The bug: health saw another controller's Service through its EndpointSlice and nulled its VIP."""
    st = HealthState()
    eps = EndpointPods()
    eps.set_slice(KubeObject(cluster="c", kind="EndpointSlice", namespace="shop", name="web-abc", uid="u",
                             resource_version="1", obj={"metadata": {"labels": {
                                 "kubernetes.io/service-name": "web"}}, "endpoints": []}))
    # Another albus install's status: the same condition types, its VIP.
    foreign = _service(ips=(OTHERS_VIP,), conds=(_cond(message=f"virtualservice x--shop-web has VIP {OTHERS_VIP}"),
                                                 _cond(READY_CONDITION_TYPE, "3 of 3 members up")))
    for ours in (True, False):
        assert plan(foreign, st.desired(KEY), NOW, ours=ours).empty


def test_a_service_not_ours_gets_no_write_even_with_a_live_outcome() -> None:
    """The bus lags (class just changed to another controller's): its VIP is not overwritten."""
    st = HealthState()
    st.set_outcome("o1", _outcome())
    svc = _service(ips=(OTHERS_VIP,), lb_class="example.com/other-lb")
    assert not ownership.ours(svc, Config(), None)
    assert plan(svc, st.desired(KEY), NOW, ours=False).empty


def test_a_foreign_vip_on_a_service_albus_has_nothing_to_say_about_is_kept() -> None:
    """Ours by class, but nothing on the bus says albus wrote anything: no write (it used to null the VIP)."""
    st = HealthState()
    st.set_outcome("o1", _outcome(deleted=True))
    assert plan(_service(ips=(OTHERS_VIP,)), st.desired(KEY), NOW, ours=True).empty


def test_released_service_loses_albus_conditions_and_vip_once_and_others_stay() -> None:
    """Class changed to another controller's, which wrote its VIP before albus's VS was deleted."""
    st = HealthState()
    st.set_outcome("o1", _outcome(deleted=True))
    theirs = {"type": "example.com/Ready", "status": "True", "reason": "X", "message": "", "lastTransitionTime": NOW}
    cur = _service(ips=("10.0.0.5", OTHERS_VIP), lb_class="example.com/other-lb",
                   conds=(theirs, _cond(), _cond(READY_CONDITION_TYPE, "3 of 3 members up")))
    p = plan(cur, st.desired(KEY), NOW, ours=False)
    assert p.patch is not None
    assert p.patch["status"] == {"conditions": [theirs], "loadBalancer": {"ingress": [{"ip": OTHERS_VIP,
                                                                                       "ipMode": "VIP"}]}}
    assert [e.reason for e in p.events] == ["Removed"]
    after = {**cur, "status": {"conditions": [theirs], "loadBalancer": p.patch["status"]["loadBalancer"]}}
    assert plan(after, st.desired(KEY), NOW, ours=False).empty


def test_released_while_the_outcome_is_live_takes_back_the_vip_the_bus_gives() -> None:
    """Namespace unlabelled: albus's VIP goes (named by the live outcome even after a ControllerError message)."""
    st = HealthState()
    st.set_outcome("o1", _outcome(ok=False))
    err = {**_cond(), "status": "False", "reason": "ControllerError", "message": "virtualservice c--shop-web: refused"}
    p = plan(_service(ips=("10.0.0.5",), conds=(err,)), st.desired(KEY), NOW, ours=False)
    assert p.patch is not None
    assert p.patch["status"] == {"conditions": None, "loadBalancer": {"ingress": None}}
    assert p.events == []  # nothing was deleted yet


def test_ownership_rule() -> None:
    cfg = Config.model_validate({"AKOSettings": {"namespaceSelector": {"labelKey": "lb", "labelValue": "albus"}}})
    lb = _service()
    assert ownership.ours(lb, cfg, {"lb": "albus"})
    assert not ownership.ours(lb, cfg, {"lb": "other"}) and not ownership.ours(lb, cfg, None)
    assert ownership.ours(_service(lb_class="ako.vmware.com/avi-lb"), cfg, {"lb": "albus"})
    assert not ownership.ours(_service(lb_class="example.com/other-lb"), cfg, {"lb": "albus"})
    assert not ownership.ours(_service(type_="ClusterIP"), cfg, {"lb": "albus"})
    joined = {**_service(type_="ClusterIP"), "metadata": {"name": "web", "namespace": "shop", "labels": {
        ownership.GATEWAY_NAME_LABEL: "gw"}}}
    assert ownership.ours(joined, cfg, {"lb": "albus"})
    no_default = Config.model_validate({"L4Settings": {"defaultLBController": False}})
    assert not ownership.ours(lb, no_default, None)
