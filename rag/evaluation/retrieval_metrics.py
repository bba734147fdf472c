"""Retrieval metrics over gold evidence: pure functions, no models, no I/O.

A retrieved chunk is relevant when one of the item's gold evidence quotes lies inside it. The rank of
the first relevant chunk (1-based, ``None`` when none was retrieved) is all recall@k and MRR need:

    >>> ranks = [first_relevant_rank(["2.048 GPUs"], ["Intro.", "nur 2.048 GPUs –"]), None]
    >>> ranks
    [2, None]
    >>> recall_at_k(ranks, 1), recall_at_k(ranks, 3), mrr(ranks)
    (0.0, 0.5, 0.25)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace (spaces, tabs, newlines, no-break spaces) to one space.

    >>> normalise_whitespace("  nur\\n2.048\\u00a0 GPUs ")
    'nur 2.048 GPUs'
    """
    return " ".join(text.split())


def evidence_hit(evidence: Sequence[str], chunk_text: str) -> bool:
    """True when any evidence quote lies inside the chunk, after normalising whitespace.

    Matching is otherwise exact (case, punctuation, number formatting). Empty quotes never match.

    >>> evidence_hit(["nur 2.048 GPUs"], "Deepseek benötigte für R1 nur 2.048\\nGPUs – deutlich weniger")
    True
    >>> evidence_hit(["nur 2.048 GPUs"], "nur 2048 GPUs")
    False
    >>> evidence_hit([], "anything")
    False
    """
    haystack = normalise_whitespace(chunk_text)
    return any(quote and quote in haystack for quote in (normalise_whitespace(e) for e in evidence))


def first_relevant_rank(evidence: Sequence[str], ranked_chunk_texts: Iterable[str]) -> int | None:
    """1-based rank of the first chunk holding a gold evidence quote, or ``None`` if none does.

    >>> first_relevant_rank(["Hangzhou"], ["Paris", "aus Hangzhou", "Hangzhou"])
    2
    >>> first_relevant_rank(["Hangzhou"], ["Paris"]) is None
    True
    """
    for rank, text in enumerate(ranked_chunk_texts, start=1):
        if evidence_hit(evidence, text):
            return rank
    return None


def recall_at_k(ranks: Sequence[int | None], k: int) -> float:
    """Share of items whose first relevant chunk is within the top ``k``; 0.0 for no items.

    >>> recall_at_k([1, 3, None, 6], 3)
    0.5
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_ranks(ranks)
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr(ranks: Sequence[int | None]) -> float:
    """Mean reciprocal rank; a miss (``None``) counts 0. 0.0 for no items.

    >>> mrr([1, 2, None, 4])
    0.4375
    """
    _check_ranks(ranks)
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


def retrieval_scores(ranks: Sequence[int | None], ks: Sequence[int] = (1, 3, 5, 10)) -> dict[str, float]:
    """``n``, ``recall@k`` for each k and ``mrr`` for one group of ranks.

    >>> retrieval_scores([1, None], ks=(1,))
    {'n': 2, 'recall@1': 0.5, 'mrr': 0.5}
    """
    scores: dict[str, float] = {"n": len(ranks)}
    for k in ks:
        scores[f"recall@{k}"] = recall_at_k(ranks, k)
    scores["mrr"] = mrr(ranks)
    return scores


def summarise(
    rows: Iterable[Mapping[str, Any]],
    keys: Sequence[str] = ("lang", "type"),
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, Any]:
    """Recall@k and MRR overall and grouped by each key, over answerable rows only.

    Each row is a mapping with ``rank`` (``int | None``) and the grouping keys; a row whose
    ``answerable`` is false is skipped (it has no evidence to find). The result is plain dicts:
    ``{"overall": scores, "by_lang": {"de": scores, ...}, "by_type": {...}}``, groups sorted by name.

    >>> rows = [
    ...     {"lang": "de", "type": "fact", "rank": 1},
    ...     {"lang": "en", "type": "fact", "rank": None},
    ...     {"lang": "en", "type": "unanswerable", "rank": None, "answerable": False},
    ... ]
    >>> s = summarise(rows, ks=(1,))
    >>> s["overall"]
    {'n': 2, 'recall@1': 0.5, 'mrr': 0.5}
    >>> s["by_lang"]["en"]
    {'n': 1, 'recall@1': 0.0, 'mrr': 0.0}
    >>> sorted(s["by_type"])
    ['fact']
    """
    counted = [row for row in rows if row.get("answerable", True) is not False]
    for row in counted:
        if "rank" not in row:
            raise ValueError(f"row has no 'rank': {dict(row)!r}")
    summary: dict[str, Any] = {"overall": retrieval_scores([row["rank"] for row in counted], ks)}
    for key in keys:
        groups: dict[str, list[int | None]] = {}
        for row in counted:
            if key not in row:
                raise ValueError(f"row has no {key!r} to group by: {dict(row)!r}")
            groups.setdefault(str(row[key]), []).append(row["rank"])
        summary[f"by_{key}"] = {name: retrieval_scores(groups[name], ks) for name in sorted(groups)}
    return summary


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1); 0.0 for no values.

    >>> percentile([3.0, 1.0, 2.0], 0.95), percentile([], 0.5)
    (3.0, 0.0)
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _check_ranks(ranks: Sequence[int | None]) -> None:
    for r in ranks:
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
            raise ValueError(f"ranks are 1-based integers or None, got {r!r}")
