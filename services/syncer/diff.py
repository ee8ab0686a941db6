"""What albus owns of a controller object, and how to write only that.

The syncer owns exactly the fields a desired body sets. Everything else on
the controller object (uuids, ``_last_modified``, defaults the controller
filled in, an allocated VIP address) is left as it is: comparing only owned
fields is what lets a replay write nothing, and merging into the cached
object is what keeps an allocated VIP when a pool next to it changes.
"""

from __future__ import annotations

import copy
from typing import Any

from services.syncer.refs import is_ref_field, ref_key


def _same_scalar(desired: Any, actual: Any) -> bool:
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual if isinstance(desired, bool) and isinstance(actual, bool) else False
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        return desired == actual
    return bool(desired == actual)


def _same_ref(desired: Any, actual: Any) -> bool:
    if isinstance(desired, str) and isinstance(actual, str):
        return ref_key(desired) == ref_key(actual)
    return _same_scalar(desired, actual)


def owned_equal(desired: Any, actual: Any, *, ref: bool = False) -> bool:
    """True when ``actual`` holds every field ``desired`` sets, with the same value.

    Dicts compare on the desired keys only; lists element by element, same
    length; references by (type, name) whichever way they are spelled.
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        for key, want in desired.items():
            if key not in actual:
                return False
            if not owned_equal(want, actual[key], ref=is_ref_field(key)):
                return False
        return True
    if isinstance(desired, list | tuple):
        if not isinstance(actual, list | tuple) or len(desired) != len(actual):
            return False
        return all(owned_equal(d, a, ref=ref) for d, a in zip(desired, actual, strict=True))
    return _same_ref(desired, actual) if ref else _same_scalar(desired, actual)


def differing_fields(desired: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Top-level owned fields whose value differs (for logs and tests)."""
    return [
        k for k, v in desired.items()
        if k not in actual or not owned_equal(v, actual[k], ref=is_ref_field(k))
    ]


def merge_owned(actual: Any, desired: Any, *, fresh: bool = False) -> Any:
    """The body to PUT: the controller object with every owned field set to its desired value.

    Dicts merge key by key, so fields the controller filled in survive. A
    list element already equal (on owned fields) to a desired element is kept
    whole, with what the controller added to it (a VIP's allocated address);
    any other element is sent as desired. ``fresh``: ``actual`` is the
    caller's own copy (just unpacked from the cache), built on rather than
    copied again (deep copies were a tenth of an edit's CPU).
    """
    if isinstance(desired, dict) and isinstance(actual, dict):
        out = actual if fresh else copy.deepcopy(actual)
        for key, want in desired.items():
            out[key] = merge_owned(actual.get(key), want, fresh=fresh)
        return out
    if isinstance(desired, list | tuple) and isinstance(actual, list | tuple):
        pool = list(actual)
        merged: list[Any] = []
        for want in desired:
            match = next((i for i, have in enumerate(pool) if owned_equal(want, have)), None)
            if match is None:
                merged.append(copy.deepcopy(want))
            else:
                kept = pool.pop(match)
                merged.append(kept if fresh else copy.deepcopy(kept))
        return merged
    return copy.deepcopy(desired)
