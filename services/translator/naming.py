"""Controller object names, as AKO makes them, so an AKO user recognises every object.

``<cluster>--`` prefixes everything a cluster owns; then namespace, object
name, protocol and port joined by ``-`` (see ``shared/research/ako.md`` §1).
"""

from __future__ import annotations

import hashlib

# The controller refuses longer names; AKO only warns, we shorten instead.
AVI_NAME_MAX = 255


def prefix(cluster: str) -> str:
    return f"{cluster}--"


def fit(name: str, cluster: str) -> str:
    """Keep a name within the controller's limit, the way AKO encodes names: ``<cluster>--<sha1 hex>``."""
    if len(name) <= AVI_NAME_MAX:
        return name
    return f"{prefix(cluster)}{hashlib.sha1(name.encode()).hexdigest()}"


def shortened(name: str, cluster: str) -> bool:
    """Whether ``fit`` had to encode this name."""
    rest = name.removeprefix(prefix(cluster))
    return rest != name and len(rest) == 40 and all(c in "0123456789abcdef" for c in rest)


def l4_vs(cluster: str, namespace: str, service: str) -> str:
    return fit(f"{prefix(cluster)}{namespace}-{service}", cluster)


def l4_vsvip(cluster: str, namespace: str, service: str) -> str:
    return l4_vs(cluster, namespace, service)


def l4_pool(cluster: str, namespace: str, service: str, protocol: str, port: int) -> str:
    return fit(f"{prefix(cluster)}{namespace}-{service}-{protocol}-{port}", cluster)


def shared_vs(cluster: str, namespace: str, key: str) -> str:
    """A shared-VIP group's VS (also its vsvip and l4policyset): the group key in the Service's place."""
    return l4_vs(cluster, namespace, key)


def shared_pool(cluster: str, namespace: str, service: str, key: str, protocol: str, port: int) -> str:
    return fit(f"{prefix(cluster)}{namespace}-{service}-{key}-{protocol}-{port}", cluster)


def l4_policyset(cluster: str, namespace: str, service: str) -> str:
    return l4_vs(cluster, namespace, service)


def gateway_vs(cluster: str, namespace: str, gateway: str) -> str:
    """A Gateway's VS (also its vsvip and l4policyset), as AKO's labels approach names it (ako.md §10)."""
    return l4_vs(cluster, namespace, gateway)


def gateway_pool(cluster: str, namespace: str, service: str, gateway: str, protocol: str, port: int) -> str:
    """The pool of a Service joined to a Gateway: the Gateway's name in the shared-VIP key's place."""
    return shared_pool(cluster, namespace, service, gateway, protocol, port)


def gateway_cert(cluster: str, gw_namespace: str, gateway: str, secret_namespace: str, secret: str) -> str:
    """A Gateway's sslkeyandcertificate for one Secret: AKO's components (ako.md §1), not its sha1.

    One per (Gateway, Secret), so two Gateways using one Secret own a copy each.
    """
    return fit(f"{prefix(cluster)}{gw_namespace}-{gateway}-{secret_namespace}-{secret}", cluster)


def _infra(infra: str) -> str:
    return f"{infra}-" if infra else ""


def ingress_shard_vs(cluster: str, infra: str, index: int) -> str:
    """A shared L7 parent VS (also its vsvip and httppolicyset): ``<cluster>--Shared-L7-[<infra>-]<n>``."""
    return fit(f"{prefix(cluster)}Shared-L7-{_infra(infra)}{index}", cluster)


def ingress_dedicated_vs(cluster: str, infra: str, host: str) -> str:
    """A host's own VS in DEDICATED mode: ``<cluster>--[<infra>-]<host>-L7-dedicated``."""
    return fit(f"{prefix(cluster)}{_infra(infra)}{host}-L7-dedicated", cluster)


def ingress_sni_vs(cluster: str, infra: str, host: str) -> str:
    """A TLS host's SNI child VS, also its sslkeyandcertificate and httppolicyset: ``<cluster>--[<infra>-]<host>``."""
    return fit(f"{prefix(cluster)}{_infra(infra)}{host}", cluster)


def ingress_pool(cluster: str, infra: str, host: str, path: str, namespace: str, ingress: str, service: str,
                 port: int | str) -> str:
    """A host/path's pool, AKO's ``<cluster>--[<infra>-]<host><path>-<ns>-<ingress>-<svc>`` (``/`` → ``_``),
    with the Service port appended: albus makes one pool per (host, path, Service, port)."""
    where = f"{host}{path}".replace("/", "_")
    return fit(f"{prefix(cluster)}{_infra(infra)}{where}-{namespace}-{ingress}-{service}-{port}", cluster)


def created_by(cluster: str) -> str:
    return f"ako-{cluster}"
