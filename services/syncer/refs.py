"""Controller references in their two spellings, reduced to one comparable form.

albus sends references by name (``/api/pool/?name=web``); the controller
answers with URLs (``https://ctrl/api/pool/pool-1b2c#web`` when asked with
``include_name``). Both reduce to ``("pool", "web")`` so a desired body and a
controller object can be compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

_API_PATH = re.compile(r"/api/(?P<type>[a-zA-Z0-9_-]+)/?(?P<uuid>[^/?#]*)")


@dataclass(frozen=True, slots=True)  # no __dict__: thousands live in parse_ref's cache
class Ref:
    """A parsed reference: type plus a name, a uuid, or both."""

    type: str
    name: str | None = None
    uuid: str | None = None


def is_ref_field(key: str) -> bool:
    return key.endswith("_ref") or key.endswith("_refs")


# Pure, and hot: every ref of a tree is parsed by the macro, the diff and the walk of its apply, and the
# shared ones (cloud, network, tenant) by every apply. 65,536 entries held ~20 MB of a syncer at 10,000
# Services and still missed on every per-object ref there (~8 per tree, each parsed once per pass).
@lru_cache(maxsize=16384)
def parse_ref(value: str) -> Ref | None:
    """``/api/<type>/?name=<n>``, ``/api/<type>?name=<n>`` or ``<scheme>://host/api/<type>/<uuid>[#name]``."""
    parts = urlsplit(value)
    m = _API_PATH.search(parts.path)
    if m is None:
        return None
    name: str | None = parts.fragment or None
    if name is None:
        names = parse_qs(parts.query).get("name")
        name = names[0] if names else None
    return Ref(type=m.group("type"), name=name, uuid=m.group("uuid") or None)


def by_name(obj_type: str, name: str) -> str:
    """A reference by name, as albus writes them."""
    return f"/api/{obj_type}/?name={name}"


def ref_key(value: str) -> tuple[str, str] | str:
    """The comparable form of a reference: ``(type, name)``, or the raw text if it names nothing."""
    ref = parse_ref(value)
    if ref is None:
        return value
    if ref.name is not None:
        return (ref.type, ref.name)
    return (ref.type, f"uuid:{ref.uuid}") if ref.uuid else value
