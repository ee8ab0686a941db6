"""Which Services a cluster's albus handles: the one rule the translator and health share.

A Service is albus's when its namespace passes AKO's ``namespaceSelector``
and it is a LoadBalancer of albus's class (or of no class, albus being the
default controller), or it joins a Gateway by label without being another
load-balancer controller's. The translator builds trees only for such
Services; health writes status only on them (docs/health.md, "Whose
status").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.config import Config

GATEWAY_NAME_LABEL = "ako.vmware.com/gateway-name"
GATEWAY_NAMESPACE_LABEL = "ako.vmware.com/gateway-namespace"


def handles(svc: dict[str, Any], cfg: Config) -> bool:
    """Is this a LoadBalancer Service for us (AKO's class, or no class when we are the default)?"""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return False
    lb_class = spec.get("loadBalancerClass")
    if lb_class:
        return bool(lb_class == cfg.L4Settings.loadBalancerClass)
    return cfg.L4Settings.defaultLBController


def namespace_selected(labels: Mapping[str, str] | None, cfg: Config) -> bool:
    """AKO's namespaceSelector on a namespace's labels: with one set, only labelled namespaces are handled."""
    sel = cfg.AKOSettings.namespaceSelector
    if not sel.labelKey:
        return True
    return bool((labels or {}).get(sel.labelKey) == sel.labelValue)


def joins_gateway(svc: dict[str, Any]) -> bool:
    labels = (svc.get("metadata") or {}).get("labels") or {}
    return bool(str(labels.get(GATEWAY_NAME_LABEL) or "").strip())


def ours(svc: dict[str, Any], cfg: Config, namespace_labels: Mapping[str, str] | None) -> bool:
    """The whole rule for one Service in a namespace with ``namespace_labels``."""
    if not namespace_selected(namespace_labels, cfg):
        return False
    if handles(svc, cfg):
        return True
    return joins_gateway(svc) and (svc.get("spec") or {}).get("type") != "LoadBalancer"
