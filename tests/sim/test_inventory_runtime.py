"""The inventory endpoints health sweeps follow the simulator's real active health checks.

What health relies on (docs/health.md): ``pool-inventory`` counts that move
with a member's TCP check, agreeing with the pool's member list;
``virtualservice-inventory`` giving each virtual service's state and the
pools it uses; both filtered by ``created_by`` and paged under a tenant
of ``*``.
"""

from __future__ import annotations

from typing import Any

import pytest

from albus.sim.testing import SimClient as Client
from albus.sim.testing import wait_for
from tests.sim.test_health import TcpListener, pool_with, server_states

pytestmark = pytest.mark.sim


def _inventory(client: Client, kind: str, **params: str) -> list[Any]:
    return list(client.ok("GET", f"{kind}-inventory", params={"created_by": "ako-c1", "page_size": 200, **params},
                          headers={"X-Avi-Tenant": "*"})["results"])


def _pool_runtime(client: Client, name: str) -> Any:
    [item] = [i for i in _inventory(client, "pool") if i["config"]["name"] == name]
    return item["runtime"]


def test_inventory_counts_and_states_follow_a_real_listener(client: Client) -> None:
    a, b = TcpListener("127.0.7.1"), TcpListener("127.0.7.2")
    try:
        pool = pool_with(client, "c1--web-80", [(a.ip, a.port), (b.ip, b.port)])
        client.ok("PATCH", f"pool/{pool['uuid']}", {"replace": {"created_by": "ako-c1"}})
        vs = client.ok("POST", "virtualservice", {"name": "c1--web", "services": [{"port": 80}],
                                                  "pool_ref": pool["url"], "created_by": "ako-c1"})
        client.ok("POST", "pool", {"name": "c2--other", "created_by": "ako-c2"})
        wait_for(lambda: _pool_runtime(client, "c1--web-80")["num_servers_up"] == 2, timeout=10, what="both up")
        assert [i["config"]["name"] for i in _inventory(client, "pool")] == ["c1--web-80"]
        [vsi] = _inventory(client, "virtualservice")
        assert vsi["runtime"]["oper_status"]["state"] == "OPER_UP"
        assert [str(u).rsplit("/", 1)[-1] for u in vsi["pools"]] == [pool["uuid"]]

        b.stop()
        wait_for(lambda: _pool_runtime(client, "c1--web-80")["num_servers_up"] == 1, timeout=10, what="b down")
        rt = _pool_runtime(client, "c1--web-80")
        assert (rt["num_servers"], rt["num_servers_enabled"], rt["oper_status"]["state"]) == (2, 2, "OPER_UP")
        states = server_states(client, pool["uuid"])
        assert states[f"{b.ip}:{b.port}"]["state"] == "OPER_DOWN" and states[f"{a.ip}:{a.port}"]["state"] == "OPER_UP"

        a.stop()
        wait_for(lambda: _pool_runtime(client, "c1--web-80")["num_servers_up"] == 0, timeout=10, what="a down")
        assert _pool_runtime(client, "c1--web-80")["oper_status"]["state"] == "OPER_DOWN"
        assert client.ok("GET", f"virtualservice-inventory/{vs['uuid']}")["runtime"]["oper_status"]["state"] \
            == "OPER_DOWN"
    finally:
        for lst in (a, b):
            if not lst._stop.is_set():
                lst.stop()
