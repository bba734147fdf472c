"""Conflicts: amounts of the same kind that different articles give differently.

Used to tell the reader that the articles disagree (2.000 vs 2.048 chips, 5,6 vs
6 Millionen Dollar), each value with the passages that state it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import MappingProxyType

from rag.ground.quantities import Quantity, extract_quantities
from rag.types import Passage

_YEAR = re.compile(r"(?:19|20)\d\d")


def _describe(cluster: list[tuple[Quantity, Passage]]) -> str:
    """'"2.048 GPUs" [1] vs. "2.000 Nvidia-Chips" [2, 3]': each value once, as first worded."""
    label_of: dict[float, str] = {}
    numbers_of: dict[float, set[int]] = {}
    for quantity, passage in sorted(cluster, key=lambda x: (x[1].number, x[0].start)):
        label = passage.text[quantity.start : max(quantity.end, quantity.unit_end)]
        label_of.setdefault(quantity.value, " ".join(label.split()))
        numbers_of.setdefault(quantity.value, set()).add(passage.number)
    return " vs. ".join(f'"{label_of[v]}" [{", ".join(map(str, sorted(numbers_of[v])))}]' for v in label_of)


def _clusters(found: list[tuple[Quantity, Passage]]) -> list[list[tuple[Quantity, Passage]]]:
    """Group amounts of one unit whose values lie within a factor 1.5 of the group's smallest."""
    clusters: list[list[tuple[Quantity, Passage]]] = []
    for item in sorted(found, key=lambda x: x[0].value):
        if clusters and item[0].value <= clusters[-1][0][0].value * 1.5:
            clusters[-1].append(item)
        else:
            clusters.append([item])
    return clusters


def _mentioned(cluster: list[tuple[Quantity, Passage]], about: Sequence[Quantity]) -> bool:
    """Whether the answer names an amount of this cluster (a bare "2000" is more likely a year)."""
    values = {q.value for q, _ in cluster}
    low, high, unit = min(values) / 1.5, max(values) * 1.5, cluster[0][0].unit
    return any(
        (q.unit == unit and low <= q.value <= high)
        or (q.unit is None and q.value in values and not _YEAR.fullmatch(q.surface))
        for q in about
    )


_CONFLICT_LEAD = MappingProxyType({"de": "Die Artikel nennen unterschiedliche Werte: ", "en": "The articles differ: "})


def find_conflicts(
    passages: Sequence[Passage], lang: str = "de", about: Sequence[Quantity] | None = None
) -> tuple[str, ...]:
    """Describe amounts of the same kind that different articles give differently.

    Conservative: only chip/GPU counts and money amounts, only values within a
    factor 1.5 of each other (2.000 vs 2.048 chips, 5,6 vs 6 Millionen; not the
    16.000 chips of western rivals), and only when two articles each give a value
    the other does not ("5,6 bis 6 Millionen" agrees with "6 Millionen"). With
    ``about`` (the answer's quantities) only disagreements about an amount the
    answer mentions are reported.
    """
    found = [(q, p) for p in passages for q in extract_quantities(p.text) if q.unit in ("chips", "money")]
    messages: list[str] = []
    for unit in ("chips", "money"):
        for cluster in _clusters([x for x in found if x[0].unit == unit and x[0].value > 0]):
            values_of: dict[str, set[float]] = {}
            for quantity, passage in cluster:
                values_of.setdefault(passage.hit.chunk.doc_id, set()).add(quantity.value)
            docs = list(values_of.values())
            disagree = any(a - b and b - a for a in docs for b in docs)
            if disagree and (about is None or _mentioned(cluster, about)):
                messages.append(_CONFLICT_LEAD.get(lang, _CONFLICT_LEAD["en"]) + _describe(cluster))
    return tuple(messages)
