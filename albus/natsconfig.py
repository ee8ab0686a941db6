"""``albus nats-config``: a nats-server configuration with one identity per cluster.

Every cluster's watcher, translator and health connect as that cluster's
user, which may publish only on that cluster's subjects; the syncer pool
connects as one user that reads every cluster's trees and writes outcomes
and its own KV buckets. NATS enforces it: a publish outside the allowed
subjects is refused by the server, whatever the client's configuration says.

All users share the global account, because every cluster's messages live
in the same streams (``services/common/subjects.py``). Reads are not
confined (see docs/multicluster.md): JetStream's ephemeral consumer API
carries the filter subject in the request body, where permissions cannot
see it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from services.common import subjects
from services.common.config import CLUSTER_NAME_RE

SYNCER_USER = "albus-syncer"
JS_API = "$JS.API"
STREAMS = sorted(subjects.STREAMS)


def cluster_user(cluster: str) -> str:
    return f"albus-cluster-{cluster}"


def _consumer_api(streams: list[str]) -> list[str]:
    """What following a stream needs: look it up, create/inspect/delete one's consumers, flow control."""
    out = [f"{JS_API}.INFO", f"{JS_API}.STREAM.NAMES"]
    for s in streams:
        out += [
            f"{JS_API}.STREAM.INFO.{s}",
            f"{JS_API}.CONSUMER.CREATE.{s}",
            f"{JS_API}.CONSUMER.CREATE.{s}.>",
            f"{JS_API}.CONSUMER.INFO.{s}.*",
            f"{JS_API}.CONSUMER.DELETE.{s}.*",
            f"$JS.FC.{s}.>",
        ]
    return out


def cluster_permissions(cluster: str) -> dict[str, Any]:
    """Watcher, translator and health of one cluster: its own subjects, no stream administration."""
    c = subjects.esc(cluster)
    publish = [
        f"k8s.{c}.>",  # watcher
        f"avi.*.{c}.>",  # translator: trees
        f"avisync.{c}",  # translator: TreesSynced
        f"report.{c}.>",  # translator: source reports
        f"trace.*.{c}.>",  # every service: its spans and the by-object index
        f"ctl.{c}.>",  # `albus resync` with this cluster's credentials, and its services' answers
        *_consumer_api(STREAMS),
    ]
    # Replies (publish acks, API answers, pushed consumer messages) come to the inbox.
    return {"publish": {"allow": publish}, "subscribe": {"allow": ["_INBOX.>"]}}


def syncer_permissions() -> dict[str, Any]:
    """The syncer pool: every cluster's trees, outcomes, its KV buckets, stream and bucket administration."""
    publish = [
        "outcome.>",
        "trace.>",  # spans of every cluster's applies
        "ctl.*.resync",  # `albus resync` with the pool's credentials
        "ctl.*.done.syncer.>",  # the replicas' answers to it
        f"{JS_API}.>",  # creates the streams and KV buckets, reads last messages, runs consumers
        "$KV.>",  # membership, leases and the call budget
        "$JS.FC.>",
        "$JS.ACK.>",
    ]
    return {"publish": {"allow": publish}, "subscribe": {"allow": ["_INBOX.>", "$KV.>"]}}


@dataclass(frozen=True)
class Identity:
    user: str
    password: str
    permissions: dict[str, Any]

    def url(self, base: str) -> str:
        """``base`` (``nats://host:port``, comma-separated for a cluster) with these credentials in each."""
        out = []
        for one in base.split(","):
            parts = urlsplit(one.strip())
            netloc = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@{parts.hostname}"
            if parts.port:
                netloc += f":{parts.port}"
            out.append(urlunsplit((parts.scheme or "nats", netloc, parts.path, "", "")))
        return ",".join(out)


def identities(clusters: list[str], passwords: dict[str, str] | None = None) -> list[Identity]:
    """The syncer pool's identity, then one per cluster; passwords reused from ``passwords`` by user."""
    known = dict(passwords or {})
    for c in clusters:
        if not CLUSTER_NAME_RE.match(c):
            raise ValueError(f"invalid cluster name {c!r}: 1-32 letters, digits, '-' or '_'")
    if len(set(clusters)) != len(clusters):
        raise ValueError("a cluster is named twice")
    wanted = [(SYNCER_USER, syncer_permissions())] + [(cluster_user(c), cluster_permissions(c)) for c in clusters]
    return [Identity(u, known.get(u) or secrets.token_urlsafe(24), p) for u, p in wanted]


