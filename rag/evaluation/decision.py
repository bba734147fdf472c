"""The answer-or-refuse decision, measured: how well P(answerable) separates the questions, which
threshold to use, and whether the decision holds when a question is asked in other words.

A run with the check on but ``--answerable-threshold 0`` (nothing refused by it) records every
question's P(answerable) and the answer the model would give. Any threshold can then be replayed
exactly from that one run: a question below it is refused, the others keep their answer. Thresholds
are chosen this way on the tuning sets only (eval/gold.jsonl and eval/dev.jsonl, pooled: `rag eval threshold`), then
reported on held-out sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a threshold would have given on a set of scored rows."""

    threshold: float
    ok: float  # answerable and correct, or unanswerable and refused: the share of questions handled right
    correct: float  # answerable questions answered correctly
    refusal_ok: float  # unanswerable questions refused
    false_refusal: float  # answerable questions refused


def auc(rows: Sequence[Row]) -> float | None:
    """Area under the ROC curve of ``answerable_p`` against the gold ``answerable`` (None without both classes).

    >>> auc([{"answerable": True, "answerable_p": 0.9}, {"answerable": False, "answerable_p": 0.2}])
    1.0
    """
    from sklearn.metrics import roc_auc_score

    scored = [r for r in rows if r.get("answerable_p") is not None]
    labels = [bool(r["answerable"]) for r in scored]
    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, [r["answerable_p"] for r in scored]))


def replay(rows: Sequence[Row], threshold: float | Mapping[str, float]) -> Outcome:
    """The rates ``rows`` (from a run that refused nothing on P(answerable)) would have at ``threshold``
    (one for every question, or one per question language).

    >>> rows = [{"answerable": True, "answerable_p": 0.8, "correct": True, "refused": False},
    ...         {"answerable": False, "answerable_p": 0.3, "correct": None, "refused": False}]
    >>> replay(rows, 0.5).ok, replay(rows, 0.0).ok
    (1.0, 0.5)
    """
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def refused(r: Row) -> bool:
        p = r.get("answerable_p")
        limit = threshold if isinstance(threshold, int | float) else threshold.get(r["lang"], 0.0)
        return bool(r["refused"]) or (p is not None and p < limit)

    correct = [not refused(r) and bool(r["correct"]) for r in answerable]
    refusals = [refused(r) for r in unanswerable]
    false_refusals = [refused(r) for r in answerable]
    return Outcome(
        threshold=threshold if isinstance(threshold, int | float) else -1.0,
        ok=(sum(correct) + sum(refusals)) / len(rows) if rows else 0.0,
        correct=_share(correct),
        refusal_ok=_share(refusals),
        false_refusal=_share(false_refusals),
    )


def sweep(rows: Sequence[Row], steps: int = 100) -> list[Outcome]:
    """`replay` at every threshold 0, 1/steps, ..., 1."""
    return [replay(rows, i / steps) for i in range(steps + 1)]


def choose_threshold(rows: Sequence[Row], steps: int = 100) -> Outcome:
    """The threshold that handles the most questions right; among equals, the middle of the best range
    (a threshold at the edge of a plateau flips on the next question's noise)."""
    outcomes = sweep(rows, steps)
    best = max(o.ok for o in outcomes)
    plateau = [o for o in outcomes if o.ok == best]
    return plateau[len(plateau) // 2]


def choose_thresholds(rows: Sequence[Row], steps: int = 100) -> dict[str, Outcome]:
    """`choose_threshold` for each question language on its own (the model's P is not equally sure in each)."""
    langs = sorted({str(r["lang"]) for r in rows})
    return {lang: choose_threshold([r for r in rows if r["lang"] == lang], steps) for lang in langs}


def flip_rate(original: Sequence[Row], variants: Sequence[Row]) -> float | None:
    """Share of variant questions whose answer-or-refuse decision differs from the original question's.

    Rows pair up by ``variant_of`` (the original's id).
    """
    pairs = _pairs(original, variants)
    return sum(bool(o["refused"]) != bool(v["refused"]) for o, v in pairs) / len(pairs) if pairs else None


def _pairs(original: Sequence[Row], variants: Sequence[Row]) -> list[tuple[Row, Row]]:
    """Each variant row with its original question's row (by ``variant_of``); variants without one are left out."""
    by_id = {r["id"]: r for r in original}
    return [(by_id[v["variant_of"]], v) for v in variants if v.get("variant_of") in by_id]


def flip_causes(original: Sequence[Row], variants: Sequence[Row], threshold: Callable[[str], float]) -> dict[str, int]:
    """Where each flipped decision was taken, read from the side that refused: ``check`` (its P(answerable)
    under the question language's threshold), ``gate`` (refused before the check: no passage about it, a name
    no article has, no amount or time where one is asked) or ``answer`` (an answer was generated and no
    sentence passed its checks, or the model refused). ``threshold`` gives a question language's threshold
    (`AnswerSettings.threshold`, the lookup the pipeline itself used).

    >>> original = [{"id": "q1", "lang": "de", "refused": False, "answerable_p": 0.9, "completion_tokens": 9},
    ...             {"id": "q2", "lang": "en", "refused": True, "answerable_p": 0.8, "completion_tokens": 12}]
    >>> variants = [{"variant_of": "q1", "lang": "de", "refused": True, "answerable_p": 0.5, "completion_tokens": 0},
    ...             {"variant_of": "q2", "lang": "en", "refused": False, "answerable_p": 0.8, "completion_tokens": 9}]
    >>> flip_causes(original, variants, {"de": 0.62, "en": 0.57}.__getitem__)
    {'check': 1, 'gate': 0, 'answer': 1}
    """
    causes = {"check": 0, "gate": 0, "answer": 0}
    for o, v in _pairs(original, variants):
        if bool(o["refused"]) == bool(v["refused"]):
            continue
        refused = o if o["refused"] else v
        p = refused.get("answerable_p")
        if refused.get("completion_tokens"):
            causes["answer"] += 1
        elif p is not None and p < threshold(refused["lang"]):
            causes["check"] += 1
        else:
            causes["gate"] += 1
    return causes


def _share(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else 0.0
