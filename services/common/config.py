"""albus configuration: a YAML file in AKO's value layout, plus environment.

An AKO user finds the names they know (``AKOSettings.clusterName``,
``ControllerSettings.controllerHost``, ``NetworkSettings.vipNetworkList``,
...); what AKO has no word for lives under ``albus:``. Bad configuration is
refused at start with a message naming the field.

Environment (applied over the file): ``ALBUS_CONFIG`` (path of the file),
``CLUSTER_NAME``, ``CTRL_IPADDRESS``, ``CTRL_VERSION``, ``CTRL_USERNAME``,
``CTRL_PASSWORD``, ``CTRL_AUTHTOKEN``, ``CTRL_CA_FILE``, ``CLOUD_NAME``,
``SEG_NAME``, ``TENANT_NAME``, ``NATS_URL``, ``NATS_REPLICAS``, ``KUBECONFIG``, ``POD_NAMESPACE``,
``ALBUS_LOG_FORMAT`` (``text``/``json``), ``ALBUS_SEALING_KEY_FILE``; tracing follows the standard ``OTEL_*``
variables (:mod:`services.common.tracing`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")
AKO_LB_CLASS = "ako.vmware.com/avi-lb"


def cluster_name(value: str) -> str:
    """A valid cluster name (it prefixes every controller object and is a bus subject token)."""
    if not CLUSTER_NAME_RE.match(value):
        raise ValueError("must be 1-32 characters of letters, digits, '-' or '_'")
    return value


class ConfigError(ValueError):
    """Configuration that albus refuses to start with."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VipNetwork(_Section):
    networkName: str = ""
    networkUUID: str = ""
    cidr: str = ""
    v6cidr: str = ""

    @field_validator("cidr", "v6cidr")
    @classmethod
    def _cidr(cls, value: str, info: Any) -> str:
        if value:
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(f"invalid CIDR {value!r}") from exc
            want = 4 if info.field_name == "cidr" else 6
            if net.version != want:
                raise ValueError(f"{value!r} is not an IPv{want} CIDR")
        return value

    @model_validator(mode="after")
    def _named(self) -> VipNetwork:
        if not (self.networkName or self.networkUUID):
            raise ValueError("a VIP network needs networkName or networkUUID")
        return self


class NamespaceSelector(_Section):
    labelKey: str = ""
    labelValue: str = ""


class AkoValues(_Section):
    clusterName: str = "my-cluster"
    # Only Services in namespaces with this label are handled (AKO's namespaceSelector).
    namespaceSelector: NamespaceSelector = Field(default_factory=NamespaceSelector)
    logLevel: str = "INFO"
    fullSyncFrequency: int = 1800
    ipFamily: str = "V4"
    # AKO's switch: false drops Normal Events (Synced, MemberUp, ...); Warnings are always
    # recorded. A quarter of health's API calls on a start are Normal Events (docs/health.md, "Events").
    enableEvents: bool = True

    @field_validator("clusterName")
    @classmethod
    def _cluster(cls, value: str) -> str:
        return cluster_name(value)


class ControllerValues(_Section):
    controllerHost: str = ""
    controllerVersion: str = "22.1.3"
    cloudName: str = "Default-Cloud"
    tenantName: str = "admin"
    serviceEngineGroupName: str = "Default-Group"
    vrfName: str = "global"
    verifyTLS: bool = True
    caFile: str = ""


class NetworkValues(_Section):
    vipNetworkList: list[VipNetwork] = Field(default_factory=list)
    enableRHI: bool = False
    bgpPeerLabels: list[str] = Field(default_factory=list)


class L4Values(_Section):
    defaultLBController: bool = True
    loadBalancerClass: str = AKO_LB_CLASS
    autoFQDN: str = "disabled"
    defaultDomain: str = ""


class L7Values(_Section):
    defaultIngController: bool = True
    shardVSSize: str = "LARGE"


class SyncerCluster(_Section):
    """One cluster a syncer pool serves, and its Avi tenant (AKO's ``ControllerSettings.tenantName``)."""

    name: str
    tenantName: str = ""  # empty: ControllerSettings.tenantName
    # The cluster's sealing key (docs/tls-secrets.md); empty: albus.sealingKeyFile if this is
    # AKOSettings.clusterName, else none (a key is never shared between clusters by default).
    sealingKeyFile: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return cluster_name(value)


class SyncerSettings(_Section):
    concurrency: int = Field(default=8, ge=1, le=64)
    callsPerSecond: float = Field(default=30.0, gt=0)
    retryMaxSeconds: float = Field(default=30.0, gt=0)
    # A syncer pool serving several clusters; empty: only AKOSettings.clusterName.
    clusters: list[SyncerCluster] = Field(default_factory=list)


class TracingSettings(_Section):
    """OpenTelemetry tracing (docs/tracing.md); the OTEL_* environment variables win."""

    enabled: bool = True
    # Spans to the bounded store on the bus, for `albus trace` with no backend.
    localStore: bool = True
    otlpEndpoint: str = ""
    otlpProtocol: Literal["grpc", "http/protobuf"] = "http/protobuf"


class ProbeSettings(_Section):
    """Each service's HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz`` (docs/metrics.md).

    A port per service, since the four may share a host; 0 takes a free port
    (logged, and written to ``--metrics-port-file``).
    """

    address: str = "127.0.0.1"
    watcher: int = Field(default=0, ge=0, le=65535)
    translator: int = Field(default=0, ge=0, le=65535)
    syncer: int = Field(default=0, ge=0, le=65535)
    health: int = Field(default=0, ge=0, le=65535)

    def port(self, service: str) -> int:
        return int(getattr(self, service, 0))


