"""One L7 VS tree for Ingress hosts (pure): a shared parent with SNI children, or a host's dedicated VS.

Shared parent ``<cluster>--Shared-L7-[<infra>-]<n>`` (``VS_TYPE_VH_PARENT``,
ports 80 and 443/SSL with the controller's ``System-Default-Cert``): its
httppolicyset (named as the VS) sends each plain-HTTP host's paths to their
pools and redirects each TLS host's port-80 requests to HTTPS (302, query
kept); with the redirect switched off a TLS host's paths are served on port 80
too. Each TLS host with a certificate is an SNI child ``<cluster>--[<infra>-]<host>``
(``VS_TYPE_VH_CHILD``, ``vh_domain_name`` the host, its certificate of the
same name, its own httppolicyset of the same name). Children live in their
parent's tree: they are created after it and deleted before it (the syncer's
order), and one tree keeps a shard consistent.

Dedicated (``<cluster>--[<infra>-]<host>-L7-dedicated``): an ordinary VS
with its own vsvip, the certificate on the VS itself when the host has TLS.

Every policy set ends with a rule answering 404, as a Gateway's does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.common.config import Config
from services.common.contracts import AviObject, ObjRef, VsTree
from services.translator import l4
from services.translator.gateway_certs import SSL_PROFILE
from services.translator.gateway_http import APP_PROFILE_HTTP, NOT_FOUND, path_conditions
from services.translator.infra import Infra
from services.translator.refs import markers, ref

DEFAULT_CERT = "System-Default-Cert"  # the controller's own; the parent's 443 needs one before SNI picks a child
HTTP_PORT, HTTPS_PORT = 80, 443
REDIRECT_CODE = "HTTP_REDIRECT_STATUS_CODE_302"


@dataclass(frozen=True)
class Route:
    path: str
    exact: bool
    pool: str | None  # None: the backend does not resolve, the path answers 501 (as a Gateway's)


@dataclass
class HostRoutes:
    host: str
    routes: list[Route]  # most specific first
    default_pool: str | None
    cert: AviObject | None  # a TLS host's certificate (usable, or kept from before); None: plain HTTP
    redirect: bool
    infra: str


def _host_hdr(host: str) -> dict[str, Any]:
    return {"match_criteria": "HDR_EQUALS", "value": [host], "match_case": "INSENSITIVE"}


def _switch(pool: str | None) -> dict[str, Any]:
    if pool is None:
        return {"action": "HTTP_SWITCHING_SELECT_LOCAL", "status_code": "HTTP_LOCAL_RESPONSE_STATUS_CODE_501"}
    return {"action": "HTTP_SWITCHING_SELECT_POOL", "pool_ref": ref("pool", pool)}


def host_rules(h: HostRoutes) -> list[dict[str, Any]]:
    """The host's paths, most specific first, then its default backend."""
    out: list[dict[str, Any]] = []
    for i, r in enumerate(h.routes):
        conds = path_conditions({"path": {"type": "Exact" if r.exact else "PathPrefix", "value": r.path}})
        for k, (criteria, value) in enumerate(conds):
            out.append({"name": f"{h.host}-{i}-{k}", "enable": True, "switching_action": _switch(r.pool), "match": {
                "host_hdr": _host_hdr(h.host),
                "path": {"match_criteria": criteria, "match_str": [value], "match_case": "SENSITIVE"}}})
    if h.default_pool is not None:
        out.append({"name": f"{h.host}-default", "enable": True, "switching_action": _switch(h.default_pool),
                    "match": {"host_hdr": _host_hdr(h.host),
                              "path": {"match_criteria": "BEGINS_WITH", "match_str": ["/"]}}})
    return out


def redirect_rule(host: str) -> dict[str, Any]:
    return {"name": f"{host}-redirect", "enable": True,
            "match": {"host_hdr": _host_hdr(host), "vs_port": {"match_criteria": "IS_IN", "ports": [HTTP_PORT]}},
            "redirect_action": {"protocol": "HTTPS", "port": HTTPS_PORT, "keep_query": True,
                                "status_code": REDIRECT_CODE}}


def _policyset(name: str, rules: list[dict[str, Any]], common: dict[str, Any], marks: list[dict[str, Any]]
               ) -> AviObject:
    rules = [*rules, {"name": "default-backend-rule", "enable": True,
                      "match": {"path": {"match_criteria": "BEGINS_WITH", "match_str": ["/"]}},
                      "switching_action": {"action": "HTTP_SWITCHING_SELECT_LOCAL", "status_code": NOT_FOUND}}]
    return AviObject(type="httppolicyset", name=name, body={
        "name": name, **{k: v for k, v in common.items() if k != "cloud_ref"},
        "http_request_policy": {"rules": [{**r, "index": i + 1} for i, r in enumerate(rules)]}, "markers": marks})


