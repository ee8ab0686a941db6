"""The ``albus`` command: one entry point for the services, the local stack and the tools.

Each subcommand imports only what it runs, so ``albus translate`` starts fast
and a container running ``albus syncer`` loads no simulator code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

USAGE = """usage: albus <command> [options]

The local stack
  up            run everything locally (NATS, the simulator, a control plane, the four services)
  status        what `albus up` is running: kubeconfig, controller, NATS (--json for scripts)

One service (what a container runs)
  watcher | translator | syncer | health   [--config FILE]

Tools
  translate -f FILE [--cluster NAME] [--config FILE]   Avi objects the manifests produce, offline
  trace KIND/NAMESPACE/NAME [--json]   the timeline of the object's latest change (docs/tracing.md)
  sim           the Avi controller simulator
  controlplane  build or start the local kube-apiserver/etcd (see `albus controlplane --help`)
  nats-config --cluster NAME ...   a nats-server configuration with one identity per cluster
  resync [--cluster NAME ...] [--config FILE] [--timeout S]   rebuild every stream from the clusters and
                the controller (NATS data lost) and wait until converged (docs/disaster-recovery.md)
  sealing-key FILE   write a new key (mode 0600, never overwriting) for sealing a cluster's TLS private
                keys on the bus; give it to that cluster's watcher and syncers (docs/tls-secrets.md)
"""

SERVICES = {
    "watcher": "services.watcher.main",
    "translator": "services.translator.main",
    "syncer": "services.syncer.main",
    "health": "services.health.main",
}


def _run_module_main(module: str, argv: list[str]) -> int:
    mod = importlib.import_module(module)
    rc = mod.main(argv)
    return int(rc or 0)


def cmd_translate(argv: list[str]) -> int:
    from services.common.config import ConfigError, load_config, parse_config
    from services.translator.offline import translate_documents

    p = argparse.ArgumentParser(prog="albus translate",
                                description="Print the Avi objects that Kubernetes manifests produce, offline.")
    p.add_argument("-f", "--filename", action="append", required=True, help="manifest file (YAML/JSON), '-' for stdin")
    p.add_argument("--cluster", help="cluster name (AKOSettings.clusterName)")
    p.add_argument("--config", help="albus configuration file (AKO-style values)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.cluster:
            data = cfg.model_dump(mode="json")
            data["AKOSettings"]["clusterName"] = args.cluster
            cfg = parse_config(data)
    except ConfigError as err:
        print(f"albus translate: {err}", file=sys.stderr)
        return 2
    docs: list[dict[str, Any]] = []
    for name in args.filename:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "List":
                docs += [d for d in doc.get("items") or [] if isinstance(d, dict)]
            elif isinstance(doc, dict):
                docs.append(doc)
    objects, problems = translate_documents(docs, cfg)
    json.dump(objects, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    for prob in problems:
        print(f"{prob.severity.value}: {prob.source.key()}: {prob.reason}: {prob.message}", file=sys.stderr)
    return 0


def cmd_sealing_key(argv: list[str]) -> int:
    from services.common.sealing import write_key_file

    p = argparse.ArgumentParser(prog="albus sealing-key", description="Write a new sealing key file.")
    p.add_argument("file", help="where to write it (must not exist)")
    args = p.parse_args(argv)
    try:
        path = write_key_file(args.file)
    except OSError as exc:
        print(f"albus sealing-key: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote a sealing key to {path} (albus.sealingKeyFile)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd in SERVICES:
        return _run_module_main(SERVICES[cmd], rest)
    if cmd == "translate":
        return cmd_translate(rest)
    if cmd == "trace":
        return _run_module_main("albus.trace", rest)
    if cmd == "sim":
        return _run_module_main("albus.sim.cli", rest)
    if cmd == "controlplane":
        return _run_module_main("albus.controlplane.__main__", rest)
    if cmd == "nats-config":
        return _run_module_main("albus.natsconfig", rest)
    if cmd == "resync":
        return _run_module_main("albus.resync", rest)
    if cmd == "sealing-key":
        return cmd_sealing_key(rest)
    if cmd == "up":
        return _run_module_main("albus.up", rest)
    if cmd == "status":
        return _run_module_main("albus.up", ["--status", *rest])
    print(f"albus: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
