"""Which Kubernetes changes caused a tree: kept per source until its tree is published.

The translator coalesces a burst of changes into one tree, so a tree has
many causes. Its span is a child of the earliest (the change that started
the work) and links to every one (see docs/tracing.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from opentelemetry.trace import SpanContext

from services.common.contracts import ObjRef


class Causes:
    def __init__(self) -> None:
        self._by_source: dict[ObjRef, list[tuple[int, SpanContext]]] = {}
        self._seq = itertools.count()

    def add(self, sources: Iterable[ObjRef], cause: SpanContext | None) -> None:
        if cause is None:
            return
        n = next(self._seq)
        for src in sources:
            self._by_source.setdefault(src, []).append((n, cause))

    def take(self) -> Causes:
        """Hand over everything gathered so far (for the flush about to run) and start afresh."""
        out = Causes()
        out._by_source, self._by_source = self._by_source, {}
        return out

    def of(self, sources: Iterable[ObjRef]) -> list[SpanContext]:
        """The causes of a tree with these sources, earliest first, each once."""
        first: dict[int, tuple[int, SpanContext]] = {}  # span id -> earliest arrival
        for src in sources:
            for n, sc in self._by_source.get(src, ()):
                if sc.span_id not in first or n < first[sc.span_id][0]:
                    first[sc.span_id] = (n, sc)
        return [sc for _, sc in sorted(first.values(), key=lambda x: x[0])]
