"""avisdk sessions from albus's configuration, for health's reads of the controller.

Health reads through them (AviInfraSettings' objects, the runtime inventories),
a few paced calls a second from a thread. The syncer does not: its calls go
through ``services/common/avi_session.py`` on its event loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import requests

from services.common.config import Config


class Session(Protocol):
    """What health needs of ``avi.sdk.avi_api.ApiSession``: reads only."""

    def get(self, path: str, tenant: str = ..., **kwargs: Any) -> requests.Response: ...


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
        _settle_environment(session)  # type: ignore[arg-type]
        return session

    return make


def _settle_environment(session: requests.Session) -> None:
    """Read the proxy, CA bundle and netrc settings of the environment once, for the controller.

    With ``trust_env`` requests reads them again on every call (the proxy
    variables and ~/.netrc), a tenth of the syncer's CPU per edit. Every call
    goes to the one controller and a process's environment does not change,
    so the answer is the same each time: taken here, as requests would take it.
    """
    url = str(getattr(session, "prefix", ""))
    if not url:
        return
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle  # requests lets it win over the session's own setting
    if session.auth is None:
        session.auth = requests.utils.get_netrc_auth(url)
    session.trust_env = False
