"""Which infrastructure a load balancer uses: an AviInfraSetting, or the cluster's defaults.

Precedence for a Service (AKO's): the ``aviinfrasetting.ako.vmware.com/name``
annotation on the Service, then the same annotation on its Namespace, then
the cluster defaults from the values (``ControllerSettings.serviceEngineGroupName``,
``NetworkSettings.vipNetworkList``, ``enableRHI``, ``bgpPeerLabels``). An
Ingress's IngressClass ``spec.parameters`` and a Gateway's GatewayClass
``spec.parametersRef`` take the Service annotation's place for those kinds.

An AviInfraSetting is used only once the health service has accepted it
(``status.status: Accepted``, checked against the controller); one that is
missing, pending or rejected is a problem on the object that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.common.config import Config, VipNetwork
from services.common.contracts import ObjRef, Problem
from services.translator import ako_annotations as ann_keys

KIND = "AviInfraSetting"
GROUP = "ako.vmware.com"
ACCEPTED = "Accepted"


@dataclass(frozen=True)
class Infra:
    name: str  # "" for the cluster defaults
    se_group: str
    vip_networks: tuple[VipNetwork, ...]
    enable_rhi: bool
    bgp_peer_labels: tuple[str, ...]
    shard_size: str


def defaults(cfg: Config) -> Infra:
    net = cfg.NetworkSettings
    return Infra(name="", se_group=cfg.ControllerSettings.serviceEngineGroupName,
                 vip_networks=tuple(net.vipNetworkList), enable_rhi=net.enableRHI,
                 bgp_peer_labels=tuple(sorted(net.bgpPeerLabels)), shard_size=cfg.L7Settings.shardVSSize)


def from_object(obj: dict[str, Any], cfg: Config) -> Infra:
    """An AviInfraSetting's spec over the cluster defaults (what it leaves out stays as configured).

    Raises ``ValueError`` naming the field when a VIP network is malformed.
    """
    base = defaults(cfg)
    spec = obj.get("spec") or {}
    network = spec.get("network") or {}
    nets: list[VipNetwork] = []
    for i, n in enumerate(network.get("vipNetworks") or []):
        try:
            nets.append(VipNetwork(**{k: str(n[k]) for k in ("networkName", "networkUUID", "cidr", "v6cidr")
                                      if n.get(k)}))
        except ValidationError as exc:
            errors = "; ".join(str(e.get("msg", "")) for e in exc.errors())
            raise ValueError(f"spec.network.vipNetworks[{i}]: {errors}") from None
    labels = network.get("bgpPeerLabels")
    return Infra(
        name=str((obj.get("metadata") or {}).get("name", "")),
        se_group=str((spec.get("seGroup") or {}).get("name") or base.se_group),
        vip_networks=tuple(nets) or base.vip_networks,
        enable_rhi=bool(network["enableRhi"]) if "enableRhi" in network else base.enable_rhi,
        bgp_peer_labels=tuple(sorted(labels)) if labels is not None else base.bgp_peer_labels,
        shard_size=str((spec.get("l7Settings") or {}).get("shardSize") or base.shard_size),
    )


def class_parameters(obj: dict[str, Any]) -> str:
    """The AviInfraSetting an IngressClass (``spec.parameters``) or GatewayClass (``spec.parametersRef``) names."""
    spec = obj.get("spec") or {}
    p = spec.get("parameters") or spec.get("parametersRef") or {}
    group = p.get("apiGroup", p.get("group"))
    if group == GROUP and p.get("kind") == KIND and p.get("name"):
        return str(p["name"])
    return ""


def wanted_name(obj: dict[str, Any], namespace: dict[str, Any] | None, class_obj: dict[str, Any] | None = None) -> str:
    """The AviInfraSetting an object asks for, by the precedence above ("" = cluster defaults)."""
    own = ann_keys.of(obj).get(ann_keys.INFRA_SETTING, "").strip()
    if own:
        return own
    if class_obj is not None and (by_class := class_parameters(class_obj)):
        return by_class
    return ann_keys.of(namespace).get(ann_keys.INFRA_SETTING, "").strip()


def resolve(name: str, setting: dict[str, Any] | None, cfg: Config, src: ObjRef) -> tuple[Infra | None, list[Problem]]:
    if not name:
        return defaults(cfg), []
    if setting is None:
        return None, [Problem(source=src, reason="AviInfraSettingNotFound",
                              message=f"AviInfraSetting {name} does not exist")]
    status = setting.get("status") or {}
    if status.get("status") != ACCEPTED:
        why = f"rejected: {status.get('error') or 'no reason given'}" if status.get("status") else \
            "not validated against the controller yet"
        return None, [Problem(source=src, reason="AviInfraSettingNotAccepted",
                              message=f"AviInfraSetting {name} is {why}")]
    try:
        return from_object(setting, cfg), []
    except ValueError as exc:
        return None, [Problem(source=src, reason="InvalidAviInfraSetting", message=f"AviInfraSetting {name}: {exc}")]
