"""VIP allocation: lowest free address first, freed addresses reused, exhaustion, dual stack, rollback.

In-process on a Controller (no server): the allocator's cursor and freed-address heap must give exactly
what a scan from the start of the range gives, whatever the order of creates, deletes, static claims
and failed transactions.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from albus.sim.app import Config, Controller
from albus.sim.errors import ApiError
from albus.sim.ipam import NO_FREE_IPS
from albus.sim.seed import apply_seed, seed_system
from albus.sim.store import Record

pytestmark = pytest.mark.sim

SEED: dict[str, Any] = {"networks": [{"name": "vip-net", "cloud": "Default-Cloud", "subnets": [
    {"prefix": "127.0.100.0/24", "static_ranges": ["127.0.100.10-127.0.100.19", "127.0.100.30-127.0.100.33"],
     "type": "STATIC_IPS_FOR_VIP"},
    {"prefix": "fd00:a1b0::/64", "static_ranges": ["fd00:a1b0::10-fd00:a1b0::13"]}]}]}
V4_RANGE = [f"127.0.100.{i}" for i in (*range(10, 20), *range(30, 34))]


@pytest.fixture
def ctl() -> Controller:
    c = Controller(Config())
    seed_system(c.objects)
    apply_seed(c.objects, SEED)
    return c


def vip(auto_type: str | None = "V4_ONLY", addr: str | None = None, vip_id: str = "0") -> dict[str, Any]:
    v: dict[str, Any] = {"vip_id": vip_id, "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}
    if auto_type is not None:
        v["auto_allocate_ip"] = True
        v["auto_allocate_ip_type"] = auto_type
    if addr is not None:
        v["ip_address"] = {"addr": addr, "type": "V4"}
    return v


def create(ctl: Controller, name: str, *vips: dict[str, Any]) -> Record:
    with ctl.store.transaction():
        return ctl.objects.create("vsvip", "admin", {"name": name, "vip": list(vips) or [vip()]})


def v4(rec: Record, i: int = 0) -> str:
    return str(rec.data["vip"][i]["ip_address"]["addr"])


def test_lowest_first_and_freed_address_reused(ctl: Controller) -> None:
    recs = [create(ctl, f"v{i}") for i in range(4)]
    assert [v4(r) for r in recs] == V4_RANGE[:4]
    ctl.objects.delete(recs[1])
    ctl.objects.delete(recs[2])
    # the freed addresses come back lowest first, before any address never used
    assert v4(create(ctl, "a")) == V4_RANGE[1]
    assert v4(create(ctl, "b")) == V4_RANGE[2]
    assert v4(create(ctl, "c")) == V4_RANGE[4]


def test_exhaustion_error_unchanged_then_a_free_makes_room(ctl: Controller) -> None:
    recs = [create(ctl, f"v{i}") for i in range(len(V4_RANGE))]
    # the first range, then the second, in order
    assert [v4(r) for r in recs] == V4_RANGE
    with pytest.raises(ApiError) as e:
        create(ctl, "one-too-many")
    assert (e.value.status, e.value.message) == (400, NO_FREE_IPS)
    assert ctl.store.by_tenant_name("admin", "vsvip", "one-too-many") == []
    ctl.objects.delete(recs[12])
    assert v4(create(ctl, "again")) == V4_RANGE[12]


def test_static_claim_ahead_of_the_cursor_is_skipped(ctl: Controller) -> None:
    create(ctl, "s", vip(None, "127.0.100.11"))
    assert [v4(create(ctl, f"v{i}")) for i in range(3)] == ["127.0.100.10", "127.0.100.12", "127.0.100.13"]


def test_rolled_back_allocation_is_free_again(ctl: Controller) -> None:
    create(ctl, "first")
    with pytest.raises(ApiError), ctl.store.transaction():
        ctl.objects.create("vsvip", "admin", {"name": "doomed", "vip": [vip()]})
        raise ApiError(400, "later object in the same macro failed")
    assert v4(create(ctl, "next")) == V4_RANGE[1]


def test_two_vips_in_one_body_get_distinct_addresses(ctl: Controller) -> None:
    rec = create(ctl, "two", vip(vip_id="0"), vip(vip_id="1"))
    assert [v4(rec, 0), v4(rec, 1)] == V4_RANGE[:2]


def test_dual_stack(ctl: Controller) -> None:
    recs = [create(ctl, f"d{i}", vip("V4_V6")) for i in range(4)]
    assert [r.data["vip"][0]["ip6_address"]["addr"] for r in recs] == [f"fd00:a1b0::1{i}" for i in range(4)]
    with pytest.raises(ApiError) as e:
        create(ctl, "d4", vip("V6_ONLY"))
    assert (e.value.status, e.value.message) == (400, NO_FREE_IPS)
    ctl.objects.delete(recs[2])
    again = create(ctl, "d5", vip("V6_ONLY"))
    assert again.data["vip"][0]["ip6_address"]["addr"] == "fd00:a1b0::12"
    assert "ip_address" not in again.data["vip"][0]


def test_update_keeps_its_own_address(ctl: Controller) -> None:
    rec = create(ctl, "u")
    create(ctl, "other")
    # a body that does not echo the allocated address keeps it, as the controller does
    new = ctl.objects.replace(rec, {"name": "u", "vip": [vip()]})
    assert v4(new) == V4_RANGE[0]


def _reference_lowest(ctl: Controller, n: int = 1) -> list[str] | None:
    """What a scan of the ranges from their start gives: the n lowest addresses no vsvip holds."""
    used = {str(a) for (_, a) in ctl.ipam.used}
    free = [a for a in V4_RANGE if a not in used][:n]
    return free if len(free) == n else None


def test_matches_a_scan_from_the_start_under_random_churn(ctl: Controller) -> None:
    rnd = random.Random(13)
    live: list[Record] = []
    for step in range(600):
        op = rnd.random()
        if op < 0.45 or not live:
            # one or two VIPs in the body: the second must not get the first's address
            vips = [vip(vip_id=str(k)) for k in range(rnd.choice((1, 1, 2)))]
            want = _reference_lowest(ctl, len(vips))
            if want is None:
                with pytest.raises(ApiError) as e:
                    create(ctl, f"n{step}", *vips)
                assert e.value.message == NO_FREE_IPS
            else:
                live.append(create(ctl, f"n{step}", *vips))
                assert [v4(live[-1], k) for k in range(len(vips))] == want, step
        elif op < 0.8:
            ctl.objects.delete(live.pop(rnd.randrange(len(live))))
        elif op < 0.9:
            free = [a for a in V4_RANGE if _held_by(ctl, a) is None]
            if free:
                live.append(create(ctl, f"s{step}", vip(None, rnd.choice(free))))
        else:
            with pytest.raises(ApiError), ctl.store.transaction():
                ctl.objects.create("vsvip", "admin", {"name": f"r{step}", "vip": [vip()]})
                raise ApiError(400, "rolled back")
    held = [v4(r, k) for r in live for k in range(len(r.data["vip"]))]
    assert len(set(held)) == len(held)


def _held_by(ctl: Controller, addr: str) -> str | None:
    canon = str(ipaddress.ip_address(addr))
    return next((u for (_, a), u in ctl.ipam.used.items() if a == canon), None)
