"""Kubernetes API access shared by the services that talk to a cluster (watcher, health).

The official client is synchronous; callers run its calls in threads. Bodies
are read and written as plain JSON dicts (:func:`request_json`) rather than
through the client's typed methods: those coerce a dict body into a model and
serialise its timestamps again, in a form ``MicroTime`` fields reject (it
wants exactly six fractional digits), and drop fields the model lacks.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from services.common.config import Config

DEFAULT_NAMESPACE = "avi-system"


def api_client(cfg: Config) -> Any:
    """A client for ``cfg.albus.kubeconfig``, else ``$KUBECONFIG``, else the in-cluster account."""
    path = cfg.albus.kubeconfig or os.environ.get("KUBECONFIG", "")
    loader: Any = config  # the client's config loaders carry no annotations
    if path:
        return loader.new_client_from_config(config_file=path)
    conf = client.Configuration()
    loader.load_incluster_config(client_configuration=conf)
    return client.ApiClient(conf)


def albus_namespace(cfg: Config) -> str:
    """The namespace albus runs in (its Lease lives there)."""
    return cfg.albus.namespace or os.environ.get("POD_NAMESPACE", "") or DEFAULT_NAMESPACE


def request_text(
    api: Any, method: str, path: str, body: Any = None, *,
    content_type: str = "application/json", timeout: float = 30.0, accept: str = "application/json",
) -> str:
    """One API call with a body as given, its answer as text; raises ``ApiException`` (with ``status``)
    unless 2xx."""
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api.param_serialize(
        method=method, resource_path=path, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    resp = api.call_api(*params, _request_timeout=timeout)
    resp.read()
    text: str = resp.data.decode("utf-8", errors="replace") if resp.data else ""
    if not 200 <= resp.status <= 299:
        raise ApiException(status=resp.status, reason=resp.reason, body=text)
    return text


def request_json(
    api: Any, method: str, path: str, body: Any = None, *,
    content_type: str = "application/json", timeout: float = 30.0,
) -> dict[str, Any]:
    """One API call with a JSON body as given; raises ``ApiException`` (with ``status``) unless 2xx."""
    text = request_text(api, method, path, body, content_type=content_type, timeout=timeout)
    data = json.loads(text) if text else {}
    if not isinstance(data, dict):
        raise ValueError(f"{method} {path}: expected a JSON object, got {type(data).__name__}")
    return data


def get_json_or_none(api: Any, path: str, *, timeout: float = 30.0) -> dict[str, Any] | None:
    """GET one object; None when the API server says it does not exist (404)."""
    try:
        return request_json(api, "GET", path, timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# The list/watch keywords the client's generated methods take, by query name.
_LIST_QUERY = {"limit": "limit", "_continue": "continue", "watch": "watch", "resource_version": "resourceVersion",
               "allow_watch_bookmarks": "allowWatchBookmarks", "timeout_seconds": "timeoutSeconds",
               "field_selector": "fieldSelector", "label_selector": "labelSelector"}


def list_raw(api: Any, path: str, *, _preload_content: bool = False, _request_timeout: Any = None,
             **query: Any) -> Any:
    """List (or, with ``watch=True``, watch) a collection path; the raw response, as ``_preload_content=False`` gives.

    Takes the generated methods' keywords, so ``kubernetes.watch`` can drive
    it, without their classes: importing ``CoreV1Api`` builds every core model
    (seconds of CPU), which a watcher would pay on the event loop at each term.
    """
    params = [(_LIST_QUERY[k], v) for k, v in query.items() if v is not None]
    serialized = api.param_serialize(method="GET", resource_path=path, query_params=params,
                                     header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
    resp = api.call_api(*serialized, _request_timeout=_request_timeout).response
    if not 200 <= resp.status <= 299:  # e.g. 404: the kind is not served (an optional CRD)
        raise ApiException(status=resp.status, reason=resp.reason, body=resp.data.decode("utf-8", errors="replace"))
    return resp


def read_json(resp: Any) -> dict[str, Any]:
    """The JSON body of a ``_preload_content=False`` response."""
    try:
        data = json.loads(resp.data)
    finally:
        resp.release_conn()
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def rfc3339(when: datetime | None = None) -> str:
    """``metav1.Time``: seconds precision, UTC."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: datetime | None = None) -> str:
    """``metav1.MicroTime``: exactly six fractional digits, UTC."""
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
