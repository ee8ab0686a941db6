"""``python -m albus.controlplane {build,env,up}``.

* ``build``: build/fetch kube-apiserver, kube-controller-manager, etcd and the
  Gateway API CRDs into the cache (a no-op when it is warm).
* ``env``: print ``export ALBUS_CONTROLPLANE_BIN=...`` for the cached binaries.
* ``up [WORKDIR]``: run a control plane until interrupted; prints its KUBECONFIG.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from albus.controlplane import builder, versions


def _log(msg: str) -> None:
    print(f">> {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m albus.controlplane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the control plane into the cache (no-op when warm)")
    sub.add_parser("env", help="print shell exports for the cached binaries")
    up = sub.add_parser("up", help="run a control plane until Ctrl-C")
    up.add_argument("workdir", nargs="?", type=Path, help="default: a temporary directory")
    up.add_argument("--experimental-routes", action="store_true", help="also install TCPRoute/UDPRoute/TLSRoute")
    args = parser.parse_args(argv)

    if args.command == "build":
        started = time.monotonic()
        try:
            assets = builder.ensure(_log)
        except builder.BuildError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        _log(
            f"control plane ready (Kubernetes {versions.KUBERNETES_VERSION}, etcd {versions.ETCD_VERSION}, "
            f"Gateway API {versions.GATEWAY_API_VERSION}) in {time.monotonic() - started:.0f}s"
        )
        _log(f"kube-apiserver: {assets.kube_apiserver}")
        _log(f"etcd: {assets.etcd}")
        _log(f"kube-controller-manager: {assets.kube_controller_manager or 'not available'}")
        return 0

    assets_or_none = builder.locate()
    if assets_or_none is None:
        print("error: control plane not built; run `make controlplane`", file=sys.stderr)
        return 1
    if args.command == "env":
        print(f"export ALBUS_CONTROLPLANE_BIN={assets_or_none.kube_apiserver.parent}")
        return 0

    from albus.controlplane.launcher import ControlPlane

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="albus-controlplane-"))
    cp = ControlPlane(workdir, assets=assets_or_none, gateway_experimental_routes=args.experimental_routes)
    started = time.monotonic()
    cp.start()
    _log(f"control plane up in {time.monotonic() - started:.1f}s at {cp.server} (logs in {workdir / 'logs'})")
    print(f"export KUBECONFIG={cp.admin_kubeconfig}", flush=True)
    # SIGTERM should stop the children as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
