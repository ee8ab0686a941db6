"""Hand-written L4 trees in the shape docs/architecture.md gives ("The L4 tree")."""

from __future__ import annotations

from typing import Any

from services.common.contracts import AviObject, ObjRef, VsTree

_PROTO = {"TCP": "PROTOCOL_TCP", "UDP": "PROTOCOL_UDP"}
_HM = {"TCP": "System-TCP", "UDP": "System-UDP"}


def ref(obj_type: str, name: str) -> str:
    return f"/api/{obj_type}/?name={name}"


def markers(cluster: str, ns: str, svc: str) -> list[dict[str, Any]]:
    return [
        {"key": "clustername", "values": [cluster]},
        {"key": "Namespace", "values": [ns]},
        {"key": "ServiceName", "values": [svc]},
    ]


def l4_tree(
    cluster: str,
    svc: str,
    *,
    ns: str = "default",
    tenant: str = "admin",
    ports: list[tuple[str, int]] | None = None,
    endpoints: list[str] | None = None,
    target_port: int = 8080,
    network: str = "vip-net",
    subnet: tuple[str, int] = ("127.0.100.0", 24),
    cloud: str = "Default-Cloud",
    subnet6: tuple[str, int] | None = None,
) -> VsTree:
    ports = ports if ports is not None else [("TCP", 80)]
    endpoints = endpoints if endpoints is not None else ["10.0.0.1", "10.0.0.2"]
    base = f"{cluster}--{ns}-{svc}"
    common = {
        "created_by": f"ako-{cluster}",
        "tenant_ref": ref("tenant", tenant),
        "markers": markers(cluster, ns, svc),
    }
    objects: list[AviObject] = [
        AviObject(type="vsvip", name=base, body={
            "name": base, **common,
            "cloud_ref": ref("cloud", cloud),
            "vrf_context_ref": ref("vrfcontext", "global"),
            "vip": [{
                "vip_id": "0",
                "auto_allocate_ip": True,
                "auto_allocate_ip_type": "V4_V6" if subnet6 else "V4_ONLY",
                "ipam_network_subnet": {
                    "network_ref": ref("network", network),
                    "subnet": {"ip_addr": {"addr": subnet[0], "type": "V4"}, "mask": subnet[1]},
                    **({"subnet6": {"ip_addr": {"addr": subnet6[0], "type": "V6"}, "mask": subnet6[1]}}
                       if subnet6 else {}),
                },
            }],
        }),
    ]
    rules = []
    for i, (proto, port) in enumerate(ports):
        pool = f"{base}-{proto}-{port}"
        objects.append(AviObject(type="pool", name=pool, body={
            "name": pool, **common,
            "cloud_ref": ref("cloud", cloud),
            "default_server_port": target_port,
            "health_monitor_refs": [ref("healthmonitor", _HM[proto])],
            "servers": [
                {"ip": {"addr": ip, "type": "V4"}, "port": target_port, "enabled": True} for ip in endpoints
            ],
        }))
        rules.append({
            "name": f"{proto}-{port}",
            "index": i,
            "enable": True,
            "match": {
                "port": {"match_criteria": "IS_IN", "ports": [port]},
                "protocol": {"match_criteria": "IS_IN", "protocol": _PROTO[proto]},
            },
            "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": ref("pool", pool)}},
        })
    objects.append(AviObject(type="l4policyset", name=base, body={
        "name": base, **common,
        "l4_connection_policy": {"rules": rules},
    }))
    objects.append(AviObject(type="virtualservice", name=base, body={
        "name": base, **common,
        "cloud_ref": ref("cloud", cloud),
        "vrf_context_ref": ref("vrfcontext", "global"),
        "se_group_ref": ref("serviceenginegroup", "Default-Group"),
        "vsvip_ref": ref("vsvip", base),
        "application_profile_ref": ref("applicationprofile", "System-L4-Application"),
        "network_profile_ref": ref("networkprofile", "System-TCP-Proxy"),
        "services": [{"port": port, "enable_ssl": False} for _, port in ports],
        "l4_policies": [{"index": 0, "l4_policy_set_ref": ref("l4policyset", base)}],
        "traffic_enabled": True,
    }))
    return VsTree(
        cluster=cluster, tenant=tenant, vs_name=base, objects=tuple(objects),
        sources=(ObjRef(kind="Service", namespace=ns, name=svc),),
    ).with_checksum()


def deleted_tree(tree: VsTree) -> VsTree:
    return VsTree(cluster=tree.cluster, tenant=tree.tenant, vs_name=tree.vs_name, deleted=True,
                  sources=tree.sources).with_checksum()
