"""VIP address management: allocation from a network's static ranges, static requests, release.

Addresses in use are indexed per VRF from the stored vsvips themselves (a store hook), so creating,
deleting and rolling back a vsvip keep the index right without separate bookkeeping.

Allocation gives the lowest free address of the first static range that has one (so a freed address is
handed out again as soon as it is the lowest free one). Each range keeps a cursor and a heap of the
addresses freed below it (:class:`_RangeFree`), so an allocation costs O(log freed) amortised instead of
a scan from the start of the range; the result is the same as that scan's.
"""

from __future__ import annotations

import heapq
import ipaddress
from typing import Any

from albus.sim.errors import ApiError
from albus.sim.store import Record, Store

Json = Any
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

NO_FREE_IPS = "No available free IPs"
VIP_CHANGE = "Changing an existing VIP's IP address is not supported, please recreate the VIP"
VIP_RANGE_TYPES = ("STATIC_IPS_FOR_VIP", "STATIC_IPS_FOR_VIP_AND_SE")


def _vip_addrs(rec: Record) -> list[str]:
    out = []
    for v in rec.data.get("vip", ()) or ():
        for key in ("ip_address", "ip6_address"):
            a = v.get(key)
            if isinstance(a, dict) and isinstance(a.get("addr"), str):
                out.append(_canon(a["addr"]))
    return out


def _ip(addr: str) -> IpAddr | None:
    try:
        return ipaddress.ip_address(addr)
    except ValueError:
        return None


