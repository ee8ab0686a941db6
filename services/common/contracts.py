"""Every message that crosses the bus, in one place.

Each model is versioned by its ``v`` field and encoded with msgpack
(:func:`encode` / :func:`decode`). Streams keep the newest message per subject,
so a message always carries the *whole* state of its subject: a consumer that
missed anything rebuilds by replaying the stream (level-based, never
edge-based).

Subjects (see :mod:`services.common.subjects` for building and parsing them):

* ``k8s.<cluster>.<kind>.<ns>.<name>``      :class:`KubeObject` (snapshot or tombstone)
* ``k8s.<cluster>.<kind>._synced``          :class:`KindSynced`
* ``avi.<part>.<cluster>.<tenant>.<vs>``    :class:`VsTree` (desired state, or deletion)
* ``avisync.<cluster>``                     :class:`TreesSynced`
* ``outcome.<cluster>.<tenant>.<vs>``       :class:`ApplyOutcome`
* ``report.<cluster>.<kind>.<ns>.<name>``   :class:`SourceReport` (translation problems)
* ``trace.span.<cluster>.<trace id>``       :class:`SpanBatch` (the local span store)
* ``trace.obj.<cluster>.<kind>.<ns>.<name>``  :class:`ChangeTraced` (its index by object)
* ``ctl.<cluster>.resync``                  :class:`ResyncRequest` (``albus resync``)
* ``ctl.<cluster>.done.<service>.<instance>``  :class:`ResyncDone` (a service's answer)
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

import msgpack
from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1


class Contract(BaseModel):
    """Base of every bus message: immutable, versioned, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind_name: ClassVar[str] = "contract"
    v: int = CONTRACT_VERSION


class ObjRef(BaseModel):
    """A Kubernetes object by kind, namespace ('' when cluster-scoped) and name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    namespace: str = ""
    name: str

    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


class KubeObject(Contract):
    """A trimmed Kubernetes object as the watcher saw it, or its tombstone.

    ``obj`` keeps the Kubernetes JSON shape (camelCase, ``metadata``/``spec``/
    ``status``) trimmed to what translation and status need, so the offline
    ``albus translate -f`` path and the live path feed the translator the same
    data.
    """

    kind_name: ClassVar[str] = "kube-object"
    cluster: str
    kind: str
    namespace: str = ""
    name: str
    uid: str = ""
    resource_version: str = ""
    deleted: bool = False
    obj: dict[str, Any] | None = None

    def ref(self) -> ObjRef:
        return ObjRef(kind=self.kind, namespace=self.namespace, name=self.name)


class KindSynced(Contract):
    """The watcher's initial list of ``kind`` (or a relist) is fully published."""

    kind_name: ClassVar[str] = "kind-synced"
    cluster: str
    kind: str
    resource_version: str
    count: int
    epoch: str = Field(description="watcher incarnation; a new one means a fresh list")
    # The ALBUS_K8S stream (its creation time) the watcher's known set was read
    # from: the list is complete on that stream only. A marker is believed
    # only while that stream is the current one (docs/disaster-recovery.md).
    incarnation: str = ""


class Sealed(BaseModel):
    """A secret sealed (AES-256-GCM) under its cluster's sealing key: :mod:`services.common.sealing`.

    Only the cluster's watcher (which seals) and the syncers serving the
    cluster (which open) hold that key; everything in between carries the box
    unopened (docs/tls-secrets.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    key_id: str  # which key sealed it (a digest of the key, not the key)
    box: str  # urlsafe base64 of nonce (12 bytes) || ciphertext || tag


class AviObject(BaseModel):
    """One controller object exactly as it would be sent (references by name).

    ``write_only`` and ``sealed`` (an sslkeyandcertificate's certificate and
    private key) are sent on every create and update but never compared with
    the controller's copy, which does not return them as sent; ``body`` then
    carries a fingerprint of them, so a change shows in the owned fields and
    in the checksum. ``sealed`` fields travel sealed: the syncer opens them
    just before sending. Both absent read as empty (added without a version bump).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str  # controller object type: vsvip, pool, l4policyset, virtualservice, ...
    name: str
    body: dict[str, Any]
    write_only: dict[str, Any] = Field(default_factory=dict)
    sealed: dict[str, Sealed] = Field(default_factory=dict)

    def sent_fields(self) -> tuple[Any, ...]:
        """What the checksum covers beyond the body: write-only fields, and which key sealed each sealed one.

        Not the sealed boxes: the same key sealed again (a new nonce) must not change a tree's checksum.
        """
        if not self.write_only and not self.sealed:
            return ()
        return (self.write_only, {k: v.key_id for k, v in self.sealed.items()})