@dataclass(frozen=True)
class Clustering:
    """The ``cluster`` block of one node of a NATS cluster: its route listener and the other nodes' routes.

    Every node of a cluster gets the same users (``identities``): a client may
    land on any node, and each node checks its credentials itself.
    """

    name: str  # the cluster's name, the same on every node
    server_name: str  # this node's, unique: JetStream's Raft groups know peers by it
    listen: str  # host:port of this node's route listener
    routes: tuple[str, ...]  # nats-route://host:port of the other nodes
    # Clients get every node's URL, with credentials, in NATS_URL. A node that
    # advertised the others' addresses would have clients add them to their
    # pool without credentials and fail their authorization on reconnect.
    no_advertise: bool = True

    def block(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen, "routes": list(self.routes),
                "no_advertise": self.no_advertise}


def config(ids: list[Identity], *, listen: str = "", store_dir: str = "", http: str = "",
           clustering: Clustering | None = None) -> dict[str, Any]:
    """The nats-server configuration as a mapping (no ``authorization`` without identities)."""
    conf: dict[str, Any] = {}
    if clustering:
        conf["server_name"] = clustering.server_name
    if listen:
        conf["listen"] = listen
    if http:
        conf["http"] = http  # monitoring: /healthz, /jsz
    conf["jetstream"] = {"store_dir": store_dir} if store_dir else {}
    if clustering:
        conf["cluster"] = clustering.block()
    if ids:
        conf["authorization"] = {
            "users": [{"user": i.user, "password": i.password, "permissions": i.permissions} for i in ids]
        }
    return conf


def render(ids: list[Identity], *, listen: str = "", store_dir: str = "", http: str = "",
           clustering: Clustering | None = None) -> str:
    """The nats-server configuration (its format accepts JSON, so that is what it is)."""
    conf = config(ids, listen=listen, store_dir=store_dir, http=http, clustering=clustering)
    header = "# Generated by `albus nats-config`: one user per cluster, one for the syncer pool.\n"
    return header + json.dumps(conf, indent=2) + "\n"


def _read_passwords(directory: Path) -> dict[str, str]:
    """Passwords from an earlier run (``<user>.password``), so regenerating keeps credentials."""
    if not directory.is_dir():
        return {}
    return {p.stem: p.read_text().strip() for p in directory.glob("*.password")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="albus nats-config", description=__doc__.split("\n\n")[0])
    p.add_argument("--cluster", action="append", required=True, help="a cluster name (repeat for each)")
    p.add_argument("--url", default="nats://127.0.0.1:4222", help="the URL services use, for the printed NATS_URLs")
    p.add_argument("--listen", default="", help="nats-server listen address (host:port)")
    p.add_argument("--store-dir", default="", help="JetStream store directory")
    p.add_argument("--http", default="", help="monitoring listen address (host:port): /healthz, /jsz")
    p.add_argument("--nats-cluster", default="", metavar="NAME",
                   help="this node is one of a NATS cluster of this name (with --server-name, --cluster-listen, --route)")
    p.add_argument("--server-name", default="", help="this node's unique name in the NATS cluster")
    p.add_argument("--cluster-listen", default="", help="this node's route listen address (host:port)")
    p.add_argument("--route", action="append", default=[], help="another node's route URL (repeat for each)")
    p.add_argument("-o", "--output", help="write the configuration here (default: stdout)")
    p.add_argument("--credentials-dir", help="keep <user>.password and <user>.url here; existing passwords are reused")
    args = p.parse_args(argv)
    cred_dir = Path(args.credentials_dir) if args.credentials_dir else None
    try:
        ids = identities(args.cluster, _read_passwords(cred_dir) if cred_dir else None)
    except ValueError as exc:
        print(f"albus nats-config: {exc}", file=sys.stderr)
        return 2
    clustering = None
    if args.nats_cluster:
        if not (args.server_name and args.cluster_listen and args.route):
            print("albus nats-config: --nats-cluster needs --server-name, --cluster-listen and --route",
                  file=sys.stderr)
            return 2
        clustering = Clustering(args.nats_cluster, args.server_name, args.cluster_listen, tuple(args.route))
    text = render(ids, listen=args.listen, store_dir=args.store_dir, http=args.http, clustering=clustering)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    if cred_dir:
        cred_dir.mkdir(parents=True, exist_ok=True)
        for i in ids:
            for suffix, value in (("password", i.password), ("url", i.url(args.url))):
                f = cred_dir / f"{i.user}.{suffix}"
                f.write_text(value + "\n")
                f.chmod(0o600)
        print(f"NATS_URL for each identity: {cred_dir}/<user>.url", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