class WebhookService(_Section):
    """The Service in front of health's webhook, as the API server is told to call it (in a cluster)."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)

    @property
    def host(self) -> str:
        """The name the API server checks the serving certificate against."""
        return f"{self.name}.{self.namespace}.svc"


class ReadinessGateSettings(_Section):
    """Health's mutating admission webhook for the pod readiness gate (docs/health.md#readiness-gate).

    ``port`` 0 leaves it off. It serves HTTPS on ``address`` with a
    certificate from a CA it makes itself in ``certDir`` (a temporary
    directory when empty) and registers its MutatingWebhookConfiguration
    (failure policy Ignore) at start: by ``service`` when set (the chart),
    else by the URL of ``address`` and ``port`` (``albus up``, tests).
    """

    port: int = Field(default=0, ge=0, le=65535)
    address: str = "127.0.0.1"
    certDir: str = ""
    service: WebhookService | None = None


class AlbusSettings(_Section):
    natsUrl: str = ""
    # Copies of every stream and KV bucket albus creates: 3 on a 3-node NATS
    # cluster survives the loss of any one node (docs/multicluster.md).
    natsReplicas: int = 1
    kubeconfig: str = ""
    # Where albus itself runs: the watcher's leader-election Lease lives here.
    # Empty means $POD_NAMESPACE, else ``avi-system`` (AKO's namespace).
    namespace: str = ""
    syncer: SyncerSettings = Field(default_factory=SyncerSettings)
    healthPollSeconds: float = Field(default=5.0, gt=0)
    # Health's complete runtime sweeps average at most this many controller reads a second: at 10,000
    # Services a sweep is ~150 inventory pages, every 5 s that alone would be a real controller's whole
    # per-client limit (docs/health.md, "Runtime ingestion").
    healthSweepCallsPerSecond: float = Field(default=2.0, gt=0)
    # Objects whose status health brings in line at once (each a read, a write, an Event or two): one at a
    # time, a start on 10,000 Services waited ~70 ms of round trips per Service (docs/health.md).
    healthStatusConcurrency: int = Field(default=8, ge=1, le=64)
    readinessGate: ReadinessGateSettings = Field(default_factory=ReadinessGateSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    logFormat: Literal["text", "json"] = "text"
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    # The file holding this cluster's key for sealing TLS private keys on the bus
    # (docs/tls-secrets.md); the watcher and the syncer read it, nothing else does.
    sealingKeyFile: str = ""

    @field_validator("natsReplicas")
    @classmethod
    def _replicas(cls, value: int) -> int:
        # JetStream allows 1-5; an even count tolerates no more lost nodes than the odd one below it.
        if value not in (1, 3, 5):
            raise ValueError("must be 1, 3 or 5 (copies of each stream; at most the NATS cluster's size)")
        return value


class Credentials(_Section):
    username: str = ""
    password: str = ""
    authtoken: str = ""


class Config(_Section):
    AKOSettings: AkoValues = Field(default_factory=AkoValues)
    ControllerSettings: ControllerValues = Field(default_factory=ControllerValues)
    NetworkSettings: NetworkValues = Field(default_factory=NetworkValues)
    L4Settings: L4Values = Field(default_factory=L4Values)
    L7Settings: L7Values = Field(default_factory=L7Values)
    albus: AlbusSettings = Field(default_factory=AlbusSettings)
    # Never read from the values file in production (a Secret, as AKO's avi-secret);
    # accepted here so the local demo can keep one file.
    credentials: Credentials = Field(default_factory=Credentials)

    @property
    def cluster(self) -> str:
        return self.AKOSettings.clusterName

    @property
    def tenant(self) -> str:
        return self.ControllerSettings.tenantName

    @property
    def created_by(self) -> str:
        """The owner stamp on every controller object (AKO's ``ako-<cluster>``)."""
        return f"ako-{self.cluster}"

    @property
    def name_prefix(self) -> str:
        return f"{self.cluster}--"


_ENV: dict[str, tuple[str, str]] = {
    "CLUSTER_NAME": ("AKOSettings", "clusterName"),
    "CTRL_IPADDRESS": ("ControllerSettings", "controllerHost"),
    "CTRL_VERSION": ("ControllerSettings", "controllerVersion"),
    "CTRL_CA_FILE": ("ControllerSettings", "caFile"),
    "CLOUD_NAME": ("ControllerSettings", "cloudName"),
    "SEG_NAME": ("ControllerSettings", "serviceEngineGroupName"),
    "TENANT_NAME": ("ControllerSettings", "tenantName"),
    "CTRL_USERNAME": ("credentials", "username"),
    "CTRL_PASSWORD": ("credentials", "password"),
    "CTRL_AUTHTOKEN": ("credentials", "authtoken"),
    "NATS_URL": ("albus", "natsUrl"),
    "NATS_REPLICAS": ("albus", "natsReplicas"),
    "KUBECONFIG": ("albus", "kubeconfig"),
    "POD_NAMESPACE": ("albus", "namespace"),
    "ALBUS_LOG_FORMAT": ("albus", "logFormat"),
    "ALBUS_SEALING_KEY_FILE": ("albus", "sealingKeyFile"),
}


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top)"
        lines.append(f"{where}: {e['msg']}")
    return "; ".join(lines)


def parse_config(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid configuration: {_describe(err)}") from err


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Config:
    """File (``path`` or ``$ALBUS_CONFIG``), then environment over it."""
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    path = path or env.get("ALBUS_CONFIG") or None
    if path:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping")
        data = loaded
    for var, (section, field) in _ENV.items():
        if env.get(var):
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"{section}: must be a mapping")
            data[section][field] = env[var]
    return parse_config(data)


def dump_config(cfg: Config) -> dict[str, Any]:
    return cfg.model_dump(mode="json")