class Severity(StrEnum):
    WARNING = "Warning"
    ERROR = "Error"


class Problem(BaseModel):
    """Something wrong with a source object, reported on it as a condition and Event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: ObjRef
    reason: str  # CamelCase, as Kubernetes condition reasons are
    message: str
    severity: Severity = Severity.ERROR


class VsTree(Contract):
    """The complete desired state of one virtual service and everything it owns.

    ``objects`` are in dependency order (children first: vsvip, pools,
    policies, then the virtualservice last); deletion runs in reverse. A tree
    with ``deleted`` set and no objects asks the syncer to remove everything
    the previous tree of that name owned.
    """

    kind_name: ClassVar[str] = "vs-tree"
    cluster: str
    tenant: str
    vs_name: str
    deleted: bool = False
    objects: tuple[AviObject, ...] = ()
    sources: tuple[ObjRef, ...] = ()
    checksum: str = ""

    @classmethod
    def checksummed(cls, *, cluster: str, tenant: str, vs_name: str, deleted: bool = False,
                    objects: tuple[AviObject, ...] = (), sources: tuple[ObjRef, ...] = ()) -> VsTree:
        """A new tree with its checksum: built once (a copy to add it was a twentieth of building a tree)."""
        return cls(cluster=cluster, tenant=tenant, vs_name=vs_name, deleted=deleted, objects=objects,
                   sources=sources, checksum=tree_checksum(tenant, vs_name, deleted, objects))

    def with_checksum(self) -> VsTree:
        """This tree's checksum computed again (a tree read from the bus, or changed in a test)."""
        return self.model_copy(update={"checksum": tree_checksum(self.tenant, self.vs_name, self.deleted,
                                                                 self.objects)})


class _TreePart(Contract):
    """A :class:`VsTree` message read in part, from the same bytes: what is not declared is skipped, not validated."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    kind_name: ClassVar[str] = VsTree.kind_name
    cluster: str
    tenant: str
    vs_name: str
    deleted: bool = False


class VsTreeHead(_TreePart):
    """A tree without its objects (``decode(raw, VsTreeHead)``): for a reader that needs only whom it serves (health)."""

    sources: tuple[ObjRef, ...] = ()
    checksum: str = ""


class ObjectName(BaseModel):
    """An :class:`AviObject` read for whom it names only: its body is skipped, not validated."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: str
    name: str


class VsTreeClaims(_TreePart):
    """A tree read for the objects it claims, not their bodies (``decode(raw, VsTreeClaims)``): garbage
    collection reads every tree of the cluster, twice a run, at a fraction of whole trees' cost."""

    objects: tuple[ObjectName, ...] = ()


class TreesSynced(Contract):
    """The translator has a full view of the cluster and has published every tree.

    Only after this may a syncer garbage-collect the cluster's objects that no
    tree claims; ``vs_names`` lists every live tree at that moment.
    """

    kind_name: ClassVar[str] = "trees-synced"
    cluster: str
    epoch: str
    vs_names: tuple[str, ...] = ()
    # The ALBUS_AVI stream (its creation time) the translator's published
    # trees were read from: garbage collection trusts the marker only while
    # that stream is the current one (docs/disaster-recovery.md).
    incarnation: str = ""
    request: str = ""  # the resync request this full view answers, if any


