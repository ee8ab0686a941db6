"""Tree checksums: the same trees get the same checksums in any process and after a trip over the bus.

The checksum hashes the bodies in the order the translator builds them
(services/common/contracts.py: tree_checksum), so a builder that filled a
dict from a set would give a tree a different checksum in another process
(string hashing is randomised per process) and republish it on every restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.common.contracts import VsTree, decode, encode
from services.translator.engine import Engine
from services.translator.offline import as_kube_object
from tests.unit import test_translate_gateway_http as http
from tests.unit import test_translate_l4 as l4
from tests.unit import test_translate_shared_vip as shared

ROOT = Path(__file__).resolve().parents[2]

# Dedicated VIPs (two protocols, members out of order, a dual-stack VIP), a shared-VIP group,
# and a Gateway with a weighted, filtered HTTPRoute.
DOCS: list[dict[str, Any]] = [
    l4.svc("api"),
    l4.slice_("api", "shop", "api-1", [("10.0.0.9", True), ("10.0.0.10", False), ("10.0.0.2", True)]),
    l4.svc("dual", ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack"),
    shared.WEB, shared.DNS, shared.AMF,
    http.CLASS, http.gw(), http.svc("a"), http.svc("b"),
    http.route("r1", {"matches": [{**http.prefix("/a"), "headers": [{"name": "x-v", "value": "1"}]}],
                      "filters": [{"type": "RequestHeaderModifier",
                                   "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}],
                                                             "remove": ["x-b"]}}],
                      "backendRefs": [http.backend("a", 1), http.backend("b", 3)]}),
]


def trees() -> list[VsTree]:
    e = Engine(l4.CFG)
    for d in DOCS:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    return e.flush().trees


def checksums() -> dict[str, str]:
    return {t.vs_name: t.checksum for t in trees()}


def test_every_process_gives_the_same_checksums() -> None:
    here = checksums()
    assert len(here) >= 4 and all(here.values())
    script = "import json; from tests.unit.test_tree_checksum import checksums; print(json.dumps(checksums()))"
    for seed in ("1", "2", "3"):
        run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == here, f"PYTHONHASHSEED={seed}"


def test_a_tree_back_from_the_bus_has_its_checksum_and_a_restart_publishes_nothing() -> None:
    published = trees()
    for t in published:
        assert decode(encode(t), VsTree).with_checksum().checksum == t.checksum
    e = Engine(l4.CFG)
    for t in published:
        e.remember_tree(decode(encode(t), VsTree))
    for d in DOCS:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    assert e.flush().trees == []


def test_any_change_in_a_body_changes_the_checksum() -> None:
    t = next(t for t in trees() if t.vs_name == "c1--shop-api")
    pool = next(o for o in t.objects if o.type == "pool")
    changed = [o.model_copy(update={"body": {**o.body, "servers": o.body["servers"][:-1]}}) if o is pool else o
               for o in t.objects]
    assert t.model_copy(update={"objects": tuple(changed)}).with_checksum().checksum != t.checksum
    assert t.model_copy(update={"tenant": "other"}).with_checksum().checksum != t.checksum
