"""Hybrid retrieval: dense (FAISS) + keyword (BM25), fused by reciprocal rank fusion.

English questions over German articles are found by the dense side; numbers and
names by the keyword side. Near-duplicate chunks (the articles repeat each
other) are collapsed into the best-ranked one, which keeps the others as
``duplicates`` so an answer can cite every article that agrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from rag.config import Settings, default
from rag.errors import InputError
from rag.models.embed import Embedder
from rag.retrieval import dense as dense_index
from rag.retrieval.bm25 import tokenize_query
from rag.retrieval.filters import describe, matching_documents
from rag.retrieval.position import position_cue, zone
from rag.retrieval.store import LoadedIndex
from rag.types import Filter, Hit, Passage


@dataclass(frozen=True)
class RetrievalSettings:
    """The retrieval knobs of `Settings` (defaults and meaning there).

    The fusion defaults were tuned on eval/gold.jsonl (docs/experiments.md): a small ``rrf_k`` trusts
    the top of each list, and the keyword list, weighted lower and cut at half its best score, adds
    names and numbers without pushing a good dense hit down with chunks that only share "DeepSeek".
    """

    k: int = default("top_k")  # hits returned after fusion and collapsing
    candidates: int = default("candidates")  # taken from each side before fusion (k, when k is more)
    rrf_k: int = default("rrf_k")
    keyword_weight: float = default("keyword_weight")
    keyword_min_relative: float = default("keyword_min_relative")
    dense: bool = default("dense")
    keyword: bool = default("keyword")
    duplicate_cosine: float = default("duplicate_cosine")  # chunks at least this similar are the same fact
    position_weight: float = default("position_weight")  # a question about an article's opening or close
    position_share: float = default("position_share")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrievalSettings:
        return cls(
            k=settings.top_k,
            candidates=settings.candidates,
            rrf_k=settings.rrf_k,
            keyword_weight=settings.keyword_weight,
            keyword_min_relative=settings.keyword_min_relative,
            dense=settings.dense,
            keyword=settings.keyword,
            duplicate_cosine=settings.duplicate_cosine,
            position_weight=settings.position_weight,
            position_share=settings.position_share,
        )


class Reranker(Protocol):
    """Reorders fused hits (for example a cross-encoder from a local folder). Off by default."""

    def rerank(self, question: str, hits: Sequence[Hit]) -> list[Hit]: ...


def rrf(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: ``score(d) = sum over lists of weight / (k + rank)``; best first.

    >>> rrf([[7, 3], [3, 9]], k=60)
    [(3, 0.03252247488101534), (7, 0.01639344262295082), (9, 0.016129032258064516)]
    """
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def collapse_duplicates(hits: list[Hit], vectors: np.ndarray, rows: dict[str, int], threshold: float) -> list[Hit]:
    """Fold each hit into an earlier (better) hit whose embedding is at least ``threshold`` similar."""
    kept: list[Hit] = []
    for hit in hits:
        v = vectors[rows[hit.chunk.chunk_id]]
        for i, leader in enumerate(kept):
            if float(vectors[rows[leader.chunk.chunk_id]] @ v) >= threshold:
                kept[i] = replace(leader, duplicates=(*leader.duplicates, hit.chunk, *hit.duplicates))
                break
        else:
            kept.append(hit)
    return [replace(h, rank=n) for n, h in enumerate(kept, 1)]


