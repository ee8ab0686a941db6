"""The kinds the watcher reflects: one row per kind.

A row says how to list (and watch) the kind across the cluster and how to trim
it. Adding a kind (Ingress, IngressClass) is adding a row (and its verbs to
``deploy/rbac/clusterrole.yaml``). TLS Secrets are sealed on the way
(:mod:`services.common.tls_secrets`, docs/tls-secrets.md).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

from services.common import readiness_gate, tls_secrets
from services.common.reflector import KindSpec, custom_lister, path_lister
from services.common.sealing import Keyring
from services.watcher import trim

SERVICE = KindSpec(
    kind="Service", api_version="v1", namespaced=True,
    lister=path_lister("/api/v1/services"),
    trim=trim.trim_service,
)
ENDPOINT_SLICE = KindSpec(
    kind="EndpointSlice", api_version="discovery.k8s.io/v1", namespaced=True,
    lister=path_lister("/apis/discovery.k8s.io/v1/endpointslices"),
    trim=trim.trim_endpoint_slice,
)
NAMESPACE = KindSpec(
    kind="Namespace", api_version="v1", namespaced=False,
    lister=path_lister("/api/v1/namespaces"),
    trim=trim.trim_metadata_only,
)
AVI_INFRA_SETTING = KindSpec(
    kind="AviInfraSetting", api_version="ako.vmware.com/v1beta1", namespaced=False,
    lister=custom_lister("ako.vmware.com", "v1beta1", "aviinfrasettings"),
    trim=trim.trim_with_spec_and_status,
    optional=True,
)

# Ingress status is albus's output, so only the spec is kept (as for Gateway API kinds).
INGRESS = KindSpec(
    kind="Ingress", api_version="networking.k8s.io/v1", namespaced=True,
    lister=path_lister("/apis/networking.k8s.io/v1/ingresses"),
    trim=trim.trim_with_spec,
)
INGRESS_CLASS = KindSpec(
    kind="IngressClass", api_version="networking.k8s.io/v1", namespaced=False,
    lister=path_lister("/apis/networking.k8s.io/v1/ingressclasses"),
    trim=trim.trim_with_spec,
)

# Pods carrying albus's readiness gate only (no selector can say so: every pod is read, few are published).
GATED_POD = KindSpec(
    kind="Pod", api_version="v1", namespaced=True,
    lister=path_lister("/api/v1/pods"),
    trim=trim.trim_gated_pod,
    relevant=readiness_gate.gated,
)


def gateway_api(kind: str, plural: str, namespaced: bool = True, version: str = "v1") -> KindSpec:
    """A Gateway API kind (optional CRD); its status is albus's output, so only the spec is kept."""
    group = "gateway.networking.k8s.io"
    return KindSpec(kind=kind, api_version=f"{group}/{version}", namespaced=namespaced,
                    lister=custom_lister(group, version, plural), trim=trim.trim_with_spec, optional=True)


GATEWAY_CLASS = gateway_api("GatewayClass", "gatewayclasses", namespaced=False)
GATEWAY = gateway_api("Gateway", "gateways")
HTTP_ROUTE = gateway_api("HTTPRoute", "httproutes")
REFERENCE_GRANT = gateway_api("ReferenceGrant", "referencegrants", version="v1beta1")
# The experimental channel's route kinds: most clusters do not install them (optional, listed empty).
TCP_ROUTE = gateway_api("TCPRoute", "tcproutes", version="v1alpha2")
UDP_ROUTE = gateway_api("UDPRoute", "udproutes", version="v1alpha2")
TLS_ROUTE = gateway_api("TLSRoute", "tlsroutes", version="v1alpha2")


def tls_secret_kind(keyring: Keyring) -> KindSpec:
    """Secrets of type kubernetes.io/tls only (a field selector: no other Secret reaches albus), keys sealed."""
    return KindSpec(kind="Secret", api_version="v1", namespaced=True,
                    lister=path_lister("/api/v1/secrets", field_selector=tls_secrets.FIELD_SELECTOR),
                    trim=functools.partial(tls_secrets.trim, keyring=keyring))


# Without a sealing key TLS Secrets are still listed: each says why its key cannot be carried.
SECRET = tls_secret_kind(Keyring(cluster=""))

KINDS: tuple[KindSpec, ...] = (SERVICE, ENDPOINT_SLICE, NAMESPACE, AVI_INFRA_SETTING, GATEWAY_CLASS, GATEWAY,
                               HTTP_ROUTE, REFERENCE_GRANT, TCP_ROUTE, UDP_ROUTE, TLS_ROUTE, SECRET, INGRESS,
                               INGRESS_CLASS, GATED_POD)


def with_keyring(kinds: Sequence[KindSpec], keyring: Keyring) -> tuple[KindSpec, ...]:
    """``kinds`` with the TLS Secrets' keys sealed under ``keyring`` (the cluster's sealing key)."""
    sealed = tls_secret_kind(keyring)
    return tuple(dataclasses.replace(k, trim=sealed.trim) if k.kind == "Secret" else k for k in kinds)