class ApplyOutcome(Contract):
    """What the syncer did with a tree: the VIPs it got or the error it hit."""

    kind_name: ClassVar[str] = "apply-outcome"
    cluster: str
    tenant: str
    vs_name: str
    checksum: str
    ok: bool
    deleted: bool = False
    error: str | None = None
    error_status: int | None = None
    vips: tuple[str, ...] = ()
    uuids: dict[str, str] = Field(default_factory=dict)
    sources: tuple[ObjRef, ...] = ()
    writes: int = 0


class ListenerStatus(BaseModel):
    """One Gateway listener as translation judged it (health adds ``Programmed`` from the apply outcome)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    accepted: bool = True
    accepted_reason: str = "Accepted"
    resolved_refs: bool = True
    refs_reason: str = "ResolvedRefs"
    conflicted_reason: str = ""  # "" = not conflicted
    message: str = ""
    attached: int = 0  # attachedRoutes: what is attached to the listener (joined Service ports)
    supported_kinds: tuple[str, ...] = ()  # "<group>/<Kind>", group "" for the core group


class RouteParentStatus(BaseModel):
    """A route's standing with one of its parent Gateways (``status.parents[]`` of the route)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway_namespace: str
    gateway_name: str
    section_name: str = ""
    port: int = 0
    accepted: bool = True
    accepted_reason: str = "Accepted"
    resolved_refs: bool = True
    refs_reason: str = "ResolvedRefs"
    message: str = ""


class GatewayStatus(BaseModel):
    """What translation says about a GatewayClass, Gateway or route of albus's: the spec's ``Accepted`` part."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int = 0  # metadata.generation translated: the conditions' observedGeneration
    accepted: bool = True
    reason: str = "Accepted"
    message: str = ""
    listeners: tuple[ListenerStatus, ...] = ()
    parents: tuple[RouteParentStatus, ...] = ()  # for a route: one per parentRef to albus's Gateways


class SourceReport(Contract):
    """Translation problems of one source object; empty ``problems`` (and no ``gateway``) clears them.

    ``gateway`` (added without a version bump: absent reads as None) carries a
    GatewayClass's or Gateway's status for health to write; only albus's own
    classes and their Gateways have one.
    """

    kind_name: ClassVar[str] = "source-report"
    cluster: str
    source: ObjRef
    problems: tuple[Problem, ...] = ()
    vs_names: tuple[str, ...] = ()
    gateway: GatewayStatus | None = None


class SpanEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    time_ns: int
    attributes: dict[str, Any] = Field(default_factory=dict)


class SpanRecord(BaseModel):
    """One finished span as the local store keeps it (ids in hex, times in ns since the epoch)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    trace_id: str
    span_id: str
    parent_span_id: str = ""
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    error: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (trace id, span id)


class SpanBatch(Contract):
    """Spans of one trace exported together by one service."""

    kind_name: ClassVar[str] = "span-batch"
    spans: tuple[SpanRecord, ...]


class ChangeTraced(Contract):
    """A Kubernetes change the watcher published, and the trace that follows it."""

    kind_name: ClassVar[str] = "change-traced"
    cluster: str
    object: ObjRef
    uid: str = ""
    resource_version: str = ""
    deleted: bool = False
    trace_id: str
    start_ns: int


class ResyncRequest(Contract):
    """``albus resync``: every service of ``cluster`` rebuilds its state from the clusters and the controller."""

    kind_name: ClassVar[str] = "resync-request"
    cluster: str
    request: str  # unique per request: the answers name it
    reason: str = ""


class ResyncDone(Contract):
    """One service instance has finished the full resync that answers ``request``.

    ``epoch`` is the translator's ``TreesSynced`` epoch of that resync (the
    translator's own, or the one a syncer replica applied every tree of);
    ``partitions`` are the partitions a syncer replica re-applied.
    """

    kind_name: ClassVar[str] = "resync-done"
    cluster: str
    service: str  # watcher | translator | syncer | health
    instance: str
    request: str
    epoch: str = ""
    partitions: tuple[int, ...] = ()
    detail: str = ""


