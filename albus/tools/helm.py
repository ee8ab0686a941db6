"""Build (or find) ``helm`` for the deploy tests: ``python -m albus.tools.helm [build|path]``.

helm is built from the Go module proxy (``helm.sh/helm/v3`` at
:data:`HELM_VERSION`, pinned by the wrapper module ``albus/tools/gohelm``
and its go.sum) into the control plane's cache,
``${XDG_CACHE_HOME:-~/.cache}/albus/controlplane/helm-<version>/helm``, once;
later calls find it there. ``$ALBUS_HELM`` names a helm binary to use instead.
The build is CPU heavy (about 3 minutes cold on 2 cores), so it runs at a
lower priority (``nice``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from albus.controlplane import builder

HELM_VERSION = "v3.19.5"  # uses the k8s.io v0.34 libraries, the test control plane's minor
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
GO_MODULE_DIR = Path(__file__).resolve().parent / "gohelm"


def cache_path() -> Path:
    return builder.cache_root() / f"helm-{HELM_VERSION}" / "helm"


def locate() -> Path | None:
    """The helm binary if present (``$ALBUS_HELM``, else the cache); builds nothing."""
    user = os.environ.get("ALBUS_HELM")
    if user:
        return Path(user) if os.access(user, os.X_OK) else None
    path = cache_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def check_go_mod(module_dir: Path = GO_MODULE_DIR) -> None:
    text = (module_dir / "go.mod").read_text()
    if not re.search(rf"^require helm\.sh/helm/v3 {re.escape(HELM_VERSION)}\s*$", text, re.M):
        raise builder.BuildError(f"{module_dir / 'go.mod'} does not require helm.sh/helm/v3 {HELM_VERSION}")


def ensure(log: builder.Log = print) -> Path:
    """The helm binary, built into the cache when missing."""
    found = locate()
    if found is not None:
        return found
    dest = cache_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with builder._locked(builder.cache_root() / ".lock"):
        if locate() is not None:  # built by whoever held the lock
            return dest
        check_go_mod()
        env = builder._go_env()
        # The module's go.sum is the pin; -mod=mod only lets go record the
        # modules' own go.mod sums it reads while building.
        env["GOFLAGS"] = "-mod=mod"
        started = time.monotonic()
        log(f"building helm {HELM_VERSION} from the Go module proxy into {dest} (a few minutes, niced)")
        staging = Path(tempfile.mkdtemp(prefix="helm.", dir=dest.parent))
        ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
        nice = [shutil.which("nice") or "nice", "-n", "10"] if shutil.which("nice") else []
        cmd = [*nice, builder._go(), "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(staging / "helm"),
               HELM_PACKAGE]
        proc = subprocess.run(cmd, cwd=GO_MODULE_DIR, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise builder.BuildError(f"go build of helm failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        (staging / "helm").replace(dest)
        shutil.rmtree(staging, ignore_errors=True)
        log(f"built helm {HELM_VERSION} in {time.monotonic() - started:.0f}s: {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or ["build"]
    if args[0] == "path":
        found = locate()
        if found is None:
            print("error: helm not built; run `make helm`", file=sys.stderr)
            return 1
        print(found)
        return 0
    if args[0] != "build":
        print("usage: python -m albus.tools.helm [build|path]", file=sys.stderr)
        return 2
    try:
        path = ensure(lambda msg: print(f">> {msg}", flush=True))
    except builder.BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f">> helm {HELM_VERSION}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
