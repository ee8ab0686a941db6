"""Health's read-only view of the controller: single objects by name, for validating AviInfraSettings.

Blocking (avisdk); callers run it in a thread. Only GETs, one per object
looked up, and a lookup pass remembers what it read so a batch of settings
naming the same SE group or network reads it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from services.common.avi import Session, avisdk_session_factory
from services.common.config import Config

CLOUD_SCOPED = frozenset({"serviceenginegroup", "network", "vrfcontext"})


class ControllerReadError(Exception):
    """The controller could not be read: validation waits, it does not reject."""


class AviReader:
    def __init__(self, cfg: Config, make: Callable[[bool], Session] | None = None) -> None:
        self.cloud = cfg.ControllerSettings.cloudName
        self.tenant = cfg.ControllerSettings.tenantName
        self._make = make or avisdk_session_factory(cfg)
        self._session: Session | None = None
        self.calls = 0

    def get(self, obj_type: str, name: str) -> dict[str, Any] | None:
        """The object of that name in the configured cloud (None when there is none)."""
        params: dict[str, Any] = {"name": name}
        if obj_type in CLOUD_SCOPED:
            params["cloud_ref.name"] = self.cloud
        try:
            if self._session is None:
                self._session = self._make(False)
            self.calls += 1
            rsp = self._session.get(obj_type, tenant=self.tenant, params=params)
        except Exception as exc:  # connection errors: the next pass tries again
            raise ControllerReadError(f"GET {obj_type}?name={name}: {exc}") from exc
        if rsp.status_code != 200:
            raise ControllerReadError(f"GET {obj_type}?name={name}: {rsp.status_code} {rsp.text[:200]}")
        results = json.loads(rsp.text or "{}").get("results") or []
        return dict(results[0]) if results else None


class CachedLookup:
    """One validation pass's reads, each object read at most once."""

    def __init__(self, reader: AviReader) -> None:
        self.reader = reader
        self._seen: dict[tuple[str, str], dict[str, Any] | None] = {}

    def __call__(self, obj_type: str, name: str) -> dict[str, Any] | None:
        key = (obj_type, name)
        if key not in self._seen:
            self._seen[key] = self.reader.get(obj_type, name)
        return self._seen[key]
