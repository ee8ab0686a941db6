"""Which pods the webhook gates and the answer it gives, with no API server involved."""

from __future__ import annotations

import base64
import json

from services.common.contracts import KubeObject
from services.health import readiness_gate as rg


def _selectors() -> rg.Selectors:
    s = rg.Selectors()
    for name, sel in (("web", {"app": "web"}), ("raw", None)):
        s.set_service(KubeObject(cluster="c", kind="Service", namespace="shop", name=name,
                                 obj={"spec": {"selector": sel} if sel else {}}))
    return s


def test_only_pods_a_handled_service_selects_are_gated_and_an_existing_gate_list_is_appended_to() -> None:
    s = _selectors()
    handled = {("shop", "web")}.__contains__
    pod = {"metadata": {"labels": {"app": "web", "tier": "x"}}, "spec": {}}
    assert rg.mutation(pod, "shop", s, handled) == [
        {"op": "add", "path": "/spec/readinessGates", "value": [{"conditionType": rg.GATE_TYPE}]}]
    with_gates = {"metadata": {"labels": {"app": "web"}}, "spec": {"readinessGates": [{"conditionType": "x/y"}]}}
    assert rg.mutation(with_gates, "shop", s, handled) == [
        {"op": "add", "path": "/spec/readinessGates/-", "value": {"conditionType": rg.GATE_TYPE}}]
    assert rg.mutation({"metadata": {"labels": {"app": "db"}}}, "shop", s, handled) == []
    assert rg.mutation(pod, "other-ns", s, handled) == []
    assert rg.mutation(pod, "shop", s, lambda _k: False) == []  # the Service is not (yet) albus's
    gated = {"metadata": {"labels": {"app": "web"}}, "spec": {"readinessGates": [{"conditionType": rg.GATE_TYPE}]}}
    assert rg.mutation(gated, "shop", s, handled) == []
    s.set_service(KubeObject(cluster="c", kind="Service", namespace="shop", name="web", deleted=True))
    assert rg.mutation(pod, "shop", s, handled) == []


def test_the_answer_always_admits_and_the_registration_fails_open() -> None:
    patch = [{"op": "add", "path": "/spec/readinessGates", "value": [{"conditionType": rg.GATE_TYPE}]}]
    out = rg.review_response({"request": {"uid": "u-1"}}, patch)["response"]
    assert out["uid"] == "u-1" and out["allowed"] is True and out["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(out["patch"])) == patch
    assert rg.review_response({"request": {"uid": "u-2"}}, [])["response"] == {"uid": "u-2", "allowed": True}
    [hook] = rg.registration(b"CA", "https://127.0.0.1:9443/mutate-pods")["webhooks"]
    assert hook["failurePolicy"] == "Ignore" and hook["namespaceSelector"] == {
        "matchLabels": {rg.OPT_IN_LABEL: rg.OPT_IN_VALUE}}
    assert hook["rules"][0]["operations"] == ["CREATE"] and hook["rules"][0]["resources"] == ["pods"]
