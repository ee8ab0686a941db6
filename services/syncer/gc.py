"""Garbage collection: delete this cluster's controller objects that no tree claims.

Safe only from a complete view (docs/architecture.md, "Garbage collection,
safely"):

1. the translator's ``TreesSynced`` marker for the cluster exists and names
   the current incarnation of the AVI stream (a marker of a stream lost with
   NATS's data vouches for trees this one may not hold yet), and that stream
   is still the same after the trees were read;
2. the controller is listed *first* and the trees are read *after*, so
   anything on the controller at listing time came from a tree published
   before the read — if no tree claims it now, none will claim it from that
   listing.

Only objects stamped ``created_by: ako-<cluster>`` *and* marked
``clustername: <cluster>`` are candidates; an orphan virtualservice goes
before the objects it used. One replica collects for the whole cluster: the
holder of partition 0 (fenced by that lease), so two replicas never race on
the same orphans. What a deleted tree's VS used is its worker's to delete,
not GC's (:func:`_retiring_objects`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from services.common import subjects
from services.common.avi_session import ControllerError
from services.common.bus import Bus, Delivery
from services.common.contracts import TreesSynced, VsTreeClaims, decode
from services.common.incarnation import incarnation
from services.syncer.apply import ApplyFailed, Fence, TreeApplier
from services.syncer.avi_client import CallCounter
from services.syncer.cache import Key, Listing, TenantObjects, deletion_order, owned_by

log = logging.getLogger(__name__)

GC_PARTITION = 0


@dataclass
class GcReport:
    ran: bool
    reason: str = ""
    epoch: str = ""  # of the TreesSynced marker it ran from
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant, type, name)
    refused: list[tuple[str, str, str, str]] = field(default_factory=list)  # + reason
    left_to_trees: int = 0  # unclaimed objects of deleted trees, left to their workers
    calls: CallCounter = field(default_factory=CallCounter)


@dataclass
class Claims:
    """What the cluster's trees on the bus say: the objects live trees claim, and the deleted trees."""

    objects: set[tuple[str, str, str]] = field(default_factory=set)  # (tenant, type, name)
    # Deleted trees, (tenant, vs_name): their partitions' workers delete what their VSes used.
    retiring: set[tuple[str, str]] = field(default_factory=set)
    read_up_to: int = 0  # the newest stream sequence among the messages read


async def _claims(bus: Bus, cluster: str) -> Claims:
    """What the cluster's trees claim, each read as it comes and only for whom it names.

    Every tree decoded at once (10,000 pydantic trees, ~20 KB each), then every
    tree's bytes kept until the last came, was most of a restarted syncer's peak
    of memory; the bodies' validation most of GC's CPU.
    """
    out = Claims()

    async def take(d: Delivery) -> None:
        out.read_up_to = max(out.read_up_to, d.stream_seq)
        try:
            tree = decode(d.data, VsTreeClaims)
        except ValueError:
            log.warning("gc: undecodable tree on %s", d.subject)
            return
        if tree.deleted:
            out.retiring.add((tree.tenant, tree.vs_name))
        # A tree replaced while this read runs claims with both: GC collects less, never more.
        else:
            out.objects |= {(tree.tenant, o.type, o.name) for o in tree.objects}

    await bus.read_each(subjects.avi_cluster(cluster), take)
    return out


async def _named_tenants(bus: Bus, cluster: str) -> set[str]:
    """The tenants the cluster's trees are published under, from their subjects alone: reading every tree
    for them, as well as for the claims, made GC read and decode the whole stream twice."""
    named = (subjects.parse_avi_tree(s) for s in await bus.subjects(subjects.avi_cluster(cluster)))
    return {n[1] for n in named if n is not None}


async def trusted_marker(bus: Bus, cluster: str) -> tuple[TreesSynced | None, str]:
    """The cluster's ``TreesSynced`` if it vouches for the AVI stream as it is now, else None and why not."""
    d = await bus.last(subjects.trees_synced(cluster))
    if d is None:
        return None, "no TreesSynced marker yet"
    try:
        marker = decode(d.data, TreesSynced)
    except ValueError as exc:
        return None, f"unreadable TreesSynced marker: {exc}"
    current = await incarnation(bus, subjects.STREAM_AVI)
    if not current or marker.incarnation != current:
        return None, (f"TreesSynced names another incarnation of {subjects.STREAM_AVI} "
                      f"({marker.incarnation or 'unstamped'}, now {current or 'none'}): waiting for the translator")
    return marker, ""


