"""What the translator remembers of a tree on the bus: enough to compare, delete and carry it on.

Whole trees of 10,000 Services took about 170 MB of the translator's memory
(pydantic models holding every object's body, kept for as long as the
process). All the engine reads of a published tree later is its identity
and checksum (publish only what changed), its sources (its deletion names
them), the VIP it carried (a re-translation keeps its ``vip_id``,
vip_moves.py) and its certificates (one whose Secret went bad is kept from
the tree on the bus); so only those are kept.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from services.common.contracts import AviObject, ObjRef, VsTree
from services.translator.vip_moves import vip_of

# Objects a later translation may take back from the tree on the bus (engine.Engine._previous_object).
KEPT_TYPES = frozenset({"sslkeyandcertificate"})


@dataclass(frozen=True, slots=True)
class Published:
    cluster: str
    tenant: str
    vs_name: str
    checksum: str
    sources: tuple[ObjRef, ...]
    vip: dict[str, Any] | None  # the vsvip's first VIP as published
    kept: tuple[AviObject, ...]  # its objects of KEPT_TYPES

    @classmethod
    def of(cls, tree: VsTree) -> Published:
        return cls(cluster=sys.intern(tree.cluster), tenant=sys.intern(tree.tenant), vs_name=tree.vs_name,
                   checksum=tree.checksum, sources=tree.sources, vip=vip_of(tree),
                   kept=tuple(o for o in tree.objects if o.type in KEPT_TYPES))

    def object(self, obj_type: str, name: str) -> AviObject | None:
        return next((o for o in self.kept if (o.type, o.name) == (obj_type, name)), None)

    def deletion(self) -> VsTree:
        """The tree that asks the syncer to remove everything this one owned."""
        return VsTree.checksummed(cluster=self.cluster, tenant=self.tenant, vs_name=self.vs_name, deleted=True,
                                  sources=self.sources)
