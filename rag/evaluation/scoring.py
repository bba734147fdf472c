"""Scoring answers against gold items: pure functions over an Answer and a GoldItem.

Each question gets a row of booleans (or None where a measure does not apply);
`aggregate` turns rows into rates overall and by language and type.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.evaluation.gold import GoldItem
from rag.evaluation.retrieval_metrics import evidence_hit, normalise_whitespace, percentile
from rag.ground.citations import parse_citations
from rag.language import detect_language, has_language_evidence
from rag.types import Answer, Citation, Document

RATES = (
    "correct",
    "refusal_ok",
    "false_refusal",
    "cites",
    "citation_precision",
    "citation_recall",
    "citations_resolve",
    "lang_match",
    "conflict_surfaced",
    "grounded",
    "evidence_given",
)


def _plain(text: str) -> str:
    for marker in reversed(parse_citations(text)):
        text = text[: marker.start] + text[marker.end :]
    return normalise_whitespace(text)


def contains_any(text: str, needles: Sequence[str]) -> bool:
    """Case-insensitive, whitespace-normalised containment of any gold string.

    Gold strings are often stems ("lob" for "lobte", "konkurr"), so a word may stand inside another; a
    number may not stand inside a longer number or a code, nor after a decimal comma or a thousands point
    (a year may follow a date's point):

    >>> contains_any("Im Jahr 2018.", ["8"]), contains_any("R1 auf Platz 2.", ["1"]), contains_any("Es sind 8.", ["8"])
    (False, False, True)
    >>> contains_any("2.048 GPUs", ["2.04"]), contains_any("1.600 Dollar", ["600"]), contains_any("5,6 Mio.", ["6"])
    (False, False, False)
    >>> contains_any("ein 600-Milliarden-Verlust", ["600"]), contains_any("am 17.07.2023", ["2023"])
    (True, True)
    >>> contains_any("Trump lobte DeepSeek", ["lob"]), contains_any("der Börsenmarktwert", ["Marktwert"])
    (True, True)
    """
    hay = normalise_whitespace(text).lower()
    return any(re.search(_needle(n), hay) for n in needles if n.strip())


def _needle(needle: str) -> str:
    n = normalise_whitespace(needle).lower()
    before = after = ""
    if n[0].isdigit():
        before = r"(?<!\w)(?<!\d,)" + ("" if re.match(r"\d{4}(?!\d)", n) else r"(?<!\d\.)")
    if n[-1].isdigit():
        after = r"(?!\d|[.,]\d)"
    return before + re.escape(n) + after


def citation_ok(c: Citation, item: GoldItem) -> bool:
    """A citation is right when it points into a gold source or quotes gold evidence."""
    return c.doc_id in item.sources or evidence_hit(item.evidence, c.quote)


def score(item: GoldItem, answer: Answer, documents: Mapping[str, Document]) -> dict[str, Any]:
    """One row of measures for one question (None: the measure does not apply)."""
    good = [citation_ok(c, item) for c in answer.citations]
    plain = _plain(answer.text)
    # Without its markers: "[8]" is no answer of 8.
    correct = item.answerable and not answer.refused and contains_any(plain, item.must_contain_any)
    resolve = [c.doc_id in documents and documents[c.doc_id].text[c.start : c.end] == c.quote for c in answer.citations]
    # An answer of names only ("ChatGPT [1]") has no language to match: not counted either way.
    text_lang = detect_language(plain) if plain.strip() and has_language_evidence(plain) else None
    return {
        "id": item.id,
        "lang": item.lang,
        "type": item.type,
        "answerable": item.answerable,
        "correct": correct if item.answerable else None,
        "refusal_ok": answer.refused if not item.answerable else None,
        "false_refusal": answer.refused if item.answerable else None,
        "cites": bool(answer.citations) if not answer.refused else None,
        "citation_precision": (sum(good) / len(good)) if good else None,
        "citation_recall": any(good) if correct else None,
        "citations_resolve": all(resolve) if resolve else None,
        "lang_match": None if text_lang is None else text_lang == item.lang,
        "conflict_surfaced": bool(answer.conflicts) if item.conflict and not answer.refused else None,
        "grounded": answer.grounded,
        # The gold evidence was among the passages the model was given (its near-duplicates included).
        "evidence_given": _evidence_given(item, answer),
        "answerable_p": answer.answerable_p,
    }


def _evidence_given(item: GoldItem, answer: Answer) -> bool | None:
    """Whether a gold evidence quote was among the passages the model was given (None: unanswerable, or
    refused before any passage was chosen)."""
    if not item.answerable or not answer.passages:
        return None
    texts = [text for p in answer.passages for text in (p.text, *(d.text for d in p.hit.duplicates))]
    return any(evidence_hit(item.evidence, text) for text in texts)


def _rate(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rates of every measure, overall and split by language and by question type."""

    def block(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(group)}
        for name in RATES:
            out[name] = _rate(r.get(name) for r in group)
        return out

    summary: dict[str, Any] = {"overall": block(rows)}
    for key in ("lang", "type"):
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in rows:
            groups.setdefault(str(r[key]), []).append(r)
        summary[f"by_{key}"] = {k: block(v) for k, v in sorted(groups.items())}
    return summary


def latency(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Median and p95 seconds of each stage over the questions that had it."""
    stages: dict[str, list[float]] = {}
    for r in rows:
        for stage, seconds in r.get("timings", {}).items():
            stages.setdefault(stage, []).append(seconds)
    out = {s: {"median": statistics.median(v), "p95": percentile(v, 0.95), "n": len(v)} for s, v in stages.items()}
    speeds = [r["tokens_per_second"] for r in rows if r.get("tokens_per_second")]
    if speeds:
        out["tokens_per_second"] = {
            "median": statistics.median(speeds),
            "p95": percentile(speeds, 0.95),
            "n": len(speeds),
        }
    return out
