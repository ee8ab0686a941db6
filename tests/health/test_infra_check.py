"""AviInfraSetting validation against the controller (pure) and the status patch it leads to."""

from __future__ import annotations

from typing import Any

from services.health.infra_check import ACCEPTED, REJECTED, Verdict, check
from services.health.infra_status import event_for, status_patch


def prefix(addr: str, mask: int) -> dict[str, Any]:
    return {"prefix": {"ip_addr": {"addr": addr, "type": "V6" if ":" in addr else "V4"}, "mask": mask}}


CONTROLLER: dict[tuple[str, str], dict[str, Any]] = {
    ("serviceenginegroup", "seg-a"): {"name": "seg-a"},
    ("network", "vip-net"): {"name": "vip-net", "configured_subnets": [prefix("127.100.0.0", 24),
                                                                       prefix("fd00:a1b::", 64)]},
    ("vrfcontext", "global"): {"name": "global", "bgp_profile": {"peers": [{"label": "rack-a"}, {"peer_ip": {}}]}},
}


class Lookup:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, obj_type: str, name: str) -> dict[str, Any] | None:
        self.calls.append((obj_type, name))
        return CONTROLLER.get((obj_type, name))


def test_a_setting_the_controller_has_everything_for_is_accepted() -> None:
    spec = {"seGroup": {"name": "seg-a"},
            "network": {"vipNetworks": [{"networkName": "vip-net", "cidr": "127.100.0.0/24", "v6cidr": "fd00:a1b::/64"}],
                        "enableRhi": True, "bgpPeerLabels": ["rack-a"]}}
    lookup = Lookup()
    assert check(spec, lookup, "global") == Verdict(ACCEPTED)
    assert lookup.calls == [("serviceenginegroup", "seg-a"), ("network", "vip-net"), ("vrfcontext", "global")]


def test_every_reason_is_given_at_once() -> None:
    spec = {"seGroup": {"name": "seg-x"},
            "network": {"vipNetworks": [{"networkName": "vip-net", "cidr": "127.1.0.0/24"},
                                        {"networkName": "gone"}],
                        "enableRhi": True, "bgpPeerLabels": ["rack-a", "rack-q"]}}
    v = check(spec, Lookup(), "global")
    assert v == Verdict(REJECTED, "Service Engine group seg-x not found; cidr 127.1.0.0/24 is not a subnet of network "
                                  "vip-net (it has 127.100.0.0/24, fd00:a1b::/64); network gone not found; "
                                  "BGP peer label(s) rack-q not configured on any BGP peer of VRF global")


def test_bgp_labels_without_rhi_are_rejected_without_reading_the_vrf() -> None:
    lookup = Lookup()
    v = check({"network": {"bgpPeerLabels": ["rack-a"]}}, lookup, "global")
    assert v == Verdict(REJECTED, "bgpPeerLabels need enableRhi: true")
    assert lookup.calls == []


def test_status_is_written_only_when_it_differs() -> None:
    ok = Verdict(ACCEPTED)
    assert status_patch({"status": "Accepted"}, ok) is None
    assert status_patch({"status": "Accepted", "error": ""}, ok) is None
    assert status_patch(None, ok) == {"status": {"status": "Accepted", "error": ""}}
    bad = Verdict(REJECTED, "network gone not found")
    assert status_patch({"status": "Rejected", "error": "other"}, bad) == {
        "status": {"status": "Rejected", "error": "network gone not found"}}
    assert (event_for(bad).type, event_for(bad).reason, event_for(bad).note) == (
        "Warning", "Rejected", "network gone not found")
    assert event_for(ok).type == "Normal"
