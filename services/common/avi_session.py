"""A session with the Avi controller on the event loop (aiohttp), speaking as avisdk speaks.

Why not avisdk here: avisdk is synchronous (requests). Driven from a thread
pool, one controller call cost the syncer ~2.7 ms of CPU and held the GIL
against its event loop; the same call on aiohttp costs ~0.3 ms
(docs/architecture.md, "Controller calls"). What the controller sees is
what avisdk sends, so a controller that accepts avisdk accepts this:

* ``POST <prefix>/login`` with the form fields ``username`` and ``password``
  (or ``token``); a 200 with a ``csrftoken`` cookie and the session cookie
  (``sessionid``, or the name the answer's ``session_cookie_name`` gives);
* on every call the cookies ``csrftoken``, ``sessionid`` and
  ``avi-sessionid``, and the headers ``X-CSRFToken``, ``Referer: <prefix>``,
  ``Content-Type: application/json``, ``X-Avi-Version`` and ``X-Avi-Tenant``;
* a 401 or 419 (session expired, controller restarted, CSRF token refused)
  logs in again — once for all the calls that saw it — and repeats the call,
  up to three times; a ``csrftoken`` cookie in any answer is adopted.

The prefix is avisdk's: ``https://<controllerHost>`` (IPv6 in brackets), or
the host verbatim when it starts with ``http``. Proxies come from the
environment as requests reads them, once. Passwords, cookies and tokens
never reach a log line or an exception's text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from services.common.config import Config

RELOGIN_STATUSES = frozenset({401, 419})
MAX_RELOGINS = 3  # avisdk's max_api_retries


class ControllerError(Exception):
    """A controller call that failed for good: its HTTP status (None: no answer) and message."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


class LoginFailed(ControllerError):
    """The controller refused the login (bad credentials, or not ready)."""


@dataclass(frozen=True)
class Reply:
    """An answer: its status, its body as JSON (None when it is not JSON) and text, and ``Retry-After``."""

    status: int
    body: Any
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _reply(status: int, text: str, headers: Mapping[str, str]) -> Reply:
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    retry_after = {"retry-after": headers["Retry-After"]} if "Retry-After" in headers else {}
    return Reply(status=status, body=body, text=text, headers=retry_after)


@dataclass(frozen=True)
class _Login:
    csrftoken: str
    session_id: str

    @property
    def cookie(self) -> str:
        return f"csrftoken={self.csrftoken}; sessionid={self.session_id}; avi-sessionid={self.session_id}"


def controller_prefix(host: str) -> str:
    """avisdk's URL prefix for ``controllerHost``."""
    if host.startswith("http"):
        return host.rstrip("/")
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            name = f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return f"https://{name}" + (f":{port}" if port and port not in ("80", "443") else "")


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Query pairs as requests encodes them: lists repeat the key, everything else is ``str()``."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for v in value if isinstance(value, list | tuple) else [value]:
            if v is not None:
                pairs.append((key, str(v)))
    return pairs


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for the controller, as requests would pick it (read once)."""
    host = urlsplit(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(urlsplit(url).scheme) or proxies.get("all")


def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    bundle = verify if isinstance(verify, str) else (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"))
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


class AviSession:
    """One login shared by every call of the process, ``connections`` kept alive at most."""

    def __init__(self, *, controller: str, username: str, password: str = "", token: str = "",
                 api_version: str = "", verify: bool | str = True, timeout: float = 60.0,
                 connections: int = 8) -> None:
        self.prefix = controller_prefix(controller)
        self._form = {"username": username, **({"password": password} if password else {"token": token})}
        self._api_version = api_version
        self._ssl = _ssl_context(verify) if self.prefix.startswith("https") else True
        self._proxy = _proxy_for(self.prefix)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._http: aiohttp.ClientSession | None = None
        self._login: _Login | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0  # successful logins (tests count them)

    @classmethod
    def from_config(cls, cfg: Config, connections: int) -> AviSession:
        ctrl, creds = cfg.ControllerSettings, cfg.credentials
        return cls(controller=ctrl.controllerHost, username=creds.username, password=creds.password,
                   token=creds.authtoken, api_version=ctrl.controllerVersion,
                   verify=ctrl.caFile or ctrl.verifyTLS, connections=connections)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # Cookies are kept by hand: the controller marks them Secure and sets them for an IP
            # address, which aiohttp's jar would not send back over a plain-HTTP simulator.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl),
                cookie_jar=aiohttp.DummyCookieJar(), timeout=self._timeout)
        return self._http

    async def request(self, method: str, path: str, *, tenant: str, params: Mapping[str, Any] | None = None,
                      data: Any = None) -> Reply:
        """One call; logs in first when needed and again on 401/419.

        Raises ``LoginFailed`` when a login is refused, and aiohttp's
        ``ClientError`` or ``TimeoutError`` when no answer came.
        """
        url = f"{self.prefix}/api/{path}"
        body = json.dumps(data) if isinstance(data, dict | list) else data
        query = _query(params)
        for _ in range(MAX_RELOGINS + 1):
            login = self._login or await self._relogin(None)
            headers = {
                "Referer": self.prefix, "Content-Type": "application/json", "X-Avi-Tenant": tenant,
                "X-CSRFToken": login.csrftoken, "Cookie": login.cookie,
            }
            if self._api_version:
                headers["X-Avi-Version"] = self._api_version
            async with self._client().request(method.upper(), url, params=query, data=body, headers=headers,
                                              proxy=self._proxy) as resp:
                reply = _reply(resp.status, await resp.text(), resp.headers)
                self._adopt(login, resp.cookies)
            if reply.status not in RELOGIN_STATUSES:
                return reply
            await self._relogin(login)
        return reply

    def _adopt(self, login: _Login, cookies: SimpleCookie) -> None:
        """A ``csrftoken`` the controller sends with an answer replaces ours (as avisdk does)."""
        token = cookies.get("csrftoken")
        if token is not None and token.value and token.value != login.csrftoken and self._login is login:
            self._login = _Login(token.value, login.session_id)

    async def _relogin(self, stale: _Login | None) -> _Login:
        """Log in, unless another call already did since ``stale`` was refused."""
        async with self._login_lock:
            if self._login is not None and self._login is not stale:
                return self._login
            self._login = None
            async with self._client().post(f"{self.prefix}/login", data=self._form, proxy=self._proxy) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise LoginFailed(resp.status, f"login refused: {text.strip()[:200]}")
                try:
                    answer = json.loads(text) if text else {}
                except ValueError:
                    answer = {}
                name = answer.get("session_cookie_name", "sessionid") if isinstance(answer, dict) else "sessionid"
                csrf, sid = resp.cookies.get("csrftoken"), resp.cookies.get(name)
                if csrf is None or sid is None:
                    raise LoginFailed(resp.status, "login: the answer set no csrftoken or session cookie")
                self._login = _Login(csrf.value, sid.value)
                self.logins += 1
                return self._login

    async def close(self) -> None:
        """Log out (a controller keeps idle sessions for 15 minutes) and close the connections."""
        if self._http is None or self._http.closed:
            return
        login, self._login = self._login, None
        if login is not None:
            try:
                async with self._http.post(f"{self.prefix}/logout", proxy=self._proxy, headers={
                        "Referer": self.prefix, "X-CSRFToken": login.csrftoken, "Cookie": login.cookie}) as resp:
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                pass  # the controller expires it on its own
        await self._http.close()
