"""Hybrid retrieval pieces: RRF, FAISS against brute force, duplicate collapsing, passage budget."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fakes import CONFIG, A, B, C, FakeEmbedder, doc, run

from rag.retrieval.dense import build_dense
from rag.retrieval.retrieve import RetrievalSettings, Retriever, collapse_duplicates, rrf, select_passages
from rag.retrieval.store import load_index
from rag.types import Chunk, Hit


def test_rrf_worked_examples() -> None:
    assert rrf([]) == []
    assert rrf([[1, 2, 3]], k=60)[0] == (1, 1 / 61)
    fused = dict(rrf([[1, 2], [2, 3]], k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert [i for i, _ in rrf([[1, 2], [2, 3]], k=60)] == [2, 1, 3]
    assert [i for i, _ in rrf([[5], [6]], k=60)] == [5, 6]  # ties broken by id, deterministic


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf-sq8"])
def test_faiss_matches_numpy_brute_force(kind: str) -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2000, 32)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index, _ = build_dense(data, kind)
    _, got = index.search(queries, 10)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    if kind == "flat":
        np.testing.assert_array_equal(got, truth)
    else:
        recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)])
        assert recall >= 0.9


def _hit(i: int, text: str) -> Hit:
    return Hit(Chunk(f"d{i}#0", f"d{i}.txt", "t", 0, len(text), text, len(text.split())), score=1 / i, rank=i)


def test_collapse_keeps_best_and_remembers_sources() -> None:
    vectors = np.array([[1, 0], [0.999, 0.0447], [0, 1]], dtype=np.float32)
    hits = [_hit(1, "a"), _hit(2, "a'"), _hit(3, "b")]
    rows = {h.chunk.chunk_id: n for n, h in enumerate(hits)}
    out = collapse_duplicates(hits, vectors, rows, threshold=0.95)
    assert [h.chunk.chunk_id for h in out] == ["d1#0", "d3#0"]
    assert [d.doc_id for d in out[0].duplicates] == ["d2.txt"] and [h.rank for h in out] == [1, 2]


def test_select_passages_respects_budget_and_numbers_from_one() -> None:
    hits = [_hit(1, "one two three"), _hit(2, "four five"), _hit(3, "six seven eight nine")]
    count = lambda t: len(t.split())  # noqa: E731
    out = select_passages(hits, budget_tokens=5, max_passages=5, count_tokens=count)
    assert [p.number for p in out] == [1, 2] and out[1].text == "four five"
    assert len(select_passages(hits, budget_tokens=100, max_passages=2, count_tokens=count)) == 2
    assert len(select_passages(hits[2:], budget_tokens=1, max_passages=2, count_tokens=count)) == 1
    assert select_passages([], budget_tokens=5, max_passages=5, count_tokens=count) == []


@pytest.fixture
def retriever(tmp_path: Path) -> Retriever:
    run(tmp_path, [A, B, C, doc("d.txt", "Die H800 Chips von Nvidia.")])
    return Retriever(load_index(tmp_path, CONFIG), FakeEmbedder(), RetrievalSettings(k=3, duplicate_cosine=0.99))


def test_hybrid_search_reports_both_sides(retriever: Retriever) -> None:
    hits = retriever.search("Wie viele GPUs nutzte DeepSeek? 2048")
    top = hits[0]
    assert top.chunk.text == "DeepSeek nutzte 2.048 GPUs."
    assert top.dense_rank is not None and top.keyword_rank == 1 and top.rank == 1
    assert set(retriever.last_timings) == {"embed_query", "dense_search", "keyword_search"}


def test_each_side_can_be_switched_off(retriever: Retriever) -> None:
    retriever.settings = RetrievalSettings(k=3, keyword=False)
    assert all(h.keyword_rank is None and h.dense_rank is not None for h in retriever.search("H800"))
    retriever.settings = RetrievalSettings(k=3, dense=False)
    hits = retriever.search("H800")
    assert hits[0].chunk.doc_id == "d.txt" and all(h.dense_rank is None for h in hits)
    assert retriever.search("wort das nirgends vorkommt") == []


def test_a_reranker_reorders_the_fused_hits_and_ranks_follow(retriever: Retriever) -> None:
    """The reranker interface (no multilingual cross-encoder ships its weights on PyPI, so it is off by default)."""

    class Reverse:
        def rerank(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
            return list(reversed(hits))

    plain = retriever.search("Wie viele GPUs nutzte DeepSeek? 2048")
    retriever.reranker = Reverse()
    reranked = retriever.search("Wie viele GPUs nutzte DeepSeek? 2048")
    # k applies after reranking, over every fused candidate: the reversed list starts with the worst candidate.
    assert reranked[0].chunk.chunk_id != plain[0].chunk.chunk_id
    assert [h.rank for h in reranked] == list(range(1, len(reranked) + 1))


def test_a_question_about_an_articles_close_lifts_the_chunks_there(tmp_path: Path) -> None:
    """ "The closing paragraph" shares no word with the paragraph it means: the chunks at the end of each
    article are fused in as one more ranking, so the close that shares the question's words comes first."""
    lines = [f"Absatz {n} about DeepSeek." for n in range(1, 9)]
    closing = "Chips werden billiger."
    run(tmp_path, [doc("long.txt", "\n".join([*lines, "Impressum und Kontakt.", closing])), B])
    question = "What does the closing paragraph say about DeepSeek Chips?"
    plain = Retriever(load_index(tmp_path, CONFIG), FakeEmbedder(), RetrievalSettings(k=3, position_weight=0))
    placed = Retriever(load_index(tmp_path, CONFIG), FakeEmbedder(), RetrievalSettings(k=3, position_weight=1.0))
    assert closing not in [h.chunk.text for h in plain.search(question)]
    assert placed.search(question)[0].chunk.text == closing
    # without a pointer to a place in the article, the setting changes nothing
    other = "What does DeepSeek say about Chips?"
    assert [h.chunk.chunk_id for h in placed.search(other)] == [h.chunk.chunk_id for h in plain.search(other)]
