"""A VIP network change re-allocates the VIP: the vsvip gets a new ``vip_id`` for the new network.

The controller refuses to move an allocated VIP to another network ("please
recreate the VIP"), but takes a vsvip whose old VIP is replaced by one with
another ``vip_id``: it releases the old address and allocates a new one. So
the translator keeps the ``vip_id`` of the tree on the bus while the network
stays, and moves to the next id when it changes (an AviInfraSetting's or
the cluster's VIP network edited). The tree on the bus is the memory: it
survives restarts.
"""

from __future__ import annotations

from typing import Any

from services.common.contracts import AviObject, VsTree


def vip_of(tree: VsTree) -> dict[str, Any] | None:
    """The first VIP of the tree's vsvip (a copy), if it has one."""
    for o in tree.objects:
        if o.type == "vsvip":
            vips = o.body.get("vip") or []
            return dict(vips[0]) if vips else None
    return None


def _network(vip: dict[str, Any] | None) -> str:
    return str(((vip or {}).get("ipam_network_subnet") or {}).get("network_ref") or "")


def carry_vip_id(new: VsTree, had: dict[str, Any] | None) -> tuple[VsTree, str]:
    """``new`` with the vip_id it must have given ``had``, the VIP of the tree on the bus; and a message
    when the VIP is re-allocated."""
    want = vip_of(new)
    if want is None or had is None:
        return new, ""
    moved = _network(want) != _network(had) and bool(want.get("auto_allocate_ip"))
    old_id = str(had.get("vip_id", "0"))
    vip_id = str(int(old_id) + 1 if old_id.isdigit() else 1) if moved else old_id
    message = ""
    if moved:
        message = (f"VIP network changed from {_network(had).rsplit('=', 1)[-1]} to "
                   f"{_network(want).rsplit('=', 1)[-1]}: the VIP is re-allocated and its address changes")
    if vip_id == want.get("vip_id"):
        return new, message
    objects = tuple(
        AviObject(type=o.type, name=o.name, body={**o.body, "vip": [{**want, "vip_id": vip_id}]})
        if o.type == "vsvip" else o
        for o in new.objects
    )
    return VsTree.checksummed(cluster=new.cluster, tenant=new.tenant, vs_name=new.vs_name, deleted=new.deleted,
                              objects=objects, sources=new.sources), message
