"""Where a host lives: one of N shared parent VSes per AviInfraSetting, or its own VS (AKO's sharding).

N comes from the shard size (AKO's ``ShardSizeMap``: LARGE 8, MEDIUM 4,
SMALL 1, DEDICATED 0 = a VS per host). The shard is FNV-1a (32-bit) of the
host name masked by N-1, as AKO computes it, so a host's place depends on its
name alone: never on which objects arrived first, and adding a host moves no
other host. The infrastructure's name is part of the parent's name only for
an AviInfraSetting (``<cluster>--Shared-L7-[<infra>-]<n>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.translator import naming

SHARD_SIZES = {"LARGE": 8, "MEDIUM": 4, "SMALL": 1, "DEDICATED": 0}
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(text: str) -> int:
    h = _FNV_OFFSET
    for b in text.encode():
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


@dataclass(frozen=True)
class Placement:
    vs_name: str
    dedicated: bool


def place(cluster: str, infra: str, shard_size: str, host: str) -> Placement | None:
    """The VS of ``host``, or None for a shard size AKO does not know."""
    n = SHARD_SIZES.get(shard_size.upper())
    if n is None:
        return None
    if n == 0:
        return Placement(naming.ingress_dedicated_vs(cluster, infra, host), True)
    return Placement(naming.ingress_shard_vs(cluster, infra, fnv1a_32(host) & (n - 1)), False)
