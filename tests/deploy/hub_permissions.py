"""The hub chart's NATS permissions, generated from ``albus.natsconfig`` (the one source of them).

``python -m tests.deploy.hub_permissions`` rewrites
``deploy/charts/albus-hub/files/permissions.json``; ``test_charts.py`` fails
while the file and natsconfig disagree. ``__CLUSTER__`` stands for a
cluster's name (the chart substitutes it per cluster).
"""

from __future__ import annotations

import json
from pathlib import Path

from albus import natsconfig

PLACEHOLDER = "__CLUSTER__"
PATH = Path(__file__).resolve().parents[2] / "deploy" / "charts" / "albus-hub" / "files" / "permissions.json"


def generated() -> str:
    perms = {"syncer": natsconfig.syncer_permissions(), "cluster": natsconfig.cluster_permissions(PLACEHOLDER)}
    return json.dumps(perms, indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(generated())
    print(f"wrote {PATH}")
