"""Stable JSON shapes shared by `--json` CLI output, the HTTP API and eval reports."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rag.ground.citations import conflict_sources
from rag.types import Answer, Chunk, Hit, Passage


def _chunk_ref(c: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": c.chunk_id,
        "doc_id": c.doc_id,
        "title": c.title,
        "published": c.published,
        "author": c.author,
        "url": c.url,
        "start": c.start,
        "end": c.end,
    }


def hit_to_dict(h: Hit) -> dict[str, Any]:
    return {
        "rank": h.rank,
        "score": round(h.score, 6),
        **_chunk_ref(h.chunk),
        "text": h.chunk.text,
        "dense_rank": h.dense_rank,
        "dense_score": None if h.dense_score is None else round(h.dense_score, 6),
        "keyword_rank": h.keyword_rank,
        "keyword_score": None if h.keyword_score is None else round(h.keyword_score, 6),
        "duplicates": [_chunk_ref(d) for d in h.duplicates],
    }


def passage_to_dict(p: Passage) -> dict[str, Any]:
    return {"number": p.number, "text": p.text, "start": p.start, "end": p.end, **{"hit": hit_to_dict(p.hit)}}


def answer_to_dict(a: Answer) -> dict[str, Any]:
    out = asdict(a)
    out["citations"] = [asdict(c) for c in a.citations]
    # Passages only a conflict note names (not cited), so every [n] in `conflicts` resolves too.
    out["conflict_sources"] = [asdict(c) for c in conflict_sources(a)]
    out["passages"] = [passage_to_dict(p) for p in a.passages]
    return out
