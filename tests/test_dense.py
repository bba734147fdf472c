"""The dense index kind: exact below a size, IVF-SQ8 above, recall measured, switched without re-embedding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from fakes import CONFIG, A, B, C, FakeEmbedder, paragraphs, run

from rag.retrieval.dense import build_dense, choose_kind, recall_at_k
from rag.retrieval.store import load_index, update_index


def clustered(n: int, dim: int = 64, centres: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres, like embeddings of articles on a handful of topics."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_auto_is_exact_below_the_threshold_and_ivf_above() -> None:
    assert choose_kind("auto", 19_999) == "flat" and choose_kind("auto", 20_000) == "ivf-sq8"
    assert choose_kind("hnsw", 10) == "hnsw" and choose_kind("flat", 10**7) == "flat"


def test_an_approximate_index_records_its_recall_against_exact_search() -> None:
    data = clustered(8000)
    index, info = build_dense(data, "auto", exact_below=5000)
    assert info["kind"] == "ivf-sq8" and info["nlist"] == 8000 // 39 and info["nprobe"] == info["nlist"]
    assert 0.9 <= info["recall_at_10"] <= 1.0
    assert info["recall_at_10"] == round(recall_at_k(index, data), 4)  # the figure is the index's own
    _, ids = index.search(data[:50], 1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.95  # stored vectors find themselves
    small, info_small = build_dense(data[:100], "auto", exact_below=5000)
    assert info_small["kind"] == "flat" and "recall_at_10" not in info_small and small.ntotal == 100


def test_a_probe_limit_below_the_list_count_still_recalls_most(monkeypatch) -> None:
    from rag.retrieval import dense

    monkeypatch.setattr(dense, "NPROBE", 16)
    data = clustered(12_000, seed=1)
    _, info = build_dense(data, "ivf-sq8")
    assert info["nprobe"] == 16 < info["nlist"] and info["recall_at_10"] >= 0.8


def test_changing_the_kind_writes_a_new_version_without_embedding(tmp_path: Path) -> None:
    emb = FakeEmbedder()
    run(tmp_path, [A, B, C], emb)
    assert load_index(tmp_path, CONFIG).manifest["faiss"]["kind"] == "flat"
    hnsw = replace(CONFIG, faiss_type="hnsw")
    report = update_index(
        tmp_path, hnsw, [A, B, C], chunk=paragraphs, embed=lambda c: emb.embed([x.text for x in c], "document"),
        detect_lang=lambda t: "de",
    )  # fmt: skip
    loaded = load_index(tmp_path, hnsw)
    assert report.version and report.embedded_chunks == 0 and len(emb.calls) == 1
    assert loaded.manifest["faiss"]["kind"] == "hnsw" and loaded.dense.ntotal == len(loaded.chunks) == 5