def tree_checksum(tenant: str, vs_name: str, deleted: bool, objects: tuple[AviObject, ...]) -> str:
    """Stable digest of what the controller should hold for a tree of these fields.

    msgpack of the bodies as built, keys in the builders' order: the translator
    builds every body the same way from the same input (lists in a defined
    order, no dict filled from a set), so equal trees encode equally, in any
    process. Sorted-key JSON did the same at several times the cost (a fifth of
    the translator's time per tree). Changing a builder's key order changes
    checksums: the trees are published once more, and the syncer, which diffs
    against the controller, writes nothing.
    """
    payload = [tenant, vs_name, deleted, [[o.type, o.name, o.body, *o.sent_fields()] for o in objects]]
    raw: bytes = msgpack.packb(payload, use_bin_type=True)
    return hashlib.sha256(raw).hexdigest()[:32]


_REGISTRY: dict[str, type[Contract]] = {
    cls.kind_name: cls
    for cls in (KubeObject, KindSynced, VsTree, TreesSynced, ApplyOutcome, SourceReport, SpanBatch, ChangeTraced,
                ResyncRequest, ResyncDone)
}

C = TypeVar("C", bound=Contract)


def _fields_of(value: Any) -> Any:
    """msgpack's hook for what it cannot pack itself: a model is packed as its fields, in order."""
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"not packed directly: {type(value).__name__}")


def encode(msg: Contract) -> bytes:
    """msgpack of ``{"k": kind, "d": fields}``; the kind lets a reader check what it got.

    The fields' JSON form, packed straight from the model: msgpack packs each
    model's fields (its ``__dict__``, in field order: no serializers, aliases
    or excluded fields here) and the values as they are, which for str, number,
    bool, str enum, tuple and dict is the same bytes as their JSON form
    (tests/unit/test_contract_encoding.py) at a fraction of ``model_dump``'s
    cost (a tree's bodies are not copied first). Anything else (a date in a
    manifest's YAML, a set) takes the JSON dump, as every message once did.
    """
    try:
        data: bytes = msgpack.packb({"k": msg.kind_name, "d": msg}, default=_fields_of, use_bin_type=True)
    except TypeError:
        data = msgpack.packb({"k": msg.kind_name, "d": msg.model_dump(mode="json")}, use_bin_type=True)
    return data


def may_contain(raw: bytes, text: str) -> bool:
    """False when an encoded message surely holds no string ``text`` (any field, any depth); True when it
    may. Every string is packed the same way wherever it is, so a reader can pass over a message that
    cannot concern it without decoding it (tests/unit/test_contract_encoding.py)."""
    return bytes(msgpack.packb(text, use_bin_type=True)) in raw


def decode(raw: bytes, expect: type[C]) -> C:
    """Decode and validate; raises ``ValueError`` on a message of another kind or version."""
    env = msgpack.unpackb(raw, raw=False)
    if not isinstance(env, dict) or env.get("k") != expect.kind_name:
        raise ValueError(f"expected a {expect.kind_name} message, got {env.get('k') if isinstance(env, dict) else type(env)}")
    data = env.get("d")
    if not isinstance(data, dict):
        raise ValueError("message has no body")
    if data.get("v", CONTRACT_VERSION) > CONTRACT_VERSION:
        raise ValueError(f"{expect.kind_name} v{data.get('v')} is newer than this build (v{CONTRACT_VERSION})")
    return expect.model_validate(data)


def decode_any(raw: bytes) -> Contract:
    env = msgpack.unpackb(raw, raw=False)
    kind = env.get("k") if isinstance(env, dict) else None
    cls = _REGISTRY.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown message kind {kind!r}")
    return decode(raw, cls)


Kind = Literal[
    "Service", "EndpointSlice", "Namespace", "Ingress", "IngressClass", "Secret",
    "GatewayClass", "Gateway", "HTTPRoute", "AviInfraSetting",
]
