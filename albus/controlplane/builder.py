"""Build (or find) the control-plane binaries and the Gateway API CRDs.

Binaries are looked up, per name, in ``$ALBUS_CONTROLPLANE_BIN``, then
``$KUBEBUILDER_ASSETS``, then the cache
``${XDG_CACHE_HOME:-~/.cache}/albus/controlplane/<CACHE_KEY>/bin``. Only when
kube-apiserver or etcd is found nowhere are the three binaries built, from the
wrapper Go module in ``<repo>/controlplane`` with one ``go build`` so shared
packages compile once. Go keeps its module and build caches in their default
places, so a rebuild after a version bump reuses most of the work.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from albus.controlplane import versions

Log = Callable[[str], None]

GO_MODULE_DIR = Path(__file__).resolve().parents[2] / "controlplane"
# main packages built by the wrapper module -> binary name in the cache.
GO_PACKAGES: dict[str, str] = {
    "k8s.io/kubernetes/cmd/kube-apiserver": versions.KUBE_APISERVER,
    "k8s.io/kubernetes/cmd/kube-controller-manager": versions.KUBE_CONTROLLER_MANAGER,
    "go.etcd.io/etcd/server/v3": versions.ETCD,
}


class BuildError(RuntimeError):
    """The control plane could not be built or found."""


@dataclass(frozen=True)
class Assets:
    """Where the control-plane binaries and CRDs are.

    ``kube_controller_manager`` is None when the user supplied kube-apiserver
    and etcd (e.g. envtest's ``KUBEBUILDER_ASSETS``) without it; the control
    plane then runs without EndpointSlice/namespace/GC controllers.
    """

    kube_apiserver: Path
    etcd: Path
    kube_controller_manager: Path | None
    gateway_api_crds: Path  # holds standard/ and experimental/


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "albus" / "controlplane"


def cache_dir() -> Path:
    return cache_root() / versions.CACHE_KEY


def user_bin_dirs() -> list[Path]:
    dirs = []
    for var in ("ALBUS_CONTROLPLANE_BIN", "KUBEBUILDER_ASSETS"):
        value = os.environ.get(var)
        if value:
            dirs.append(Path(value))
    return dirs


def _find_binary(name: str, dirs: list[Path]) -> Path | None:
    for d in dirs:
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _gateway_dir() -> Path:
    return cache_dir() / f"gateway-api-{versions.GATEWAY_API_VERSION}"


def locate() -> Assets | None:
    """The assets if everything needed is already present; builds nothing."""
    dirs = [*user_bin_dirs(), cache_dir() / "bin"]
    apiserver = _find_binary(versions.KUBE_APISERVER, dirs)
    etcd = _find_binary(versions.ETCD, dirs)
    gateway = _gateway_dir()
    if apiserver is None or etcd is None or not (gateway / "standard").is_dir():
        return None
    return Assets(
        kube_apiserver=apiserver,
        etcd=etcd,
        kube_controller_manager=_find_binary(versions.KUBE_CONTROLLER_MANAGER, dirs),
        gateway_api_crds=gateway,
    )


def ensure(log: Log = _stderr_log) -> Assets:
    """Return the assets, building or fetching whatever is missing."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache_root() / ".lock"):
        user = user_bin_dirs()
        if _find_binary(versions.KUBE_APISERVER, user) and _find_binary(versions.ETCD, user):
            log(f"using kube-apiserver and etcd from {', '.join(map(str, user))}")
        elif _binaries_complete(cache / "bin"):
            log(f"control plane binaries cached in {cache / 'bin'}")
        else:
            _build_binaries(cache / "bin", log)
        if (_gateway_dir() / "standard").is_dir():
            log(f"Gateway API {versions.GATEWAY_API_VERSION} CRDs cached in {_gateway_dir()}")
        else:
            _fetch_gateway_crds(_gateway_dir(), log)
    assets = locate()
    if assets is None:  # pragma: no cover - only if the cache is removed under us
        raise BuildError("control plane assets vanished right after being prepared")
    return assets


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two `make` runs or a test session and a build must not write one cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _binaries_complete(bin_dir: Path) -> bool:
    return (bin_dir / ".complete").is_file() and all((bin_dir / n).is_file() for n in GO_PACKAGES.values())


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain (>= 1.24) is needed to build the control plane; install it, "
            "or point ALBUS_CONTROLPLANE_BIN at a directory holding kube-apiserver and etcd"
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries, no C toolchain needed; the module's go.sum is the pin,
    # so a missing entry must fail rather than be added silently.
    env.update({"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly", "GOWORK": "off"})
    return env


def check_go_mod(module_dir: Path = GO_MODULE_DIR) -> None:
    """Fail if controlplane/go.mod pins other versions than versions.py."""
    text = (module_dir / "go.mod").read_text()
    expected = {
        "k8s.io/kubernetes": versions.KUBERNETES_VERSION,
        "go.etcd.io/etcd/server/v3": versions.ETCD_VERSION,
    }
    staging = "v0." + versions.KUBERNETES_VERSION.removeprefix("v1.")
    for module, version in expected.items():
        if not re.search(rf"^\s*{re.escape(module)} {re.escape(version)}\s*$", text, re.M):
            raise BuildError(f"{module_dir / 'go.mod'} does not require {module} {version}")
    for found in re.findall(r"=> k8s\.io/\S+ (\S+)", text):
        if found != staging:
            raise BuildError(f"{module_dir / 'go.mod'}: staging module pinned to {found}, expected {staging}")


def _ldflags() -> str:
    # What Kubernetes' own build stamps, so /version and kubectl's skew check
    # see the real release instead of v0.0.0-master.
    major, minor = versions.KUBERNETES_VERSION.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [
            f"-X={pkg}.gitVersion={versions.KUBERNETES_VERSION}",
            f"-X={pkg}.gitMajor={major}",
            f"-X={pkg}.gitMinor={minor}",
            f"-X={pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _build_binaries(bin_dir: Path, log: Log) -> None:
    go = _go()
    check_go_mod()
    env = _go_env()
    started = time.monotonic()

    def elapsed() -> str:
        return f"[{time.monotonic() - started:6.0f}s]"

    log(
        f"building kube-apiserver, kube-controller-manager {versions.KUBERNETES_VERSION} and "
        f"etcd {versions.ETCD_VERSION} from the Go module proxy into {bin_dir}"
    )
    log(f"{elapsed()} downloading modules (go mod download)")
    _run([go, "mod", "download"], GO_MODULE_DIR, env)
    packages = list(GO_PACKAGES)
    listed = _run([go, "list", "-deps", *packages], GO_MODULE_DIR, env)
    total = len(listed.split())
    log(f"{elapsed()} compiling {total} packages (a cold build takes about 8 minutes on 2 cores)")

    staging = Path(tempfile.mkdtemp(prefix="bin.", dir=bin_dir.parent))
    log_path = bin_dir.parent / "build.log"
    cmd = [go, "build", "-v", "-trimpath", f"-ldflags={_ldflags()}", "-o", f"{staging}/", *packages]
    built = 0
    last_report = time.monotonic()
    with log_path.open("w") as build_log:
        build_log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd, cwd=GO_MODULE_DIR, env=env, stdout=build_log, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        # `go build -v` names each package as it compiles it; that is the
        # progress signal (already-cached packages are not named).
        for line in proc.stderr:
            build_log.write(line)
            if re.match(r"^[\w.\-]+(/[\w.\-~]+)*$", line.strip()):
                built += 1
            now = time.monotonic()
            if now - last_report >= 15:
                last_report = now
                log(f"{elapsed()} compiled {built}/{total} packages ({line.strip()[:70]})")
        rc = proc.wait()
    if rc != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(log_path.read_text().splitlines()[-30:])
        raise BuildError(f"go build failed (exit {rc}); full log {log_path}:\n{tail}")
    # go names a /vN module's main package after its parent directory.
    (staging / "server").rename(staging / versions.ETCD)
    (staging / ".complete").write_text(versions.CACHE_KEY + "\n")
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    staging.rename(bin_dir)
    log(f"{elapsed()} built {', '.join(sorted(GO_PACKAGES.values()))} in {bin_dir} (log {log_path})")


def _fetch_gateway_crds(dest: Path, log: Log) -> None:
    go = _go()
    module = f"sigs.k8s.io/gateway-api@{versions.GATEWAY_API_VERSION}"
    log(f"fetching Gateway API CRDs ({module}) from the Go module proxy")
    env = _go_env()
    env["GOFLAGS"] = "-mod=mod"
    # Outside any module, so the wrapper's module graph is not involved.
    with tempfile.TemporaryDirectory() as scratch:
        info = json.loads(_run([go, "mod", "download", "-json", module], Path(scratch), env))
    if info.get("Sum") != versions.GATEWAY_API_MODULE_SUM:
        raise BuildError(f"{module}: module hash {info.get('Sum')} != pinned {versions.GATEWAY_API_MODULE_SUM}")
    source = Path(info["Dir"]) / "config" / "crd"
    tmp = Path(tempfile.mkdtemp(prefix="gateway.", dir=dest.parent))
    for channel in ("standard", "experimental"):
        (tmp / channel).mkdir()
        for crd in sorted((source / channel).glob("*.yaml")):
            if crd.name != "kustomization.yaml":
                shutil.copyfile(crd, tmp / channel / crd.name)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    log(f"Gateway API {versions.GATEWAY_API_VERSION} CRDs in {dest}")


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} (in {cwd}) failed with exit {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout
