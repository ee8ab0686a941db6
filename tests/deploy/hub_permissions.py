"""The hub chart's NATS permissions, generated from ``albus.natsconfig`` (the one source of them).

``python -m tests.deploy.hub_permissions`` rewrites
``deploy/charts/albus-hub/files/permissions.json``; ``test_charts.py`` fails
while the file and natsconfig disagree. ``__CLUSTER__`` stands for a
cluster's name (the chart substitutes it per cluster).

One change of spelling, not of meaning: nats-server (v2.15.1, measured in
tests/deploy/test_leaf_nodes.py) refuses what a *leaf node* publishes under
an allow pattern with ``*`` before its last token (``avi.*.east.>`` let
nothing through, ``avi.3.east.>`` did), while a client connection honours
it. So each such pattern is spelt out over the values its ``*`` stands for:
the 64 partitions of ``avi.<p>.<cluster>.>``, the two kinds of
``trace.<kind>.<cluster>.>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from albus import natsconfig
from services.common import subjects

PLACEHOLDER = "__CLUSTER__"
PATH = Path(__file__).resolve().parents[2] / "deploy" / "charts" / "albus-hub" / "files" / "permissions.json"
# What the inner ``*`` of a cluster's patterns stands for.
INNER_WILDCARDS = {
    "avi": [str(p) for p in range(subjects.PARTITIONS)],
    "trace": ["span", "obj"],
}


def leaf_safe(allow: list[str]) -> list[str]:
    """``allow`` with every ``<prefix>.*.<rest>`` spelt out over INNER_WILDCARDS[prefix]."""
    out: list[str] = []
    for pattern in allow:
        head, _, rest = pattern.partition(".*.")
        if rest and head in INNER_WILDCARDS:
            out += [f"{head}.{v}.{rest}" for v in INNER_WILDCARDS[head]]
        else:
            out.append(pattern)
    return out


def generated() -> str:
    cluster = natsconfig.cluster_permissions(PLACEHOLDER)
    cluster["publish"]["allow"] = leaf_safe(cluster["publish"]["allow"])
    perms = {"syncer": natsconfig.syncer_permissions(), "cluster": cluster}
    return json.dumps(perms, indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(generated())
    print(f"wrote {PATH}")
