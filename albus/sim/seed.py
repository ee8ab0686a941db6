"""What a fresh controller holds (system objects), and the YAML seed that adds infrastructure.

Seed file (YAML), every key optional:

    tenants: [team-a, {name: team-b}]
    clouds:
      - name: k8s-cloud            # vtype defaults to CLOUD_NONE; gets its own `global` VRF and Default-Group
        ipam_networks: [vip-net]   # optional: an internal IPAM profile <cloud>-ipam with these usable networks
    vrfcontexts:                   # BGP peers on a VRF (created if missing, else updated)
      - name: global
        cloud: Default-Cloud
        local_as: 65000
        bgp_peers: [{peer_ip: 10.0.0.1, remote_as: 65001, label: rack-a}]
    serviceenginegroups: [{name: seg-a, cloud: Default-Cloud}]
    networks:
      - name: vip-net
        cloud: Default-Cloud
        subnets:
          - {prefix: 127.0.100.0/24, static_ranges: [127.0.100.10-127.0.100.250], type: STATIC_IPS_FOR_VIP}
          - {prefix: "fd00:100::/64", static_ranges: ["fd00:100::10-fd00:100::ff"]}
    objects:                       # anything else, as API bodies
      - {type: pool, tenant: admin, data: {name: p1}}
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from albus.sim.objects import Objects
from albus.sim.store import ADMIN_TENANT

Json = Any

APP_PROFILES = [
    ("System-HTTP", "APPLICATION_PROFILE_TYPE_HTTP"),
    ("System-Secure-HTTP", "APPLICATION_PROFILE_TYPE_HTTP"),
    ("System-Secure-HTTP-VDI", "APPLICATION_PROFILE_TYPE_HTTP"),
    ("System-L4-Application", "APPLICATION_PROFILE_TYPE_L4"),
    ("System-SSL-Application", "APPLICATION_PROFILE_TYPE_SSL"),
    ("System-DNS", "APPLICATION_PROFILE_TYPE_DNS"),
    ("System-Syslog", "APPLICATION_PROFILE_TYPE_SYSLOG"),
]
NETWORK_PROFILES = [
    ("System-TCP-Proxy", "PROTOCOL_TYPE_TCP_PROXY"),
    ("System-TCP-Fast-Path", "PROTOCOL_TYPE_TCP_FAST_PATH"),
    ("System-UDP-Fast-Path", "PROTOCOL_TYPE_UDP_FAST_PATH"),
    ("System-UDP-Per-Pkt", "PROTOCOL_TYPE_UDP_FAST_PATH"),
    ("System-UDP-Proxy", "PROTOCOL_TYPE_UDP_PROXY"),
    ("System-SCTP-Proxy", "PROTOCOL_TYPE_SCTP_PROXY"),
]
# Lua parsers a datascript may `require` (AKO's passthrough VS uses Default-TLS).
PROTOCOL_PARSERS = ("Default-TLS", "Default-DHCP", "Default-Radius")
HEALTH_MONITORS = [
    ("System-TCP", "HEALTH_MONITOR_TCP", {}),
    ("System-UDP", "HEALTH_MONITOR_UDP", {}),
    ("System-HTTP", "HEALTH_MONITOR_HTTP", {"http_monitor": {"http_request": "HEAD / HTTP/1.0",
                                                             "http_response_code": ["HTTP_2XX", "HTTP_3XX"]}}),
    ("System-HTTPS", "HEALTH_MONITOR_HTTPS", {"https_monitor": {"http_request": "HEAD / HTTP/1.0",
                                                                "http_response_code": ["HTTP_2XX", "HTTP_3XX"]}}),
    ("System-Ping", "HEALTH_MONITOR_PING", {}),
    ("System-DNS", "HEALTH_MONITOR_DNS", {}),
    ("System-SCTP", "HEALTH_MONITOR_SCTP", {}),
]


def _system_cert() -> tuple[str, str]:
    # EC keeps startup fast; a fresh simulator is made for every test
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "System Default Cert")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def seed_system(o: Objects) -> None:
    def mk(otype: str, body: dict[str, Json], slug: str | None = None) -> None:
        o.create(otype, ADMIN_TENANT, body, slug=slug, system=True)

    mk("tenant", {"name": "admin", "local": True}, slug="admin")
    mk("cloud", {"name": "Default-Cloud", "vtype": "CLOUD_NONE"})
    _cloud_defaults(o, "Default-Cloud", system=True)
    mk("analyticsprofile", {"name": "System-Analytics-Profile"})
    mk("sslprofile", {"name": "System-Standard"})
    mk("applicationpersistenceprofile", {"name": "System-Persistence-Client-IP",
                                         "persistence_type": "PERSISTENCE_TYPE_CLIENT_IP_ADDRESS"})
    mk("applicationpersistenceprofile", {"name": "System-Persistence-Http-Cookie",
                                         "persistence_type": "PERSISTENCE_TYPE_HTTP_COOKIE"})
    for name, t in APP_PROFILES:
        mk("applicationprofile", {"name": name, "type": t})
    for name, t in NETWORK_PROFILES:
        mk("networkprofile", {"name": name, "profile": {"type": t}})
    for name, t, extra in HEALTH_MONITORS:
        mk("healthmonitor", {"name": name, "type": t, **extra})
    for name in PROTOCOL_PARSERS:
        mk("protocolparser", {"name": name})
    cert, key = _system_cert()
    mk("sslkeyandcertificate", {"name": "System-Default-Cert", "certificate": {"certificate": cert}, "key": key,
                                "type": "SSL_CERTIFICATE_TYPE_SYSTEM"})


def _cloud_defaults(o: Objects, cloud: str, *, system: bool) -> None:
    """Each cloud comes with `global` and `management` VRFs and a Default-Group, as on a controller."""
    ref = f"/api/cloud/?name={cloud}"
    o.create("vrfcontext", ADMIN_TENANT, {"name": "global", "cloud_ref": ref, "system_default": True},
             system=system)
    o.create("vrfcontext", ADMIN_TENANT, {"name": "management", "cloud_ref": ref, "system_default": True},
             system=system)
    o.create("serviceenginegroup", ADMIN_TENANT, {"name": "Default-Group", "cloud_ref": ref}, system=system)


def load_seed(src: str | Path | dict[str, Json] | None) -> dict[str, Json]:
    if src is None:
        return {}
    if isinstance(src, dict):
        return src
    data = yaml.safe_load(Path(src).read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"seed {src}: expected a mapping at the top level")
    return data


def _ip(addr: str) -> dict[str, str]:
    a = ipaddress.ip_address(addr)
    return {"addr": str(a), "type": "V4" if a.version == 4 else "V6"}


def _subnet(spec: dict[str, Json]) -> dict[str, Json]:
    net = ipaddress.ip_network(spec["prefix"], strict=False)
    ranges = []
    for r in spec.get("static_ranges", []):
        b, e = (x.strip() for x in str(r).split("-", 1)) if "-" in str(r) else (str(r), str(r))
        ranges.append({"range": {"begin": _ip(b), "end": _ip(e)},
                       "type": spec.get("type", "STATIC_IPS_FOR_VIP_AND_SE")})
    return {"prefix": {"ip_addr": _ip(str(net.network_address)), "mask": net.prefixlen},
            "static_ip_ranges": ranges}


def apply_seed(o: Objects, seed: dict[str, Json]) -> None:
    unknown = set(seed) - {"tenants", "clouds", "vrfcontexts", "serviceenginegroups", "networks", "objects"}
    if unknown:
        raise ValueError(f"seed: unknown keys {sorted(unknown)}")
    for t in seed.get("tenants", []) or []:
        o.create("tenant", ADMIN_TENANT, {"name": t} if isinstance(t, str) else dict(t))
    ipam_clouds: list[tuple[str, list[str]]] = []
    for c in seed.get("clouds", []) or []:
        c = {"name": c} if isinstance(c, str) else dict(c)
        nets = c.pop("ipam_networks", None)
        c.setdefault("vtype", "CLOUD_NONE")
        o.create("cloud", ADMIN_TENANT, c)
        _cloud_defaults(o, c["name"], system=False)
        if nets:
            ipam_clouds.append((c["name"], list(nets)))
    for v in seed.get("vrfcontexts", []) or []:
        v = dict(v)
        cloud = v.pop("cloud", "Default-Cloud")
        peers = v.pop("bgp_peers", None)
        local_as = v.pop("local_as", 65000)
        ibgp = v.pop("ibgp", True)
        body: dict[str, Json] = {"cloud_ref": f"/api/cloud/?name={cloud}", **v}
        if peers is not None:
            plist = []
            for p in peers:
                p = dict(p)
                if "peer_ip" in p and isinstance(p["peer_ip"], str):
                    p["peer_ip"] = _ip(p["peer_ip"])
                plist.append(p)
            body["bgp_profile"] = {"local_as": local_as, "ibgp": ibgp, "peers": plist}
        cloud_rec = o.store.find_by_name(ADMIN_TENANT, "cloud", cloud)
        existing = o.store.find_by_name(ADMIN_TENANT, "vrfcontext", v["name"], cloud_rec.uuid if cloud_rec else None)
        if existing is not None and existing.cloud == (cloud_rec.uuid if cloud_rec else None):
            merged = o.render(existing, "", include_name=False)
            merged.update(body)
            o.replace(existing, merged)
        else:
            o.create("vrfcontext", ADMIN_TENANT, body)
    for s in seed.get("serviceenginegroups", []) or []:
        s = {"name": s} if isinstance(s, str) else dict(s)
        cloud = s.pop("cloud", "Default-Cloud")
        o.create("serviceenginegroup", ADMIN_TENANT, {"cloud_ref": f"/api/cloud/?name={cloud}", **s})
    for n in seed.get("networks", []) or []:
        n = dict(n)
        cloud = n.pop("cloud", "Default-Cloud")
        subnets = n.pop("subnets", [])
        nbody: dict[str, Json] = {"cloud_ref": f"/api/cloud/?name={cloud}",
                                  "configured_subnets": [_subnet(s) for s in subnets], "dhcp_enabled": False, **n}
        if "vrf" in nbody:
            nbody["vrf_context_ref"] = f"/api/vrfcontext/?name={nbody.pop('vrf')}"
        o.create("network", ADMIN_TENANT, nbody)
    for cloud, nets in ipam_clouds:
        prof = o.create("ipamdnsproviderprofile", ADMIN_TENANT, {
            "name": f"{cloud}-ipam", "type": "IPAMDNS_TYPE_INTERNAL",
            "internal_profile": {"usable_networks": [{"nw_ref": f"/api/network/?name={n}"} for n in nets]}})
        rec = o.store.find_by_name(ADMIN_TENANT, "cloud", cloud)
        assert rec is not None
        cbody = o.render(rec, "", include_name=False)
        cbody["ipam_provider_ref"] = f"/api/ipamdnsproviderprofile/{prof.uuid}"
        o.replace(rec, cbody)
    for ob in seed.get("objects", []) or []:
        tenant_name = ob.get("tenant", "admin")
        t = o.store.find_by_name(ADMIN_TENANT, "tenant", tenant_name)
        if t is None:
            raise ValueError(f"seed object: unknown tenant {tenant_name}")
        o.create(ob["type"], t.uuid, ob["data"])


DEFAULT_TEST_SEED: dict[str, Json] = {
    "networks": [{
        "name": "vip-net",
        "subnets": [
            {"prefix": "127.0.100.0/24", "static_ranges": ["127.0.100.10-127.0.100.250"],
             "type": "STATIC_IPS_FOR_VIP"},
            {"prefix": "fd00:a1b0::/64", "static_ranges": ["fd00:a1b0::10-fd00:a1b0::ff"],
             "type": "STATIC_IPS_FOR_VIP"},
        ],
    }],
    "tenants": ["team-a"],
    "vrfcontexts": [{"name": "global", "cloud": "Default-Cloud", "local_as": 65000,
                     "bgp_peers": [{"peer_ip": "10.10.0.1", "remote_as": 65001, "label": "rack-a"}]}],
}
