"""Health's HTTPS endpoint for the kube-apiserver's admission calls, and its registration.

Serves ``POST /mutate-pods`` (AdmissionReview v1) on the configured
address (loopback unless the chart runs it behind a Service) with the
certificate from ``webhook_tls``; the answer is always "allowed",
with the readiness gate added when ``readiness_gate.mutation`` says so.
Registration replaces the MutatingWebhookConfiguration at start, so a new
CA or address takes effect; nothing removes it at stop (pods created while
health is down are admitted: failure policy Ignore).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from services.common.config import Config, WebhookService
from services.common.kube import request_json
from services.health import readiness_gate, webhook_tls
from services.health.gate_opener import GateOpener
from services.health.webhook_tls import WebhookTls

log = logging.getLogger(__name__)

Mutate = Callable[[dict[str, Any], str], list[dict[str, Any]]]  # (pod, namespace) -> JSON patch
_MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


class WebhookServer:
    def __init__(self, address: str, port: int, tls: WebhookTls, mutate: Mutate) -> None:
        self.address = address
        self.port = port
        self.tls = tls
        self.mutate = mutate
        self.reviews = 0
        self.gated = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.port}{readiness_gate.PATH}"

    async def _review(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        pod = req.get("object") or {}
        patch: list[dict[str, Any]] = []
        try:
            patch = self.mutate(pod, str(req.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""))
        except Exception:  # a bug here must not refuse a pod: admit it unchanged
            log.exception("readiness gate: deciding for a pod failed; admitted without the gate")
        self.reviews += 1
        self.gated += bool(patch)
        return web.json_response(readiness_gate.review_response(review, patch))

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        app = web.Application()
        app.router.add_post(readiness_gate.PATH, self._review)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, self.port, ssl_context=ctx)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        log.info("readiness-gate webhook on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def register(api: Any, ca_pem: bytes, url: str, service: WebhookService | None = None) -> None:
    """Create or replace albus's MutatingWebhookConfiguration (blocking)."""
    body = readiness_gate.registration(ca_pem, url, service)
    path = f"{_MWC}/{readiness_gate.CONFIGURATION_NAME}"
    try:
        cur = request_json(api, "GET", path, timeout=30)
    except ApiException as exc:
        if exc.status != 404:
            raise
        request_json(api, "POST", _MWC, body, timeout=30)
        return
    body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
    if json.dumps(cur.get("webhooks"), sort_keys=True) != json.dumps(body["webhooks"], sort_keys=True):
        request_json(api, "PUT", path, body, timeout=30)


async def start_webhook(cfg: Config, api: Any, gates: GateOpener) -> WebhookServer:
    """Serve the webhook as configured (``albus.readinessGate``) and register it."""
    rg = cfg.albus.readinessGate
    cert_dir = Path(rg.certDir) if rg.certDir else Path(tempfile.mkdtemp(prefix="albus-webhook-"))
    # Called by Service, the API server checks the certificate against the Service's DNS name.
    host = rg.service.host if rg.service is not None else rg.address
    tls = await asyncio.to_thread(webhook_tls.ensure, cert_dir, host)
    server = WebhookServer(rg.address, rg.port, tls, gates.mutate)
    await server.start()
    try:
        await asyncio.to_thread(register, api, tls.ca_pem, server.url, rg.service)
    except Exception:
        await server.stop()
        raise
    return server