def _metadata(sources: tuple[ObjRef, ...], hosts: list[str]) -> str:
    return json.dumps({"ingress_name": [f"{s.namespace}/{s.name}" for s in sources], "hostnames": hosts},
                      separators=(",", ":"))


def _vs(name: str, common: dict[str, Any], cfg: Config, chosen: Infra, marks: list[dict[str, Any]],
        meta: str) -> dict[str, Any]:
    vs: dict[str, Any] = {
        "name": name, **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "se_group_ref": ref("serviceenginegroup", chosen.se_group),
        "application_profile_ref": ref("applicationprofile", APP_PROFILE_HTTP),
        "http_policies": [{"index": 11, "http_policy_set_ref": ref("httppolicyset", name)}],
        "traffic_enabled": True,
        "east_west_placement": False,
        "service_metadata": meta,
        "markers": marks,
    }
    return vs


def _listening(vs: dict[str, Any], vs_name: str, chosen: Infra, ssl: bool) -> None:
    vs["vsvip_ref"] = ref("vsvip", vs_name)
    vs["network_profile_ref"] = ref("networkprofile", l4.NETWORK_PROFILE["TCP"])
    vs["services"] = [{"port": HTTP_PORT, "enable_ssl": False}] + (
        [{"port": HTTPS_PORT, "enable_ssl": True}] if ssl else [])
    if chosen.enable_rhi:
        vs["enable_rhi"] = True


def build(vs_name: str, dedicated: bool, hosts: list[HostRoutes], pools: list[AviObject], chosen: Infra,
          the_vip: dict[str, Any], sources: tuple[ObjRef, ...], cfg: Config, tenant: str) -> VsTree:
    cluster = cfg.cluster
    common = l4.common_fields(cfg, tenant)
    hosts = sorted(hosts, key=lambda h: h.host)
    certs: list[AviObject] = []
    children: list[AviObject] = []
    rules: list[dict[str, Any]] = []
    for h in hosts:
        if h.cert is not None and h.redirect:
            rules.append(redirect_rule(h.host))
        if h.cert is None or not h.redirect or dedicated:
            rules += host_rules(h)
        if h.cert is None:
            continue
        certs.append(h.cert)
        if dedicated:
            continue
        child_marks = markers(cluster, Host=h.host, InfrasettingName=h.infra)
        children += [_policyset(h.cert.name, host_rules(h), common, child_marks)]
        child = _vs(h.cert.name, common, cfg, chosen, child_marks, _metadata(sources, [h.host]))
        child.update({"type": "VS_TYPE_VH_CHILD", "vh_parent_vs_ref": ref("virtualservice", vs_name),
                      "vh_domain_name": [h.host], "ssl_profile_ref": ref("sslprofile", SSL_PROFILE),
                      "ssl_key_and_certificate_refs": [ref("sslkeyandcertificate", h.cert.name)]})
        children.append(AviObject(type="virtualservice", name=h.cert.name, body=child))
    vs_marks = markers(cluster, Host=hosts[0].host, InfrasettingName=hosts[0].infra) if dedicated \
        else markers(cluster)
    vs = _vs(vs_name, common, cfg, chosen, vs_marks, _metadata(sources, [h.host for h in hosts]))
    ssl_certs = [c.name for c in certs] if dedicated else [DEFAULT_CERT]
    _listening(vs, vs_name, chosen, bool(ssl_certs))
    if ssl_certs:
        vs["ssl_key_and_certificate_refs"] = [ref("sslkeyandcertificate", c) for c in ssl_certs]
        vs["ssl_profile_ref"] = ref("sslprofile", SSL_PROFILE)
    if not dedicated:
        vs["type"] = "VS_TYPE_VH_PARENT"
        vs["vh_type"] = "VS_TYPE_VH_SNI"
    objects = (l4.vsvip_object(vs_name, common, cfg, the_vip, chosen, []),
               *sorted(certs, key=lambda o: o.name), *sorted(pools, key=lambda o: o.name),
               _policyset(vs_name, rules, common, vs_marks),
               AviObject(type="virtualservice", name=vs_name, body=vs), *children)
    return VsTree.checksummed(cluster=cluster, tenant=tenant, vs_name=vs_name, objects=objects, sources=sources)
