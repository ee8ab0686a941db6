"""The informer store: the watch's objects, our fresher copies until the watch catches up, and who changed."""

from __future__ import annotations

from services.common.object_cache import ObjectCache
from services.common.reflector import Key, Obj


def svc(name: str, rv: str, ip: str = "") -> Obj:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]} if ip else {}}}


def cache() -> tuple[ObjectCache, list[Key]]:
    changed: list[Key] = []
    return ObjectCache(lambda o: o, changed.append), changed


async def test_a_relist_replaces_everything_and_names_what_was_and_is() -> None:
    c, changed = cache()
    assert not c.listed.is_set()
    await c.relist([svc("a", "1"), svc("b", "2")], "2")
    assert c.listed.is_set() and c.get(("ns", "a")) == svc("a", "1")
    changed.clear()
    await c.relist([svc("b", "3")], "3")
    assert c.get(("ns", "a")) is None and c.get(("ns", "b")) == svc("b", "3")
    assert sorted(changed) == [("ns", "a"), ("ns", "b")]


async def test_our_write_is_read_until_the_watch_shows_it_or_something_newer() -> None:
    c, changed = cache()
    await c.relist([svc("a", "10")], "10")
    c.fresher(svc("a", "12", "10.0.0.1"))
    assert c.get(("ns", "a")) == svc("a", "12", "10.0.0.1")
    # An event from before our write (the watch is behind) does not hide it.
    await c.upsert(svc("a", "11"))
    assert c.get(("ns", "a")) == svc("a", "12", "10.0.0.1")
    assert changed[-1] == ("ns", "a")
    # Our write on the watch: nobody is told (the writer planned against it), and a later change is
    # not hidden by ours.
    changed.clear()
    await c.upsert(svc("a", "12", "10.0.0.1"))
    assert changed == [] and c.get(("ns", "a")) == svc("a", "12", "10.0.0.1")
    await c.upsert(svc("a", "13", "192.0.2.9"))
    assert c.get(("ns", "a")) == svc("a", "13", "192.0.2.9")
    assert changed == [("ns", "a")], "someone else's change is news"


async def test_an_older_copy_is_never_kept_and_a_relist_or_delete_drops_ours() -> None:
    c, _ = cache()
    await c.relist([svc("a", "10")], "10")
    c.fresher(svc("a", "9", "10.0.0.1"))  # older than the watch's
    assert c.get(("ns", "a")) == svc("a", "10")
    c.fresher(svc("b", "20", "10.0.0.2"))  # not in the cache (not listed, or not relevant)
    assert c.get(("ns", "b")) is None
    c.fresher(svc("a", "12", "10.0.0.1"))
    await c.delete(("ns", "a"), "uid", "13")
    assert c.get(("ns", "a")) is None
    await c.upsert(svc("a", "14"))
    c.fresher(svc("a", "15", "10.0.0.1"))
    await c.relist([svc("a", "16")], "16")
    assert c.get(("ns", "a")) == svc("a", "16")


async def test_versions_that_are_not_integers_trust_the_watch() -> None:
    c, _ = cache()
    await c.relist([svc("a", "x1")], "x1")
    c.fresher(svc("a", "x2", "10.0.0.1"))
    assert c.get(("ns", "a")) == svc("a", "x1")