async def collect_garbage(
    bus: Bus, applier: TreeApplier, cluster: str, tenants: set[str], fence: Fence
) -> GcReport:
    # What this process's tree workers delete from the listing on is not deleted a second time.
    with applier.deletions.watched() as gone:
        return await _collect_garbage(bus, applier, cluster, tenants, fence, gone)


async def _collect_garbage(
    bus: Bus, applier: TreeApplier, cluster: str, tenants: set[str], fence: Fence, gone: set[tuple[str, Key]]
) -> GcReport:
    report = GcReport(ran=False)
    marker, why = await trusted_marker(bus, cluster)
    if marker is None:
        report.reason = why
        return report
    cache = applier.cache
    # Which tenants to look at: configured, seen before, and any a tree's subject names now
    # (this only widens the listing; it decides nothing).
    tenants = set(tenants) | set(cache.tenants()) | await _named_tenants(bus, cluster)
    # The cluster's newest tree message before the listing: a complete read of the trees after it
    # holds that message (or a newer one). During a NATS failover a read once came back complete
    # by its own account yet older than that, without the trees of the Services made in the last
    # seconds, and their objects were collected (tests/e2e/test_nats_cluster.py).
    newest = await bus.last(subjects.avi_cluster(cluster))
    listed: dict[str, Listing] = {}
    for tenant in sorted(tenants):
        listed[tenant] = await cache.list_owned(tenant, report.calls)
    # Now, and only now, the trees that claim objects.
    claims = await _claims(bus, cluster)
    read_up_to = claims.read_up_to
    # Read from the stream the marker vouches for, not from one created since.
    if await incarnation(bus, subjects.STREAM_AVI) != marker.incarnation:
        report.reason = f"{subjects.STREAM_AVI} was replaced while the trees were read"
        return report
    if newest is not None and read_up_to < newest.stream_seq:
        report.reason = (f"the trees read (up to message {read_up_to}) are older than the newest one "
                         f"before the listing ({newest.stream_seq}): not a complete view")
        return report
    report.ran = True
    report.epoch = marker.epoch
    for tenant, listing in listed.items():
        await _collect(applier, tenant, listing, claims, fence, gone, report)
    return report


def _retiring_objects(tenant: str, listing: Listing, vs_names: set[str]) -> set[Key]:
    """What the deleted trees' VSes use in ``listing``: their workers delete it, as they would the VS's.

    GC deleting them too races with those workers (often in another replica): an
    object deleted twice, the second DELETE answered 404. Whatever a worker cannot
    delete it retries; what a deleted tree leaves behind GC collects once the tree's
    tombstone has expired from the stream.
    """
    if not vs_names:
        return set()
    view = TenantObjects(tenant)
    view.adopt(listing)
    out: set[Key] = set()
    for vs in vs_names:
        root = ("virtualservice", vs)
        if view.has(*root):
            out |= {root} | view.referenced_from(root) | view.vh_children(root)
    return out


async def _collect(applier: TreeApplier, tenant: str, listing: Listing, claims: Claims, fence: Fence,
                   gone: set[tuple[str, Key]], report: GcReport) -> None:
    left = _retiring_objects(tenant, listing, {vs for t, vs in claims.retiring if t == tenant})
    # Unpacked only if unclaimed: the listing holds every object of the cluster.
    unclaimed = {k: listing.get(k) for k in listing.packed if (tenant, *k) not in claims.objects}
    report.left_to_trees += len(left & unclaimed.keys())
    orphans = [k for k, obj in unclaimed.items() if k not in left and owned_by(obj, applier.cluster)]
    # VH children before their parent: the controller refuses a parent still in use.
    children = {k for k in orphans if k[0] == "virtualservice" and unclaimed[k].get("vh_parent_vs_ref")}
    for key in sorted(children) + [k for k in deletion_order(orphans) if k not in children]:
        if (tenant, key) in gone:
            continue
        try:
            if await applier.delete_owned(tenant, key, report.calls, fence, listed=unclaimed[key]):
                report.deleted.append((tenant, *key))
                log.info("gc: deleted %s %s in %s", key[0], key[1], tenant)
        except (ApplyFailed, ControllerError) as exc:
            # Typically "referred by" another object: the next run tries again.
            report.refused.append((tenant, *key, str(exc)))
            log.warning("gc: %s %s in %s not deleted: %s", key[0], key[1], tenant, exc)
