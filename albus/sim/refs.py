"""Parsing references in every form the controller accepts.

Accepted: `https://host/api/pool/pool-<uuid>#name`, the same without `#name` or over http,
`/api/pool/pool-<uuid>`, `/api/pool/?name=x`, `/api/pool?name=x` (and `api/...` without the leading
slash). Rendering is done by the store, which knows names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from albus.sim.errors import ApiError


@dataclass(frozen=True)
class ParsedRef:
    type: str
    uuid: str | None
    name: str | None


def parse_ref(raw: object, field: str) -> ParsedRef:
    parsed = _parse(raw) if isinstance(raw, str) and raw else None
    if parsed is None:
        raise ApiError(400, f"Invalid reference in field {field}: {raw if isinstance(raw, str) and raw else repr(raw)}")
    return parsed


@functools.lru_cache(maxsize=8192)
def _parse(raw: str) -> ParsedRef | None:
    # cached: a macro body repeats the same few references (tenant, cloud, profiles, network) per object
    text = raw.split("#", 1)[0]
    parts = urlsplit(text)
    path = parts.path
    # collapse duplicate slashes: avisdk callers sometimes produce /api//pool
    while "//" in path:
        path = path.replace("//", "/")
    path = path.strip("/")
    if not path.startswith("api/"):
        return None
    segs = path[4:].split("/")
    otype = segs[0]
    if not otype:
        return None
    if len(segs) >= 2 and segs[1]:
        if len(segs) > 2:
            return None
        return ParsedRef(otype, unquote(segs[1]), None)
    query = parse_qs(parts.query, keep_blank_values=True)
    names = query.get("name")
    if names and names[0]:
        return ParsedRef(otype, None, names[0])
    uuids = query.get("uuid")
    if uuids and uuids[0]:
        return ParsedRef(otype, uuids[0], None)
    return None
