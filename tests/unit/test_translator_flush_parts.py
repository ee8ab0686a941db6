"""A flush taken in parts publishes what one whole flush would, and the engine keeps summaries, not trees."""

from __future__ import annotations

from typing import Any

from services.common.contracts import VsTree
from services.translator import ako_annotations as ann
from services.translator.engine import Changes, Engine
from services.translator.published import Published
from tests.unit.test_translate_l4 import CFG, _ko, slice_, svc


def shared(name: str, group: str | None) -> dict[str, Any]:
    doc = svc(name)
    if group:
        doc["metadata"]["annotations"] = {ann.SHARED_VIP: group}
    return doc


def start() -> Engine:
    e = Engine(CFG)
    for i in range(6):
        e.observe(_ko(svc(f"s{i}")))
        e.observe(_ko(slice_(f"s{i}", "shop", f"s{i}-1", [(f"10.0.0.{i + 1}", True)])))
    for name in ("x", "y", "z"):
        e.observe(_ko(shared(name, "g")))
    e.mark_all()
    return e


def change(e: Engine) -> None:
    """A Service gone, one new, one leaving its shared-VIP group while the others keep its tree."""
    e.observe(_ko(svc("s2"), deleted=True))
    e.observe(_ko(svc("s9")))
    e.observe(_ko(shared("x", None)))


def in_parts(e: Engine, limit: int) -> tuple[list[Changes], Changes]:
    parts = [e.flush(limit)]
    while e.flushing:
        parts.append(e.flush(limit))
    return parts, Changes(trees=[t for p in parts for t in p.trees], reports=[r for p in parts for r in p.reports])


def summary(c: Changes) -> list[tuple[str, bool, str]]:
    return [(t.vs_name, t.deleted, t.checksum) for t in c.trees]


def test_a_flush_in_parts_equals_one_flush() -> None:
    whole, parted = start(), start()
    first = whole.flush()
    parts, joined = in_parts(parted, 2)
    assert len(parts) > 2 and not parted.flushing
    assert summary(joined) == summary(first) and joined.reports == first.reports
    change(whole)
    change(parted)
    second = whole.flush()
    parts, joined = in_parts(parted, 1)
    assert summary(joined) == summary(second) and joined.reports == second.reports
    # The deletion comes with the last part, once every source has said what it wants.
    (gone,) = [t for t in second.trees if t.deleted]
    assert gone.sources and all(not t.deleted for p in parts[:-1] for t in p.trees)
    assert whole.live_vs_names() == parted.live_vs_names()


def test_what_arrives_during_a_flush_in_parts_waits_for_the_next() -> None:
    e = start()
    e.flush(3)
    e.observe(_ko(svc("late")))
    _, rest = in_parts(e, 100)
    assert "c1--shop-late" not in {t.vs_name for t in rest.trees}
    assert [t.vs_name for t in e.flush().trees] == ["c1--shop-late"]


def test_the_engine_keeps_a_summary_of_each_tree_it_published() -> None:
    e = start()
    trees = {t.vs_name: t for t in e.flush().trees}
    assert set(e.published) == set(trees)
    for name, pub in e.published.items():
        assert isinstance(pub, Published) and not isinstance(pub, VsTree)
        tree = trees[name]
        assert (pub.tenant, pub.checksum, pub.sources) == (tree.tenant, tree.checksum, tree.sources)
        vsvip = next(o for o in tree.objects if o.type == "vsvip")
        assert pub.vip == vsvip.body["vip"][0]
