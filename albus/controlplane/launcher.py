"""Run a real etcd + kube-apiserver (+ kube-controller-manager) on loopback.

Usage::

    from albus.controlplane.launcher import ControlPlane

    cp = ControlPlane("/tmp/cp")          # workdir: certs, kubeconfigs, etcd data, logs
    cp.start()                            # etcd, kube-apiserver, CRDs, kube-controller-manager
    os.environ["KUBECONFIG"] = str(cp.admin_kubeconfig)
    api = cp.kube_client()                # kubernetes.client.ApiClient, admin
    kc = cp.kubeconfig_for("watcher", Path("deploy/rbac/clusterrole.yaml"))
    cp.compact()                          # etcd compaction; older watches now get 410
    cp.stop()                             # also on exit, and if this process dies

Everything listens on 127.0.0.1 with fresh free ports. kube-apiserver runs
with TLS from a generated CA, client-certificate authentication, RBAC
authorization, a service-account issuer and signing key, and without its own
periodic etcd compaction (so a test decides when history goes away, through
:meth:`ControlPlane.compact`). The admin identity is a client cert in
``system:masters``. etcd's data lives in ``<workdir>/etcd`` and is kept across
stop/start of the same workdir.

kube-controller-manager runs only the ``endpointslice``, ``namespace``,
``garbagecollector`` and ``serviceaccount`` controllers. There are no kubelets
and no scheduler: a test makes a Pod "run" by creating it with
``spec.nodeName`` set to an existing Node object (the EndpointSlice
controller skips Pods whose Node does not exist) and patching its status
(``podIP``, ``phase: Running``, condition ``Ready``) like a kubelet would.

Children run in their own process groups and are stopped with SIGTERM then
SIGKILL. A small watchdog process kills them if this Python process dies
without calling :meth:`stop` (even by SIGKILL); a parent-death signal was not
used because it fires when the *thread* that started the child exits.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from albus.controlplane import builder, pki

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

REPO_CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds"
# Dual-stack, so Services may ask for IPv4 and IPv6 (ipFamilyPolicy RequireDualStack);
# the first range stays the default family.
SERVICE_CIDR = "10.0.0.0/24,fd00:10:96::/112"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FIELD_MANAGER = "albus-controlplane"
EXPERIMENTAL_ROUTES = ("tcproutes", "udproutes", "tlsroutes")
CONTROLLERS = ("endpointslice", "namespace", "garbagecollector", "serviceaccount")

_WATCHDOG = """
parent=$1; groups=$2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
for g in $(cat "$groups" 2>/dev/null); do kill -9 -"$g" 2>/dev/null; done
"""


class ControlPlaneError(RuntimeError):
    """A control-plane process failed to start or stopped unexpectedly."""


class HttpError(ControlPlaneError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000].decode(errors='replace')}")
        self.status = status
        self.body = body


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it is true; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class _Process:
    name: str
    cmd: list[str]
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ControlPlane:
    """One etcd + kube-apiserver (+ kube-controller-manager) in ``workdir``.

    Args:
        workdir: directory for certificates, kubeconfigs, etcd data and logs
            (``<workdir>/logs/<process>.log``). Created if missing.
        assets: binaries and Gateway API CRDs; default: found with
            :func:`albus.controlplane.builder.locate`, built if missing.
        controller_manager: run kube-controller-manager (if its binary exists).
        crds: CRD manifests to install at start; default: ``deploy/crds/*.yaml``.
        gateway_api: install the Gateway API standard-channel CRDs.
        gateway_experimental_routes: also install the experimental-channel
            TCPRoute, UDPRoute and TLSRoute CRDs.
        start_timeout: seconds each startup step may take.
    """

    def __init__(
        self,
        workdir: Path | str,
        *,
        assets: builder.Assets | None = None,
        controller_manager: bool = True,
        crds: Sequence[Path] | None = None,
        gateway_api: bool = True,
        gateway_experimental_routes: bool = False,
        start_timeout: float = 120.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self._assets = assets
        self._want_kcm = controller_manager
        self._crds = list(crds) if crds is not None else sorted(REPO_CRDS.glob("*.yaml"))
        self._gateway_api = gateway_api
        self._gateway_experimental = gateway_experimental_routes
        self.start_timeout = start_timeout
        self._procs: dict[str, _Process] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._ca: pki.CertKey | None = None
        self._ssl: ssl.SSLContext | None = None
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self.apiserver_port = 0

    # -- public API ---------------------------------------------------------

    @property
    def server(self) -> str:
        """The kube-apiserver URL, ``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        """Kubeconfig of user ``albus-admin`` in group ``system:masters``."""
        return self.workdir / "kubeconfigs" / "admin.yaml"

    @property
    def controller_manager_running(self) -> bool:
        proc = self._procs.get("kube-controller-manager")
        return proc is not None and proc.alive()

    @property
    def assets(self) -> builder.Assets:
        if self._assets is None:
            self._assets = builder.locate() or builder.ensure()
        return self._assets

    def start(self) -> None:
        """Start everything and return once the API is ready and CRDs are established."""
        if self._procs:
            raise ControlPlaneError("control plane already started")
        assets = self.assets
        for sub in ("pki", "kubeconfigs", "logs", "etcd"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            self._start_watchdog()
            self._write_pki()
            self.etcd_port, self.etcd_peer_port, self.apiserver_port = (
                _free_port(),
                _free_port(),
                _free_port(),
            )
            self._start_etcd()
            self._start_apiserver(assets)
            self._write_kubeconfig(self.admin_kubeconfig, "albus-admin", "admin")
            crds = list(self._crds)
            if self._gateway_api:
                crds += sorted((assets.gateway_api_crds / "standard").glob("*.yaml"))
            if self._gateway_experimental:
                crds += self.experimental_route_crds()
            # kube-controller-manager starts while CRDs install: it needs no
            # CRD, and this overlaps its start-up with theirs.
            if self._want_kcm and assets.kube_controller_manager is not None:
                self._start_controller_manager(assets.kube_controller_manager)
            self.install_crds(crds)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all processes (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc.popen)
        if self._watchdog is not None:
            _terminate(self._watchdog, grace=0)
            self._watchdog = None
        with contextlib.suppress(OSError):
            (self.workdir / "pgids").unlink()
        atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for a process that should talk to this control plane."""
        return {"KUBECONFIG": str(self.admin_kubeconfig)}

    def kube_client(self, kubeconfig: Path | None = None) -> ApiClient:
        """An official ``kubernetes`` ApiClient (admin unless ``kubeconfig`` is given)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig or self.admin_kubeconfig), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def kubeconfig_for(
        self,
        name: str,
        clusterrole: Path | str | Mapping[str, Any],
        *,
        role: str | None = None,
        service_account_namespace: str | None = None,
    ) -> Path:
        """A kubeconfig for identity ``name`` bound to the ClusterRole(s) in ``clusterrole``.

        ``clusterrole`` is a YAML file (every ``kind: ClusterRole`` document in
        it is applied and bound, or only the one named ``role``; other
        documents are ignored) or one ClusterRole as a mapping. The identity is a client-certificate user
        ``name`` (no groups besides ``system:authenticated``), or, with
        ``service_account_namespace``, the ServiceAccount ``name`` there
        (created if missing) using a TokenRequest token, as a pod would.
        Returns once the authorizer honours the binding.
        """
        roles = [r for r in _cluster_roles(clusterrole) if role is None or r["metadata"]["name"] == role]
        if not roles:
            raise ValueError(f"no ClusterRole {role or ''} in {clusterrole!r}")
        path = self.workdir / "kubeconfigs" / (
            f"{name}.yaml" if service_account_namespace is None else f"sa-{service_account_namespace}-{name}.yaml"
        )
        if service_account_namespace is None:
            subject = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}
            user, groups = name, ["system:authenticated"]
        else:
            ns = service_account_namespace
            subject = {"kind": "ServiceAccount", "name": name, "namespace": ns}
            user = f"system:serviceaccount:{ns}:{name}"
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        for cluster_role in roles:
            role_name = cluster_role["metadata"]["name"]
            self.apply(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role_name}", cluster_role)
            binding_name = f"albus-test:{path.stem}:{role_name}"
            self.apply(
                f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{urllib.parse.quote(binding_name)}",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": binding_name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
                    "subjects": [subject],
                },
            )
        if service_account_namespace is None:
            assert self._ca is not None
            cert = pki.new_client_cert(self._ca, name)
            self._write_kubeconfig(path, name, name, cert=cert)
        else:
            token = self._service_account_token(service_account_namespace, name)
            self._write_kubeconfig(path, user, name, token=token)
        for cluster_role in roles:
            self._wait_authorized(user, groups, cluster_role)
        return path

    def install_crds(self, paths: Iterable[Path]) -> list[str]:
        """Server-side apply CRD manifests; return their names once Established."""
        docs = [
            doc
            for path in paths
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") == "CustomResourceDefinition"
        ]
        names = [doc["metadata"]["name"] for doc in docs]
        # Concurrently: each apply costs kube-apiserver about a second of
        # schema (OpenAPI, CEL) processing, and it has two cores to spend.
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda doc: self.apply(
                        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}", doc
                    ),
                    docs,
                )
            )

        def established() -> bool:
            for name in names:
                crd = self.request_json("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = (crd.get("status") or {}).get("conditions") or []  # null until the first status write
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        wait_until(established, self.start_timeout, f"CRDs {names} to be Established")
        return names

    def experimental_route_crds(self) -> list[Path]:
        """The Gateway API experimental-channel TCPRoute, UDPRoute and TLSRoute CRD files.

        Install them later with ``cp.install_crds(cp.experimental_route_crds())``.
        """
        crds = self.assets.gateway_api_crds / "experimental"
        return [crds / f"gateway.networking.k8s.io_{r}.yaml" for r in EXPERIMENTAL_ROUTES]

    def etcd_revision(self) -> int:
        """etcd's current revision (= the newest Kubernetes resourceVersion)."""
        reply = self._etcd("/v3/kv/range", {"key": base64.b64encode(b"/albus-revision-probe").decode()})
        return int(reply["header"]["revision"])

    def compact(self, probe_paths: Sequence[str] = ("/api/v1/namespaces",)) -> int:
        """Compact etcd at its current revision R; return R.

        Afterwards every resourceVersion below R is history: a watch from one
        gets ``410 Gone``, as in a cluster whose history moved on. Compacting
        etcd alone would not do that: kube-apiserver serves watches from its
        watch cache, which keeps recent events whatever etcd compacted, and
        its own etcd watches are caught up, so they never trip over the
        compaction. So kube-apiserver is restarted too (as in a rolling
        update): its watch caches start again at R and the clients' watches
        are closed, so a client resuming from an older resourceVersion gets
        410 and must relist. Returns once a watch from R-1 on each of
        ``probe_paths`` (list URLs, e.g. ``/api/v1/namespaces/x/configmaps``)
        gets 410.
        """
        revision = self.etcd_revision()
        self._etcd("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        proc = self._procs.pop("kube-apiserver")
        _terminate(proc.popen)
        self._spawn("kube-apiserver", proc.cmd)
        self._wait_readyz()
        for path in probe_paths:
            wait_until(
                lambda p=path: self._watch_gets_410(p, revision - 1),  # type: ignore[misc]
                self.start_timeout,
                f"a watch from {revision - 1} to get 410 ({path})",
            )
        return revision

    # -- HTTP helpers (admin identity) ---------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 60.0,
        expect: Sequence[int] = (200, 201),
    ) -> tuple[int, bytes]:
        """One admin request to kube-apiserver; raise HttpError unless status is in ``expect``.

        Like client-go, it retries (for up to ``timeout`` s) when the server
        says it did not take the request: 429 (API priority and fairness under
        load), 503 (not ready), or a refused connection (restarting).
        """
        assert self._ssl is not None, "control plane not started"
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = content_type
        deadline = time.monotonic() + timeout
        while True:
            conn = http.client.HTTPSConnection("127.0.0.1", self.apiserver_port, context=self._ssl, timeout=timeout)
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                status, data, retry_after = resp.status, resp.read(), resp.getheader("Retry-After")
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                status, data, retry_after = 0, b"", None
            finally:
                conn.close()
            if status in expect:
                return status, data
            if status not in (0, 429, 503) or time.monotonic() > deadline:
                raise HttpError(method, path, status, data)
            time.sleep(1.0 if retry_after else 0.2)

    def request_json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        _, data = self.request(method, path, body, **kwargs)
        result: dict[str, Any] = json.loads(data)
        return result

    def apply(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` at its object URL ``path`` (forcing conflicts)."""
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        return self.request_json(
            "PATCH", f"{path}?{query}", obj, content_type="application/apply-patch+yaml"
        )

    # -- internals -------------------------------------------------------------

    def _start_watchdog(self) -> None:
        pgids = self.workdir / "pgids"
        pgids.write_text("")
        self._watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "albus-controlplane-watchdog", str(os.getpid()), str(pgids)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _spawn(self, name: str, cmd: list[str]) -> _Process:
        log = self.workdir / "logs" / f"{name}.log"
        with log.open("ab") as fh:
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        proc = _Process(name, cmd, popen, log)
        self._procs[name] = proc
        # The watchdog reads this file only once its parent is gone; it lists
        # live groups only, so a restarted process's old id is never killed.
        tmp = self.workdir / "pgids.tmp"
        tmp.write_text("".join(f"{p.popen.pid}\n" for p in self._procs.values()))
        tmp.replace(self.workdir / "pgids")
        return proc

    def _write_pki(self) -> None:
        d = self.workdir / "pki"
        self._ca = ca = pki.new_ca()
        (d / "ca.crt").write_bytes(ca.cert_pem)
        serving = pki.new_serving_cert(
            ca,
            [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ["127.0.0.1", "10.0.0.1"],
        )
        serving.write(d, "apiserver")
        admin = pki.new_client_cert(ca, "albus-admin", ["system:masters"])
        admin.write(d, "admin")
        # system:masters too: with one identity for all its controllers it
        # needs their combined rights; per-controller service accounts would
        # add token plumbing the tests do not exercise.
        kcm = pki.new_client_cert(ca, "system:kube-controller-manager", ["system:masters"])
        kcm.write(d, "kube-controller-manager")
        sa = pki.new_key()
        (d / "sa.key").write_bytes(pki.key_pem(sa))
        (d / "sa.pub").write_bytes(pki.public_key_pem(sa))
        ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
        ctx.load_cert_chain(str(d / "admin.crt"), str(d / "admin.key"))
        self._ssl = ctx

    def _start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.assets.etcd),
                "--name=albus",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=albus={peer}",
                # Throwaway data: durability is not worth the fsync latency.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait_etcd()

    def _wait_etcd(self) -> None:
        def healthy() -> bool:
            self._check_alive("etcd")
            try:
                return bool(self._etcd_get("/health").get("health") == "true")
            except (OSError, ValueError, http.client.HTTPException):
                return False

        wait_until(healthy, self.start_timeout, "etcd /health")

    def _start_apiserver(self, assets: builder.Assets) -> None:
        d = self.workdir / "pki"
        self._spawn(
            "kube-apiserver",
            [
                str(assets.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                # The tests and compact() decide when etcd history goes away.
                "--etcd-compaction-interval=0",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={d / 'apiserver.crt'}",
                f"--tls-private-key-file={d / 'apiserver.key'}",
                f"--client-ca-file={d / 'ca.crt'}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={d / 'sa.pub'}",
                f"--service-account-signing-key-file={d / 'sa.key'}",
                "--allow-privileged=true",
                # A loopback address is not a valid endpoint for the
                # `kubernetes` Service; publishing it would only log errors.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ],
        )
        self._wait_readyz()

    def _wait_readyz(self) -> None:
        def ready() -> bool:
            self._check_alive("kube-apiserver")
            try:
                status, _ = self.request("GET", "/readyz", timeout=5, expect=(200, 500, 503))
            except (OSError, http.client.HTTPException):
                return False
            return status == 200

        wait_until(ready, self.start_timeout, "kube-apiserver /readyz")

    def _start_controller_manager(self, binary: Path) -> None:
        kubeconfig = self.workdir / "kubeconfigs" / "kube-controller-manager.yaml"
        cert = pki.CertKey(*self._load_certkey("kube-controller-manager"))
        self._write_kubeconfig(kubeconfig, "system:kube-controller-manager", "kcm", cert=cert)
        self._spawn(
            "kube-controller-manager",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--leader-elect=false",
                # No serving endpoint: nothing scrapes it, and it would need
                # delegated authn/authz set up.
                "--secure-port=0",
                "--use-service-account-credentials=false",
            ],
        )

    def _load_certkey(self, stem: str) -> tuple[Any, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        d = self.workdir / "pki"
        cert = x509.load_pem_x509_certificate((d / f"{stem}.crt").read_bytes())
        key = serialization.load_pem_private_key((d / f"{stem}.key").read_bytes(), password=None)
        return cert, key

    def _check_alive(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None or not proc.alive():
            tail = proc.log_tail() if proc else ""
            code = proc.popen.returncode if proc else None
            raise ControlPlaneError(f"{name} exited (code {code}); log tail:\n{tail}")

    def _write_kubeconfig(
        self,
        path: Path,
        user: str,
        context: str,
        *,
        cert: pki.CertKey | None = None,
        token: str | None = None,
    ) -> None:
        if cert is None and token is None:
            cert = pki.CertKey(*self._load_certkey("admin"))
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        if token is not None:
            user_entry = {"token": token}
        else:
            assert cert is not None
            user_entry = {"client-certificate-data": b64(cert.cert_pem), "client-key-data": b64(cert.key_pem)}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "albus-test",
                    "cluster": {"server": self.server, "certificate-authority-data": b64(self.ca_file.read_bytes())},
                }
            ],
            "users": [{"name": user, "user": user_entry}],
            "contexts": [{"name": context, "context": {"cluster": "albus-test", "user": user}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _service_account_token(self, namespace: str, name: str) -> str:
        self.apply(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
        )
        reply = self.request_json(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
        )
        token: str = reply["status"]["token"]
        return token

    def _wait_authorized(self, user: str, groups: list[str], role: Mapping[str, Any]) -> None:
        # RBAC is evaluated from an informer cache: a binding just written may
        # not be visible yet. Ask the authorizer about the role's first rule.
        rule = next((r for r in role.get("rules") or [] if r.get("resources") and r.get("verbs")), None)
        if rule is None:
            return
        attrs: dict[str, str] = {
            "verb": rule["verbs"][0],
            "group": (rule.get("apiGroups") or [""])[0],
            "resource": rule["resources"][0],
        }
        if rule.get("resourceNames"):
            attrs["name"] = rule["resourceNames"][0]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attrs},
        }

        def allowed() -> bool:
            reply = self.request_json("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
            return bool(reply.get("status", {}).get("allowed"))

        wait_until(allowed, self.start_timeout, f"RBAC to allow {user} {attrs}")

    def _watch_gets_410(self, path: str, resource_version: int) -> bool:
        query = urllib.parse.urlencode({"watch": "1", "resourceVersion": str(resource_version), "timeoutSeconds": "1"})
        try:
            status, body = self.request("GET", f"{path}?{query}", timeout=10, expect=(200, 410, 429, 500, 503, 504))
        except (OSError, http.client.HTTPException):
            return False
        if status == 410:
            return True
        # A watch can also be accepted and then end with an ERROR event.
        for line in body.splitlines():
            event = json.loads(line)
            if event.get("type") == "ERROR" and event.get("object", {}).get("code") == 410:
                return True
        return False

    def _etcd(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=30)
        try:
            conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ControlPlaneError(f"etcd {path}: HTTP {resp.status}: {data[:500]!r}")
        result: dict[str, Any] = json.loads(data)
        return result

    def _etcd_get(self, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=5)
        try:
            conn.request("GET", path)
            data = conn.getresponse().read()
        finally:
            conn.close()
        result: dict[str, Any] = json.loads(data)
        return result


def _cluster_roles(source: Path | str | Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(source, Mapping):
        docs: list[Any] = [dict(source)]
    else:
        docs = list(yaml.safe_load_all(Path(source).read_text()))
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "ClusterRole"]


def _terminate(popen: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            popen.wait(timeout=grace if grace > 0 else 5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
