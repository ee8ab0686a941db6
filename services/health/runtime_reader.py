"""Health's bulk reads of the controller's runtime: inventories by the page, a pool's servers on demand.

Blocking (avisdk); the poller runs it in a thread. One sweep reads
``virtualservice-inventory`` and ``pool-inventory`` filtered to this
cluster's objects (``created_by=ako-<cluster>``) across every tenant, 200
items a call (the controller's largest page): 10,000 pools cost 50 calls.
The inventory has each pool's up/enabled counts but not which member is
which, so :meth:`RuntimeReader.servers` reads one pool's servers; the
poller calls it only for pools whose counts say something is not up
(``runtime_view``). Between sweeps, the poller reads only the virtual
services an apply just touched and their pools (``name.in``/``uuid.in``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from services.common.avi import Session, avisdk_session_factory
from services.common.config import Config

PAGE_SIZE = 200  # the controller refuses more
FILTER_CHUNK = 50  # names or uuids per filtered read: keeps the URL short
ALL_TENANTS = "*"


class RuntimeReadError(Exception):
    """The controller could not be read this sweep: the view keeps what it had."""


@dataclass(frozen=True)
class PoolSummary:
    name: str
    uuid: str
    state: str  # the pool's oper_status.state
    servers: int
    enabled: int
    up: int

    @property
    def all_up(self) -> bool:
        """Every member up: no need to ask which."""
        return self.up == self.servers


@dataclass(frozen=True)
class VsSummary:
    name: str
    uuid: str
    state: str
    reason: str
    pools: tuple[str, ...]  # uuids of the pools it sends traffic to, as the controller says


@dataclass(frozen=True)
class MemberState:
    ip: str
    port: int
    state: str  # OPER_UP, OPER_DOWN, OPER_DISABLED, OPER_CREATING...
    reason: str


class RuntimeReader:
    def __init__(self, cfg: Config, make: Callable[[bool], Session] | None = None) -> None:
        self.created_by = cfg.created_by
        self._make = make or avisdk_session_factory(cfg)
        self._session: Session | None = None
        self.calls = 0  # every GET made, for the bench and tests

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            if self._session is None:
                self._session = self._make(False)
            self.calls += 1
            rsp = self._session.get(path, tenant=ALL_TENANTS, params=params or {})
        except Exception as exc:  # connection errors: the next sweep tries again
            raise RuntimeReadError(f"GET {path}: {exc}") from exc
        if rsp.status_code != 200:
            raise RuntimeReadError(f"GET {path}: {rsp.status_code} {rsp.text[:200]}")
        return json.loads(rsp.text or "null")

    def _pages(self, path: str, where: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The items, a page at a time: a sweep holds one page decoded, not the whole inventory."""
        page = 1
        while True:
            body = self._get(path, {**(where or {}), "created_by": self.created_by, "page_size": PAGE_SIZE,
                                    "page": page})
            results = body.get("results") or []
            yield from results
            if not body.get("next") or not results:
                return
            page += 1

    def _owned(self, item: dict[str, Any]) -> bool:
        # Filter here too: a controller that ignores the query must not widen the view.
        return bool((item.get("config") or {}).get("created_by") in (None, self.created_by))

    def _some(self, path: str, field: str, values: Collection[str]) -> Iterator[dict[str, Any]]:
        """Inventory items whose ``field`` is one of ``values`` (``<field>.in``, a bounded number per call)."""
        wanted = sorted(values)
        for i in range(0, len(wanted), FILTER_CHUNK):
            yield from self._pages(path, {f"{field}.in": ",".join(wanted[i:i + FILTER_CHUNK])})

    def pools(self, uuids: Collection[str] | None = None) -> dict[str, PoolSummary]:
        """This cluster's pools by name, with their counts (only these uuids' when given)."""
        out: dict[str, PoolSummary] = {}
        items = self._pages("pool-inventory") if uuids is None else self._some("pool-inventory", "uuid", uuids)
        for item in items:
            if not self._owned(item):
                continue
            cfg = item.get("config") or {}
            rt = item.get("runtime") or {}
            name = str(cfg.get("name") or "")
            out[name] = PoolSummary(
                name=name, uuid=str(item.get("uuid") or cfg.get("uuid") or ""),
                state=str((rt.get("oper_status") or {}).get("state") or "OPER_UNKNOWN"),
                servers=int(rt.get("num_servers") or 0), enabled=int(rt.get("num_servers_enabled") or 0),
                up=int(rt.get("num_servers_up") or 0),
            )
        return out

    def virtual_services(self, names: Collection[str] | None = None) -> dict[str, VsSummary]:
        """This cluster's virtual services by name (only these when given)."""
        out: dict[str, VsSummary] = {}
        items = (self._pages("virtualservice-inventory") if names is None
                 else self._some("virtualservice-inventory", "name", names))
        for item in items:
            if not self._owned(item):
                continue
            cfg = item.get("config") or {}
            oper = (item.get("runtime") or {}).get("oper_status") or {}
            name = str(cfg.get("name") or "")
            out[name] = VsSummary(name=name, uuid=str(item.get("uuid") or ""),
                                  state=str(oper.get("state") or "OPER_UNKNOWN"),
                                  reason="; ".join(str(r) for r in oper.get("reason") or ()),
                                  pools=tuple(str(u).rstrip("/").rsplit("/", 1)[-1].split("#")[0]
                                              for u in item.get("pools") or ()))
        return out

    def servers(self, pool_uuid: str) -> list[MemberState]:
        """One pool's members and their states (one call)."""
        body = self._get(f"pool/{pool_uuid}/runtime/server/detail")
        rows = body.get("server", []) if isinstance(body, dict) else body  # some versions wrap the list
        out = []
        for s in rows or ():
            oper = s.get("oper_status") or {}
            out.append(MemberState(
                ip=str((s.get("ip_addr") or {}).get("addr") or ""), port=int(s.get("port") or 0),
                state=str(oper.get("state") or "OPER_UNKNOWN"),
                reason="; ".join(str(r) for r in oper.get("reason") or ()),
            ))
        return out
