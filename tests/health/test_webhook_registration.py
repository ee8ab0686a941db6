"""How health registers its webhook: by URL (loopback, `albus up`) or by Service (the chart), with its CA."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509

from services.common.config import ConfigError, WebhookService, parse_config
from services.health import readiness_gate as rg
from services.health import webhook_tls

URL = "https://127.0.0.1:9443/mutate-pods"


def _config(gate: dict[str, object]) -> dict[str, object]:
    return {"AKOSettings": {"clusterName": "east"}, "albus": {"readinessGate": gate}}


def test_without_a_service_the_registration_names_the_url() -> None:
    [hook] = rg.registration(b"CA PEM", URL)["webhooks"]
    assert hook["clientConfig"] == {"url": URL, "caBundle": base64.b64encode(b"CA PEM").decode()}


def test_with_a_service_the_registration_names_it_and_carries_the_ca() -> None:
    svc = WebhookService(namespace="avi-system", name="albus-health-webhook", port=443)
    by_url = rg.registration(b"CA PEM", URL)
    body = rg.registration(b"CA PEM", URL, svc)
    [hook] = body["webhooks"]
    assert hook["clientConfig"] == {
        "service": {"namespace": "avi-system", "name": "albus-health-webhook", "port": 443, "path": rg.PATH},
        "caBundle": base64.b64encode(b"CA PEM").decode()}
    # Everything but the client config is as registered by URL: fail open, opt-in namespaces only.
    assert hook["failurePolicy"] == "Ignore"
    assert hook["namespaceSelector"] == {"matchLabels": {rg.OPT_IN_LABEL: rg.OPT_IN_VALUE}}
    [url_hook] = by_url["webhooks"]
    assert {k: v for k, v in hook.items() if k != "clientConfig"} == {
        k: v for k, v in url_hook.items() if k != "clientConfig"}
    assert body["metadata"] == by_url["metadata"]


def test_the_service_setting_is_absent_unless_configured_and_needs_a_name() -> None:
    plain = parse_config(_config({"port": 9443})).albus.readinessGate
    assert plain.service is None and plain.address == "127.0.0.1"
    svc = parse_config(_config({"port": 9443, "address": "0.0.0.0",
                                "service": {"namespace": "avi-system", "name": "w"}})).albus.readinessGate.service
    assert svc is not None and svc.port == 443 and svc.host == "w.avi-system.svc"
    with pytest.raises(ConfigError, match="service"):
        parse_config(_config({"port": 9443, "service": {"namespace": "avi-system"}}))


def _sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return [str(n.value) for n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value]


def test_the_serving_certificate_follows_the_host_and_keeps_the_ca(tmp_path: Path) -> None:
    by_ip = webhook_tls.ensure(tmp_path, "127.0.0.1")
    assert _sans(by_ip.cert_file) == ["127.0.0.1"]
    first = by_ip.cert_file.read_bytes()
    assert webhook_tls.ensure(tmp_path, "127.0.0.1").cert_file.read_bytes() == first  # kept while valid
    by_svc = webhook_tls.ensure(tmp_path, "w.avi-system.svc")
    assert _sans(by_svc.cert_file) == ["w.avi-system.svc"]  # made anew for the Service's name
    assert by_svc.ca_pem == by_ip.ca_pem  # the same CA: a registration made before stays valid
