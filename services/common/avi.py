"""avisdk sessions from albus's configuration, for every service that talks to the controller.

The syncer writes through them (``services/syncer/avi_client.py`` adds rate
limits and retries); health only reads, to validate AviInfraSettings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import requests

from services.common.config import Config


class Session(Protocol):
    """What the client needs of ``avi.sdk.avi_api.ApiSession``."""

    def get(self, path: str, tenant: str = ..., **kwargs: Any) -> requests.Response: ...
    def post(self, path: str, data: Any = ..., tenant: str = ..., **kwargs: Any) -> requests.Response: ...
    def put(self, path: str, data: Any = ..., tenant: str = ..., **kwargs: Any) -> requests.Response: ...
    def patch(self, path: str, data: Any = ..., tenant: str = ..., **kwargs: Any) -> requests.Response: ...
    def delete(self, path: str, tenant: str = ..., **kwargs: Any) -> requests.Response: ...


def avisdk_session_factory(cfg: Config) -> Callable[[bool], Session]:
    """Builds avisdk sessions from configuration; ``lazy`` ones reuse the first login."""
    from avi.sdk.avi_api import ApiSession

    ctrl = cfg.ControllerSettings
    creds = cfg.credentials
    verify: bool | str = ctrl.caFile or ctrl.verifyTLS

    def make(lazy: bool) -> Session:
        session: Session = ApiSession(
            controller_ip=ctrl.controllerHost,
            username=creds.username,
            password=creds.password or None,
            token=creds.authtoken or None,
            tenant=ctrl.tenantName,
            verify=verify,
            api_version=ctrl.controllerVersion,
            timeout=60,
            lazy_authentication=lazy,
        )
        return session

    return make