def _canon(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


class Ipam:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.used: dict[tuple[str, str], str] = {}  # (vrf uuid, address) → vsvip uuid
        # The same as integers per (vrf uuid, IP version): the allocation scan looks up ints, as
        # formatting every candidate address made each allocation cost O(addresses in use) strings.
        self._used_ints: dict[tuple[str, int], dict[int, str]] = {}
        # vsvip uuid → its addresses as (vrf uuid, IP version, int): what an update of it may allocate again
        self._held: dict[str, set[tuple[str, int, int]]] = {}
        # (vrf uuid, IP version, range begin, range end) → free-address index of that range, made on first use
        self._ranges: dict[tuple[str, int, int, int], _RangeFree] = {}
        store.hooks.append(self._hook)

    def _hook(self, event: str, rec: Record) -> None:
        if rec.type != "vsvip":
            return
        vrf = str(rec.data.get("vrf_context_ref", ""))
        for addr in _vip_addrs(rec):
            ip = _ip(addr)
            ints = self._used_ints.setdefault((vrf, ip.version), {}) if ip is not None else {}
            if event == "insert":
                self.used[(vrf, addr)] = rec.uuid
                if ip is not None:
                    ints[int(ip)] = rec.uuid
                    self._held.setdefault(rec.uuid, set()).add((vrf, ip.version, int(ip)))
            elif self.used.get((vrf, addr)) == rec.uuid:
                del self.used[(vrf, addr)]
                if ip is not None:
                    n = int(ip)
                    ints.pop(n, None)
                    held = self._held.get(rec.uuid)
                    if held is not None:
                        held.discard((vrf, ip.version, n))
                        if not held:
                            del self._held[rec.uuid]
                    for (rvrf, fam, lo, hi), free in self._ranges.items():
                        if rvrf == vrf and fam == ip.version and lo <= n <= hi:
                            free.released(n)

    # ---------------------------------------------------------------------------------------
    def apply(self, data: dict[str, Json], self_uuid: str, old: Record | None) -> None:
        """Fill and check the addresses of every vip of a vsvip about to be stored (in place)."""
        vrf = str(data.get("vrf_context_ref", ""))
        old_vips = {v.get("vip_id"): v for v in (old.data.get("vip", []) if old else [])}
        taken: set[str] = set()  # addresses claimed earlier in this same body
        for vip in data.get("vip", []) or []:
            prev = old_vips.get(vip.get("vip_id"))
            auto = bool(vip.get("auto_allocate_ip", False))
            ins = vip.get("ipam_network_subnet")
            net = self._network(vip, data)
            if prev is not None and auto:
                prev_net = (prev.get("ipam_network_subnet") or {}).get("network_ref")
                if prev_net and net is not None and prev_net != net.uuid and self._has_addr(prev):
                    raise ApiError(400, VIP_CHANGE)
            if auto:
                fam_type = vip.get("auto_allocate_ip_type", "V4_ONLY")
                fams = {"V4_ONLY": (4,), "V6_ONLY": (6,), "V4_V6": (4, 6)}[fam_type]
            else:
                fams = ()
            for fam in (4, 6):
                key = "ip_address" if fam == 4 else "ip6_address"
                requested = vip.get(key)
                prev_addr = prev.get(key) if prev is not None else None
                if isinstance(requested, dict):
                    want = requested.get("addr", "")
                    fam_req = self._family(want, key)
                    if fam_req != fam:
                        raise ApiError(400, f"Invalid {key} {want}: not an IPv{fam} address")
                    if isinstance(prev_addr, dict) and _canon(prev_addr["addr"]) != _canon(want) and auto:
                        raise ApiError(400, VIP_CHANGE)
                    canon = _canon(want)
                    if net is not None and (auto or ins):
                        subnet = self._subnet(net, ins, fam)
                        if ipaddress.ip_address(canon) not in subnet:
                            raise ApiError(400, f"IP address {canon} is not in subnet {subnet} of network {net.name}")
                    self._claim(vrf, canon, self_uuid, taken)
                    requested["addr"] = canon
                elif fam in fams:
                    if isinstance(prev_addr, dict):
                        # the client did not echo the allocated address: the controller keeps it
                        vip[key] = dict(prev_addr)
                        self._claim(vrf, _canon(prev_addr["addr"]), self_uuid, taken)
                        continue
                    if net is None:
                        raise ApiError(400, "auto_allocate_ip needs ipam_network_subnet.network_ref or an IPAM "
                                            "profile with usable networks on the cloud")
                    addr = self._allocate(vrf, net, ins, fam, self_uuid, taken)
                    vip[key] = {"addr": addr, "type": "V4" if fam == 4 else "V6"}
                    if fam == 4:
                        vip.setdefault("prefix_length", 32)

    @staticmethod
    def _has_addr(vip: dict[str, Json]) -> bool:
        return isinstance(vip.get("ip_address"), dict) or isinstance(vip.get("ip6_address"), dict)

    @staticmethod
    def _family(addr: str, key: str) -> int:
        try:
            return ipaddress.ip_address(addr).version
        except ValueError:
            raise ApiError(400, f"Invalid {key}: {addr!r} is not an IP address") from None

    def _network(self, vip: dict[str, Json], data: dict[str, Json]) -> Record | None:
        ins = vip.get("ipam_network_subnet")
        if isinstance(ins, dict) and ins.get("network_ref"):
            return self.store.get(ins["network_ref"])
        if not vip.get("auto_allocate_ip"):
            return None
        # no network given: the cloud's IPAM profile's first usable network, as the controller does
        cloud = self.store.get(str(data.get("cloud_ref", "")))
        prof = self.store.get(str(cloud.data.get("ipam_provider_ref", ""))) if cloud else None
        if prof is None:
            return None
        for un in (prof.data.get("internal_profile") or {}).get("usable_networks", []):
            net = self.store.get(un.get("nw_ref", ""))
            if net is not None:
                return net
        return None

    def _subnet(self, net: Record, ins: Json, fam: int) -> IpNet:
        want = (ins or {}).get("subnet" if fam == 4 else "subnet6") if isinstance(ins, dict) else None
        subnets = [s for s in net.data.get("configured_subnets", []) or []]
        if want is not None:
            try:
                wnet = ipaddress.ip_network(f"{want['ip_addr']['addr']}/{want['mask']}", strict=False)
            except ValueError:
                raise ApiError(400, f"Invalid subnet in ipam_network_subnet: {want}") from None
            if wnet.version != fam:
                raise ApiError(400, f"ipam_network_subnet.{'subnet' if fam == 4 else 'subnet6'} must be IPv{fam}")
            for s in subnets:
                if _prefix(s) == wnet:
                    return wnet
            raise ApiError(400, f"Subnet {wnet} not found in network {net.name}")
        for s in subnets:
            p = _prefix(s)
            if p is not None and p.version == fam and _ranges(s):
                return p
        raise ApiError(400, f"Network {net.name} has no IPv{fam} subnet with static ranges for VIPs")

    def _allocate(self, vrf: str, net: Record, ins: Json, fam: int, self_uuid: str, taken: set[str]) -> str:
        subnet = self._subnet(net, ins, fam)
        for s in net.data.get("configured_subnets", []) or []:
            if _prefix(s) != subnet:
                continue
            used = self._used_ints.setdefault((vrf, fam), {})
            taken_ints = {int(ip) for ip in map(_ip, taken) if ip is not None and ip.version == fam}
            # what this vsvip holds itself it may have again (an update re-allocating its own address)
            own = sorted(n for (v, f, n) in self._held.get(self_uuid, ()) if v == vrf and f == fam)
            for begin, end in _ranges(s):
                lo, hi = int(begin), int(end)
                free = self._ranges.get((vrf, fam, lo, hi))
                if free is None:
                    free = self._ranges[(vrf, fam, lo, hi)] = _RangeFree(lo, hi, used)
                best = free.lowest(taken_ints)
                mine = next((n for n in own if lo <= n <= hi and n not in taken_ints), None)
                if mine is not None and (best is None or mine < best):
                    best = mine
                if best is not None:
                    addr = str(ipaddress.ip_address(best))
                    taken.add(addr)
                    return addr
        raise ApiError(400, NO_FREE_IPS)

    def _claim(self, vrf: str, addr: str, self_uuid: str, taken: set[str]) -> None:
        holder = self.used.get((vrf, addr))
        if (holder is not None and holder != self_uuid) or addr in taken:
            other = self.store.get(holder) if holder else None
            who = f" by VsVip {other.name}" if other is not None else ""
            raise ApiError(409, f"IP address {addr} is already in use{who}")
        taken.add(addr)


class _RangeFree:
    """The free addresses of one static range in one VRF, lowest first, without scanning the range.

    Invariant: every free address below ``cursor`` is in ``freed`` (a heap, which may also hold addresses
    used again since; they are dropped when they reach the top). The cursor only passes addresses that
    are in use in the index: one handed out but not yet stored (or rolled back) stays at or above it.
    """

    def __init__(self, lo: int, hi: int, used: dict[int, str]) -> None:
        self.cursor = lo
        self.hi = hi
        self.used = used  # the VRF's index for this IP version (shared, kept by the hook)
        self.freed: list[int] = []
        self._in_heap: set[int] = set()

    def released(self, n: int) -> None:
        if n < self.cursor and n not in self._in_heap:
            heapq.heappush(self.freed, n)
            self._in_heap.add(n)

    def lowest(self, skip: set[int]) -> int | None:
        """The lowest free address not in ``skip`` (claimed earlier in the same body), or None."""
        while self.cursor <= self.hi and self.cursor in self.used:
            self.cursor += 1
        held_back: list[int] = []
        found: int | None = None
        while self.freed:
            n = self.freed[0]
            if n in self.used:  # used again since it was freed
                heapq.heappop(self.freed)
                self._in_heap.discard(n)
            elif n in skip:
                held_back.append(heapq.heappop(self.freed))
            else:
                found = n
                break
        for n in held_back:
            heapq.heappush(self.freed, n)
        if found is not None:
            return found
        n = self.cursor
        while n <= self.hi and (n in self.used or n in skip):
            n += 1
        return n if n <= self.hi else None


def _prefix(subnet: Json) -> IpNet | None:
    p = subnet.get("prefix") if isinstance(subnet, dict) else None
    if not isinstance(p, dict):
        return None
    try:
        return ipaddress.ip_network(f"{p['ip_addr']['addr']}/{p['mask']}", strict=False)
    except (TypeError, KeyError, ValueError):
        return None


def _ranges(subnet: Json) -> list[tuple[IpAddr, IpAddr]]:
    out: list[tuple[IpAddr, IpAddr]] = []
    for r in subnet.get("static_ip_ranges", []) or []:
        if r.get("type", "STATIC_IPS_FOR_VIP_AND_SE") in VIP_RANGE_TYPES:
            rg = r.get("range", {})
            out.append((ipaddress.ip_address(rg["begin"]["addr"]), ipaddress.ip_address(rg["end"]["addr"])))
    for rg in subnet.get("static_ranges", []) or []:
        out.append((ipaddress.ip_address(rg["begin"]["addr"]), ipaddress.ip_address(rg["end"]["addr"])))
    return out


def check_network(data: dict[str, Json]) -> None:
    """Reject a network whose ranges are malformed or outside their subnet (the controller does)."""
    for s in data.get("configured_subnets", []) or []:
        p = _prefix(s)
        if p is None:
            raise ApiError(400, f"Invalid subnet prefix: {s.get('prefix')}")
        try:
            rngs = _ranges(s)
        except ValueError as exc:
            raise ApiError(400, f"Invalid static range in subnet {p}: {exc}") from None
        for b, end in rngs:
            if b not in p or end not in p or int(b) > int(end):
                raise ApiError(400, f"Static range {b}-{end} is not within subnet {p}")
