"""The simulator forwards real traffic on its VIPs, driven through its REST API only (no albus).

Backends are `albus.testhosts.Backend` servers on loopback ports that answer with their name.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin, SimClient, wait_for
from albus.testhosts import Backend, exchange

pytestmark = pytest.mark.sim

V6_NET = "fd00:a1b9::/64"
SEED: dict[str, Any] = {"networks": [{"name": "vip-net", "subnets": [
    {"prefix": "127.0.100.0/24", "static_ranges": ["127.0.100.10-127.0.100.250"], "type": "STATIC_IPS_FOR_VIP"},
    {"prefix": V6_NET, "static_ranges": ["fd00:a1b9::10-fd00:a1b9::ff"], "type": "STATIC_IPS_FOR_VIP"}]}]}
DEADLINE = 10.0


@pytest.fixture
def dp(sim_factory: Callable[..., SimServer]) -> tuple[SimClient, SimAdmin]:
    """A simulator with the data plane on: a logged-in client and its admin API."""
    sim = sim_factory(dataplane=True, seed=SEED)
    c = SimClient(sim.url)
    assert c.login().status_code == 200
    return c, SimAdmin(sim.url)


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str, host: str = "127.0.0.1") -> Backend:
        b = Backend(name, host).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def pool(c: SimClient, name: str, members: list[Backend], **extra: Any) -> dict[str, Any]:
    return c.ok("POST", "pool", {"name": name, "servers": [
        {"ip": {"addr": b.host, "type": "V6" if ":" in b.host else "V4"}, "port": b.port} for b in members],
        **extra})


def vs(c: SimClient, name: str, services: list[dict[str, Any]], v6: bool = False, **extra: Any) -> str:
    """Create a VS with an auto-allocated VIP; returns the VIP address."""
    vip: dict[str, Any] = {"vip_id": "0", "auto_allocate_ip": True,
                           "auto_allocate_ip_type": "V6_ONLY" if v6 else "V4_ONLY",
                           "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}
    vv = c.ok("POST", "vsvip", {"name": name, "vip": [vip]})
    c.ok("POST", "virtualservice", {"name": name, "vsvip_ref": vv["url"], "services": services, **extra})
    return str(vv["vip"][0]["ip6_address" if v6 else "ip_address"]["addr"])


def listening(admin: SimAdmin, addr: str, port: int, proto: str = "TCP") -> bool:
    return any(item["address"] == addr and item["port"] == port and item["protocol"] == proto
               and item["state"] == "LISTENING" for item in admin.call("GET", "dataplane")["listeners"])


def tcp_roundtrip(addr: str, port: int, payload: bytes = b"ping") -> bytes:
    return exchange(addr, port, payload)


def udp_roundtrip(addr: str, port: int, payload: bytes = b"ping") -> bytes:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(payload, (addr, port))
        return s.recvfrom(65536)[0]


def http_get(url: str, host: str | None = None, **kw: Any) -> requests.Response:
    return requests.get(url, headers={"Host": host} if host else {}, timeout=5, allow_redirects=False, **kw)


# ---- L4 ----------------------------------------------------------------------------------------------
def test_tcp_and_udp_vs_forward_to_local_listeners_round_robin(dp: Any, backends: Any) -> None:
    c, admin = dp
    a, b = backends("a"), backends("b")
    tcp_pool = pool(c, "tcp-pool", [a, b], lb_algorithm="LB_ALGORITHM_ROUND_ROBIN")
    udp_pool = pool(c, "udp-pool", [a])
    vip = vs(c, "l4", [{"port": 7000}], pool_ref=tcp_pool["url"],
             application_profile_ref="/api/applicationprofile/?name=System-L4-Application")
    vip_udp = vs(c, "l4-udp", [{"port": 7001}], pool_ref=udp_pool["url"],
                 application_profile_ref="/api/applicationprofile/?name=System-L4-Application",
                 network_profile_ref="/api/networkprofile/?name=System-UDP-Fast-Path")
    wait_for(lambda: listening(admin, vip, 7000) and listening(admin, vip_udp, 7001, "UDP"), DEADLINE,
             what="TCP and UDP listeners")
    answers = [tcp_roundtrip(vip, 7000, b"hello") for _ in range(4)]
    assert sorted(answers) == [b"a:hello", b"a:hello", b"b:hello", b"b:hello"]
    assert answers[0] != answers[1]  # round robin alternates
    assert udp_roundtrip(vip_udp, 7001, b"dns?") == b"a:dns?"
    stats = c.ok("GET", f"virtualservice/{c.ok('GET', 'virtualservice', params={'name': 'l4'})['results'][0]['uuid']}"
                        "/runtime/stats")
    assert stats["connections"] == 4
    assert stats["bytes_in"] == 4 * len(b"hello") and stats["bytes_out"] == 2 * len(b"a:hello") * 2
    assert {m["server"]: m["connections"] for m in stats["members"]} == {
        f"127.0.0.1:{a.port}": 2, f"127.0.0.1:{b.port}": 2}


def test_l4_policy_selects_the_pool_by_port_and_protocol(dp: Any, backends: Any) -> None:
    """The shape albus writes for a multi-port LoadBalancer Service: one VS, an L4 policy per port/protocol."""
    c, admin = dp
    web, dns = backends("web"), backends("dns")
    p_web, p_dns = pool(c, "web", [web]), pool(c, "dns", [dns])

    def rule(i: int, port: int, proto: str, p: dict[str, Any]) -> dict[str, Any]:
        return {"name": f"r{i}", "index": i, "enable": True,
                "match": {"port": {"match_criteria": "IS_IN", "ports": [port]},
                          "protocol": {"match_criteria": "IS_IN", "protocol": proto}},
                "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": p["url"]}}}

    ps = c.ok("POST", "l4policyset", {"name": "l4ps", "l4_connection_policy": {"rules": [
        rule(1, 7100, "PROTOCOL_TCP", p_web), rule(2, 7153, "PROTOCOL_UDP", p_dns)]}})
    vip = vs(c, "multi", [{"port": 7100}, {"port": 7153,
                                           "override_network_profile_ref": "/api/networkprofile/?name=System-UDP-Fast-Path"}],
             application_profile_ref="/api/applicationprofile/?name=System-L4-Application",
             l4_policies=[{"index": 1, "l4_policy_set_ref": ps["url"]}])
    wait_for(lambda: listening(admin, vip, 7100) and listening(admin, vip, 7153, "UDP"), DEADLINE, what="listeners")
    assert tcp_roundtrip(vip, 7100) == b"web:ping"
    assert udp_roundtrip(vip, 7153) == b"dns:ping"


def test_a_downed_member_gets_no_new_connections_least_connections(dp: Any, backends: Any) -> None:
    c, admin = dp
    a, b = backends("a"), backends("b")
    p = pool(c, "lc", [a, b], health_monitor_refs=["/api/healthmonitor/?name=System-TCP"])
    assert p["lb_algorithm"] == "LB_ALGORITHM_LEAST_CONNECTIONS"
    vip = vs(c, "lc", [{"port": 7200}], pool_ref=p["url"],
             application_profile_ref="/api/applicationprofile/?name=System-L4-Application")
    members = f"pool/{p['uuid']}/runtime/server"
    wait_for(lambda: listening(admin, vip, 7200)
             and all(s["oper_status"]["state"] == "OPER_UP" for s in c.ok("GET", members)), DEADLINE,
             what="listener and both members up")
    # least connections: a held connection to one member sends the next one to the other
    with socket.create_connection((vip, 7200), timeout=5) as held:
        held.sendall(b"x")
        first = held.recv(100).split(b":")[0]
        assert tcp_roundtrip(vip, 7200).split(b":")[0] != first
    # b is pinned down (still listening!): it must see no new connection
    admin.set_server("lc", "127.0.0.1", "OPER_DOWN", port=b.port)
    before = b.connections
    assert {tcp_roundtrip(vip, 7200) for _ in range(6)} == {b"a:ping"}
    assert b.connections == before
    # every member down: the connection is refused at the VIP, and counted
    admin.set_server("lc", "127.0.0.1", "OPER_DOWN", port=a.port)
    assert tcp_roundtrip(vip, 7200) == b""
    stats = c.ok("GET", f"virtualservice/{c.ok('GET', 'virtualservice', params={'name': 'lc'})['results'][0]['uuid']}"
                        "/runtime/stats")
    assert stats["no_member"] == 1


def test_a_stopped_backend_is_taken_out_by_the_active_monitor(dp: Any, backends: Any) -> None:
    c, admin = dp
    a, b = backends("a"), backends("b")
    p = pool(c, "hm", [a, b], health_monitor_refs=["/api/healthmonitor/?name=System-TCP"],
             lb_algorithm="LB_ALGORITHM_ROUND_ROBIN")
    vip = vs(c, "hm", [{"port": 7250}], pool_ref=p["url"],
             application_profile_ref="/api/applicationprofile/?name=System-L4-Application")
    wait_for(lambda: listening(admin, vip, 7250), DEADLINE, what="listener")
    b.stop()
    wait_for(lambda: any(s["oper_status"]["state"] == "OPER_DOWN" for s in c.ok("GET", f"pool/{p['uuid']}/runtime/server")),
             DEADLINE, what="b marked down by its monitor")
    assert {tcp_roundtrip(vip, 7250) for _ in range(4)} == {b"a:ping"}


# ---- listeners follow the objects ----------------------------------------------------------------
def test_listeners_follow_changes_within_a_second_keeping_established_connections(dp: Any, backends: Any) -> None:
    c, admin = dp
    a = backends("a")
    p = pool(c, "p", [a])
    l4 = "/api/applicationprofile/?name=System-L4-Application"
    vip = vs(c, "keep", [{"port": 7300}], pool_ref=p["url"], application_profile_ref=l4)
    vip2 = vs(c, "other", [{"port": 7301}], pool_ref=p["url"], application_profile_ref=l4)
    wait_for(lambda: listening(admin, vip, 7300) and listening(admin, vip2, 7301), DEADLINE, what="listeners")
    held = socket.create_connection((vip, 7300), timeout=5)
    held.sendall(b"1")
    assert held.recv(100) == b"a:1"
    other = c.ok("GET", "virtualservice", params={"name": "other"})["results"][0]
    t0 = time.monotonic()
    c.ok("PUT", f"virtualservice/{other['uuid']}", {**other, "services": [{"port": 7302}]})
    wait_for(lambda: listening(admin, vip2, 7302) and not listening(admin, vip2, 7301), DEADLINE, what="port moved")
    moved = time.monotonic() - t0
    c.ok("PATCH", f"virtualservice/{other['uuid']}", {"replace": {"enabled": False}})
    wait_for(lambda: not listening(admin, vip2, 7302), DEADLINE, what="disabled VS stops listening")
    with pytest.raises(OSError):
        socket.create_connection((vip2, 7302), timeout=2).close()
    held.sendall(b"2")  # the unchanged VS's connection lived through all of it
    assert held.recv(100) == b"a:2"
    held.close()
    assert moved < 1.5, f"listener followed the change in {moved:.2f}s"


# ---- L7 --------------------------------------------------------------------------------------------
def test_http_policy_set_routes_paths_hosts_headers_redirects(dp: Any, backends: Any) -> None:
    c, admin = dp
    a, b, d, g = backends("a"), backends("b"), backends("default"), backends("green")
    pa, pb, pd, pg_pool = pool(c, "pa", [a]), pool(c, "pb", [b]), pool(c, "pd", [d]), pool(c, "pg", [g])
    group = c.ok("POST", "poolgroup", {"name": "split", "members": [{"pool_ref": pa["url"], "ratio": 3},
                                                                   {"pool_ref": pg_pool["url"], "ratio": 1}]})

    def rule(i: int, match: dict[str, Any], **action: Any) -> dict[str, Any]:
        return {"name": f"r{i}", "index": i, "enable": True, "match": match, **action}

    def to(p: dict[str, Any]) -> dict[str, Any]:
        return {"switching_action": {"action": "HTTP_SWITCHING_SELECT_POOL", "pool_ref": p["url"]}}

    host = {"host_hdr": {"match_criteria": "HDR_EQUALS", "value": ["shop.example.com"]}}
    ps = c.ok("POST", "httppolicyset", {"name": "routes", "http_request_policy": {"rules": [
        rule(1, {**host, "path": {"match_criteria": "BEGINS_WITH", "match_str": ["/a"]}}, **to(pa),
             hdr_action=[{"action": "HTTP_ADD_HDR", "hdr": {"name": "X-Routed", "value": {"val": "a"}}}]),
        rule(2, {**host, "path": {"match_criteria": "BEGINS_WITH", "match_str": ["/b"]}}, **to(pb)),
        rule(3, {**host, "path": {"match_criteria": "EQUALS", "match_str": ["/old"]}},
             redirect_action={"protocol": "HTTPS", "status_code": "HTTP_REDIRECT_STATUS_CODE_301",
                              "path": {"type": "URI_PARAM_TYPE_TOKENIZED",
                                       "tokens": [{"type": "URI_TOKEN_TYPE_STRING", "str_value": "new"}]}}),
        rule(4, {**host, "hdrs": [{"hdr": "X-Canary", "match_criteria": "HDR_EQUALS", "value": ["1"]}]},
             switching_action={"action": "HTTP_SWITCHING_SELECT_POOLGROUP", "pool_group_ref": group["url"]}),
    ]}})
    vip = vs(c, "web", [{"port": 7400}], pool_ref=pd["url"], http_policies=[{"index": 11, "http_policy_set_ref": ps["url"]}])
    wait_for(lambda: listening(admin, vip, 7400), DEADLINE, what="HTTP listener")
    url = f"http://{vip}:7400"
    ra = http_get(f"{url}/a/x?q=1", "shop.example.com").json()
    assert (ra["backend"], ra["path"], ra["headers"]["x-routed"]) == ("a", "/a/x?q=1", "a")
    assert ra["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert http_get(f"{url}/b", "shop.example.com").json()["backend"] == "b"
    assert http_get(f"{url}/a", "other.example.com").json()["backend"] == "default"  # host does not match
    assert http_get(f"{url}/c", "shop.example.com").json()["backend"] == "default"
    red = http_get(f"{url}/old?k=v", "shop.example.com")
    assert (red.status_code, red.headers["Location"]) == (301, "https://shop.example.com/new?k=v")
    canary = [requests.get(f"{url}/c", headers={"Host": "shop.example.com", "X-Canary": "1"}, timeout=5).json()["backend"]
              for _ in range(8)]
    assert sorted(canary) == ["a"] * 6 + ["green"] * 2  # pool group ratio 3:1
    stats = c.ok("GET", f"virtualservice/{c.ok('GET', 'virtualservice', params={'name': 'web'})['results'][0]['uuid']}"
                        "/runtime/stats")
    assert stats["requests"] == 13 and stats["responses"] == {"2xx": 12, "3xx": 1}


def test_http_without_an_up_member_answers_503(dp: Any, backends: Any) -> None:
    c, admin = dp
    a = backends("a")
    p = pool(c, "p", [a])
    vip = vs(c, "web", [{"port": 7450}], pool_ref=p["url"])
    wait_for(lambda: listening(admin, vip, 7450), DEADLINE, what="listener")
    assert http_get(f"http://{vip}:7450/").json()["backend"] == "a"
    admin.set_server("p", "127.0.0.1", "OPER_DOWN", port=a.port)
    assert http_get(f"http://{vip}:7450/").status_code == 503


# ---- TLS ---------------------------------------------------------------------------------------------
def make_cert(cn: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def cert_obj(c: SimClient, cn: str) -> dict[str, Any]:
    pem, key = make_cert(cn)
    return c.ok("POST", "sslkeyandcertificate", {"name": cn, "certificate": {"certificate": pem}, "key": key,
                                                 "type": "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE"})


def presented(addr: str, port: int, sni: str) -> tuple[str, bytes]:
    """The certificate's CN the VIP presents for `sni`, and the answer to an HTTP GET over it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((addr, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as s:
        der = s.getpeercert(binary_form=True)
        assert der is not None
        cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        s.sendall(f"GET /tls HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
        out = b""
        while data := s.recv(65536):
            out += data
    return str(cn), out


def test_sni_parent_presents_each_childs_certificate(dp: Any, backends: Any) -> None:
    c, admin = dp
    one, two, parent_b = backends("one"), backends("two"), backends("parent")
    p1, p2, pp = pool(c, "one", [one]), pool(c, "two", [two]), pool(c, "parent", [parent_b])
    parent_cert, c1, c2 = cert_obj(c, "parent.example.com"), cert_obj(c, "one.example.com"), cert_obj(c, "two.example.com")
    vip = vs(c, "parent", [{"port": 7443, "enable_ssl": True}], type="VS_TYPE_VH_PARENT", vh_type="VS_TYPE_VH_SNI",
             pool_ref=pp["url"], ssl_key_and_certificate_refs=[parent_cert["url"]],
             application_profile_ref="/api/applicationprofile/?name=System-Secure-HTTP")
    parent = c.ok("GET", "virtualservice", params={"name": "parent"})["results"][0]
    for name, p, cert in (("one", p1, c1), ("two", p2, c2)):
        c.ok("POST", "virtualservice", {"name": f"child-{name}", "type": "VS_TYPE_VH_CHILD",
                                        "vh_parent_vs_ref": parent["url"], "vh_domain_name": [f"{name}.example.com"],
                                        "pool_ref": p["url"], "ssl_key_and_certificate_refs": [cert["url"]]})
    wait_for(lambda: listening(admin, vip, 7443), DEADLINE, what="TLS listener")
    for sni, backend in (("one.example.com", "one"), ("two.example.com", "two"), ("nobody.example.com", "parent")):
        cn, answer = presented(vip, 7443, sni)
        assert cn == (sni if backend != "parent" else "parent.example.com")
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert (body["backend"], body["path"]) == (backend, "/tls")


@pytest.mark.parametrize("vh_type", ["VS_TYPE_VH_SNI", "VS_TYPE_VH_ENHANCED"])
def test_plain_http_on_a_vh_parent_goes_to_a_child_only_under_an_enhanced_parent(
        dp: Any, backends: Any, vh_type: str) -> None:
    """An SNI parent picks children by the TLS server name; plain HTTP is its own (AKO's redirect lives there)."""
    c, admin = dp
    one, parent_b = backends("one"), backends("parent")
    p1, pp = pool(c, "one", [one]), pool(c, "parent", [parent_b])
    port = 7180 if vh_type.endswith("SNI") else 7181
    vip = vs(c, "parent", [{"port": port}], type="VS_TYPE_VH_PARENT", vh_type=vh_type, pool_ref=pp["url"])
    parent = c.ok("GET", "virtualservice", params={"name": "parent"})["results"][0]
    c.ok("POST", "virtualservice", {"name": "child-one", "type": "VS_TYPE_VH_CHILD", "vh_parent_vs_ref": parent["url"],
                                    "vh_domain_name": ["one.example.com"], "pool_ref": p1["url"]})
    wait_for(lambda: listening(admin, vip, port), DEADLINE, what="HTTP listener")
    got = http_get(f"http://{vip}:{port}/x", host="one.example.com").json()["backend"]
    assert got == ("parent" if vh_type.endswith("SNI") else "one")


def test_tls_passthrough_routes_on_sni_without_decrypting(dp: Any, backends: Any, tmp_path: Any) -> None:
    """AKO's passthrough VS: SSL application profile, host rules on the SNI name, bytes forwarded untouched."""
    c, admin = dp
    pem, key = make_cert("secure.example.com")
    (tmp_path / "c.pem").write_text(pem + key)
    tls_backend = _TlsEcho(tmp_path / "c.pem")
    try:
        p = c.ok("POST", "pool", {"name": "pt", "servers": [{"ip": {"addr": "127.0.0.1", "type": "V4"},
                                                              "port": tls_backend.port}]})
        ps = c.ok("POST", "httppolicyset", {"name": "pt", "http_request_policy": {"rules": [
            {"name": "h", "index": 1, "enable": True,
             "match": {"host_hdr": {"match_criteria": "HDR_EQUALS", "value": ["secure.example.com"]}},
             "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOL", "pool_ref": p["url"]}}]}})
        vip = vs(c, "pt", [{"port": 7543}], application_profile_ref="/api/applicationprofile/?name=System-SSL-Application",
                 http_policies=[{"index": 1, "http_policy_set_ref": ps["url"]}])
        wait_for(lambda: listening(admin, vip, 7543), DEADLINE, what="passthrough listener")
        cn, answer = presented(vip, 7543, "secure.example.com")
        assert cn == "secure.example.com"  # the backend's own certificate: not terminated at the VIP
        assert answer.startswith(b"GET /tls")  # echoed by the backend
        with pytest.raises((ssl.SSLError, OSError)):
            presented(vip, 7543, "unknown.example.com")  # no rule for that name: no pool, connection closed
    finally:
        tls_backend.stop()


