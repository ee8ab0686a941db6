"""Pinned versions of the test control plane.

Kubernetes v1.34 is the newest minor whose kube-apiserver still speaks to the
kubectl v1.32 people have on their machines within kubectl's supported skew
(+/-1 minor is official, +2 works in practice for everything kubectl does
here); v1.34.4 is its newest patch on the module proxy. etcd v3.6.4 is the
etcd that k8s.io/kubernetes v1.34 itself requires (its client and its
integration tests), so the dependency graph stays the one upstream tested.
Gateway API v1.4.1 is the release made for the v1.34 era (its CRDs' CEL rules
need nothing newer).

``controlplane/go.mod`` must agree; the builder checks it.
"""

from __future__ import annotations

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.4"
GATEWAY_API_VERSION = "v1.4.1"
# The go.sum-style hash of the sigs.k8s.io/gateway-api module zip: the CRDs are
# fetched outside the wrapper module (they are data, not code to link), so
# this pin stands in for a go.sum line.
GATEWAY_API_MODULE_SUM = "h1:NPxFutNkKNa8UfLd2CMlEuhIPMQgDQ6DXNKG9sHbJU8="

CACHE_KEY = f"kube-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}_gateway-api-{GATEWAY_API_VERSION}"

KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
ETCD = "etcd"
