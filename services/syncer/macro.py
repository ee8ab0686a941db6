"""One ``POST /api/macro`` for a whole new tree.

The macro API creates a top-level object and, recursively, the objects it
refers to, given inline as ``<field>_data`` next to the field they replace
(``vsvip_ref`` → ``vsvip_ref_data``). It is transactional on the controller:
an error in any object rolls back the hierarchy, so a failed create leaves
nothing half-made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.contracts import AviObject, VsTree
from services.syncer.refs import parse_ref


class MacroError(ValueError):
    """The tree cannot be expressed as one macro call (no virtualservice, or an unreachable object)."""


Sent = Callable[[AviObject], dict[str, Any]]  # an object's body as sent (write-only fields, opened keys)


def _body_only(obj: AviObject) -> dict[str, Any]:
    body = dict(obj.body)
    body.setdefault("name", obj.name)
    return body


def _inline(value: Any, objects: dict[tuple[str, str], AviObject], used: set[tuple[str, str]], sent: Sent) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.endswith("_ref") and isinstance(item, str):
                target = _target(item, objects)
                if target is not None:
                    used.add(target)
                    out[f"{key}_data"] = _body(objects[target], objects, used, sent)
                    continue
            if key.endswith("_refs") and isinstance(item, list | tuple) and item:
                targets = [_target(v, objects) if isinstance(v, str) else None for v in item]
                if all(t is not None for t in targets):
                    out[f"{key}_data"] = []
                    for t in targets:
                        assert t is not None
                        used.add(t)
                        out[f"{key}_data"].append(_body(objects[t], objects, used, sent))
                    continue
                if any(t is not None for t in targets):
                    # One field cannot be half inline, half by reference.
                    raise MacroError(f"{key} mixes tree objects and other references")
            # (Scalars as they are: most of a body, and a call each would be most of the cost.)
            out[key] = _inline(item, objects, used, sent) if isinstance(item, dict | list | tuple) else item
        return out
    if isinstance(value, list | tuple):
        return [_inline(v, objects, used, sent) if isinstance(v, dict | list | tuple) else v for v in value]
    return value


def _target(value: str, objects: dict[tuple[str, str], AviObject]) -> tuple[str, str] | None:
    ref = parse_ref(value)
    target = (ref.type, ref.name) if ref is not None and ref.name else None
    return target if target is not None and target in objects else None


def _body(obj: AviObject, objects: dict[tuple[str, str], AviObject], used: set[tuple[str, str]],
          sent: Sent) -> Any:
    return _inline(sent(obj), objects, used, sent)


def macro_body(tree: VsTree, sent: Sent = _body_only) -> dict[str, Any]:
    """``{"model_name": "VirtualService", "data": ...}`` holding every object of ``tree``, each body as ``sent``."""
    objects = {(o.type, o.name): o for o in tree.objects}
    vs = [o for o in tree.objects if o.type == "virtualservice"]
    if len(vs) != 1:
        raise MacroError(f"tree {tree.vs_name} has {len(vs)} virtualservices, need exactly one")
    used: set[tuple[str, str]] = {("virtualservice", vs[0].name)}
    data = _body(vs[0], objects, used, sent)
    missing = sorted(set(objects) - used)
    if missing:
        # An object nothing in the tree refers to cannot ride in the macro.
        raise MacroError(f"objects not reachable from the virtualservice: {missing}")
    return {"model_name": "VirtualService", "data": data}