class _TlsEcho:
    """A TLS server echoing what it reads, on a loopback port."""

    def __init__(self, pem: Any) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pem)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    s.settimeout(5)
                    s.sendall(s.recv(65536))
            except OSError:
                continue

    def stop(self) -> None:
        self.sock.close()


# ---- IPv6 ------------------------------------------------------------------------------------------
def _add_v6(addr: str) -> str | None:
    r = subprocess.run(["ip", "-6", "addr", "add", f"{addr}/128", "dev", "lo"], capture_output=True, text=True,
                       check=False)
    return None if r.returncode == 0 else r.stderr.strip() or "ip failed"


def test_v6_vip_forwards_when_the_address_is_on_lo(dp: Any, backends: Any) -> None:
    c, admin = dp
    a = backends("a")
    p = pool(c, "p6", [a])
    vip = vs(c, "v6", [{"port": 7600}], v6=True, pool_ref=p["url"],
             application_profile_ref="/api/applicationprofile/?name=System-L4-Application")
    # the VIP is not (yet) an address of this machine: the listener reports why, nothing else breaks
    item = wait_for(lambda: [i for i in admin.call("GET", "dataplane")["listeners"] if i["address"] == vip
                             and i["state"] == "FAILED"], DEADLINE, what="failed v6 listener")[0]
    assert "not an address of this machine" in item["reason"]
    why = _add_v6(vip)
    if why is not None:
        pytest.skip(f"IPv6 forwarding not tested: cannot add {vip} to lo ({why})")
    try:
        wait_for(lambda: listening(admin, vip, 7600), DEADLINE, what="v6 listener after the address appeared")
        assert tcp_roundtrip(vip, 7600) == b"a:ping"
    finally:
        subprocess.run(["ip", "-6", "addr", "del", f"{vip}/128", "dev", "lo"], capture_output=True, check=False)


def test_off_by_default(sim: SimServer, sim_admin: SimAdmin) -> None:
    with pytest.raises(RuntimeError, match="404"):
        sim_admin.call("GET", "dataplane")