class Retriever:
    """Question in, ranked hits out. Holds the loaded index and the embedder; no global state."""

    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        settings: RetrievalSettings | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()
        self.reranker = reranker
        self.use_index(index)
        self.last_timings: dict[str, float] = {}

    def use_index(self, index: LoadedIndex) -> None:
        """Switch to another index version (after documents were added or removed)."""
        rows: dict[str, list[int]] = {}
        for i, c in sorted(enumerate(index.chunks), key=lambda ic: (ic[1].doc_id, ic[1].start)):
            rows.setdefault(c.doc_id, []).append(i)
        self._rows = {c.chunk_id: i for i, c in enumerate(index.chunks)}
        self._doc_rows = {d: np.asarray(r, dtype=np.int64) for d, r in rows.items()}  # in reading order
        self.index = index

    def rows_for(self, where: Filter) -> np.ndarray:
        """Index rows (FAISS ids, BM25 rows) of the chunks ``where`` allows, sorted.

        InputError (naming the filter) when it names an unknown document or allows none with chunks.
        """
        docs = [d for d in matching_documents(self.index.documents, where) if d in self._doc_rows]
        if not docs:
            raise InputError(f"the documents the filter allows have no indexed passages ({describe(where)})")
        return np.sort(np.concatenate([self._doc_rows[d] for d in docs]))

    def _placed(self, question: str, query: np.ndarray, rows: np.ndarray | None) -> list[int]:
        """For a question about an article's opening or close (`position_cue`), the chunks there, by their
        cosine to the question; otherwise none."""
        cue = position_cue(question)
        if cue is None:
            return []
        placed = zone(self._doc_rows, cue, self.settings.position_share)
        if rows is not None:
            placed = np.intersect1d(placed, rows)
        if not len(placed):
            return []
        _, ids = dense_index.search(self.index.dense, query, len(placed), np.sort(placed))
        return [int(i) for i in ids[0] if i >= 0]

    def search(self, question: str, k: int | None = None, *, where: Filter | None = None) -> list[Hit]:
        """The top ``k`` hits; with ``where``, only from the documents it allows (restricted inside both
        searches, so ``k`` hits come back when those documents hold ``k`` passages)."""
        s = self.settings
        k = k or s.k
        timings: dict[str, float] = {}
        dense: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        placed: list[int] = []
        rows = None if where is None else self.rows_for(where)
        # Each side's list at least k long, or k above RAG_CANDIDATES could never come back.
        n = min(max(s.candidates, k), len(self.index.chunks) if rows is None else len(rows))
        if s.dense and n:
            t = time.perf_counter()
            query = self.embedder.embed([question], "query")
            timings["embed_query"] = time.perf_counter() - t
            t = time.perf_counter()
            scores, ids = dense_index.search(self.index.dense, query, n, rows)
            dense = [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0], strict=True) if i >= 0]
            placed = self._placed(question, query, rows) if s.position_weight > 0 else []
            timings["dense_search"] = time.perf_counter() - t
        if s.keyword and n:
            t = time.perf_counter()
            keyword = self.index.keyword.search(tokenize_query(question), n, rows)
            if keyword:
                floor = s.keyword_min_relative * keyword[0][1]
                keyword = [(i, sc) for i, sc in keyword if sc >= floor]
            timings["keyword_search"] = time.perf_counter() - t
        rankings = [[i for i, _ in dense], [i for i, _ in keyword], placed]
        fused = rrf(rankings, s.rrf_k, (1.0, s.keyword_weight, s.position_weight))
        dense_at = {i: (r, sc) for r, (i, sc) in enumerate(dense, 1)}
        keyword_at = {i: (r, sc) for r, (i, sc) in enumerate(keyword, 1)}
        hits = [
            Hit(
                chunk=self.index.chunks[i],
                score=score,
                rank=rank,
                dense_rank=dense_at[i][0] if i in dense_at else None,
                dense_score=dense_at[i][1] if i in dense_at else None,
                keyword_rank=keyword_at[i][0] if i in keyword_at else None,
                keyword_score=keyword_at[i][1] if i in keyword_at else None,
            )
            for rank, (i, score) in enumerate(fused, 1)
        ]
        hits = collapse_duplicates(hits, self.index.vectors, self._rows, s.duplicate_cosine)
        if self.reranker is not None:
            hits = [replace(h, rank=r) for r, h in enumerate(self.reranker.rerank(question, hits), 1)]
        self.last_timings = timings
        return hits[:k]


def select_passages(
    hits: Sequence[Hit], *, budget_tokens: int, max_passages: int, count_tokens: Callable[[str], int]
) -> list[Passage]:
    """The best hits that fit the prompt's token budget, numbered from 1 in rank order.

    The first hit is always taken, even when it alone exceeds the budget.
    """
    passages: list[Passage] = []
    used = 0
    for hit in hits:
        cost = count_tokens(hit.chunk.text)
        if passages and (used + cost > budget_tokens or len(passages) >= max_passages):
            break
        used += cost
        passages.append(Passage(len(passages) + 1, hit, hit.chunk.text, hit.chunk.start, hit.chunk.end))
    return passages
