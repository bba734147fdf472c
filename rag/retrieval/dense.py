"""The dense side of the index: which FAISS structure to build, and how well it recalls.

``auto`` (the default) keeps exact inner-product search below ``exact_below`` vectors, where it
costs a few milliseconds, and switches to IVF with 8-bit scalar quantization above it, the structure
`bench/bench_faiss.py` measured at 10^6 vectors: p95 4.1 ms and recall@10 0.96-0.99 against exact
search, in a quarter of the memory. Every approximate index has its recall@10 against exact search
measured when it is built; the manifest records it next to the chosen kind.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from rag.config import default

NPROBE = 256  # lists searched per query (bench/README.md: recall >= 0.96 at nlist = 4 sqrt(N))
TRAIN_PER_LIST = 39  # faiss warns below 39 training points per centroid
RECALL_QUERIES = 200


def choose_kind(faiss_type: str, n_vectors: int, exact_below: int = default("faiss_exact_below")) -> str:
    if faiss_type != "auto":
        return faiss_type
    return "flat" if n_vectors < exact_below else "ivf-sq8"


def build_dense(
    vectors: np.ndarray,
    faiss_type: str = default("faiss_type"),
    exact_below: int = default("faiss_exact_below"),
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """The FAISS index over ``vectors`` (unit length, float32) and what the manifest says about it."""
    import faiss

    n, dim = vectors.shape
    kind = choose_kind(faiss_type, n, exact_below)
    info: dict[str, Any] = {"type": faiss_type, "kind": kind, "exact_below": exact_below}
    index: Any
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    elif kind == "ivf-sq8":
        nlist = max(1, min(round(4 * math.sqrt(n)), n // TRAIN_PER_LIST))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = min(NPROBE, nlist)
        info.update(nlist=nlist, nprobe=index.nprobe)
    elif kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        raise ValueError(f"unknown FAISS index type {faiss_type!r}; use auto, flat, hnsw or ivf-sq8")
    if n:
        index.add(vectors)
    if kind != "flat" and n:
        info["recall_at_10"] = round(recall_at_k(index, vectors, seed=seed), 4)
    prepare_for_search(index)
    return index, info


def search(index: Any, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, restricted to the ids in ``rows`` when given (a FAISS ID selector).

    The selector is applied inside the search, so the top ``k`` among those ids come back, as many
    as there are: exact search sees every id; IVF search probes every list when its usual lists
    held fewer than ``k`` of them. HNSW follows graph links through other ids and may return fewer
    when ``rows`` is a small share of the index. Missing results have id -1.
    """
    if rows is None:
        return index.search(queries, k)
    import faiss

    selector = faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64))
    wanted = min(k, len(rows))
    if isinstance(index, faiss.IndexIVF):
        found = index.search(queries, k, params=_params(faiss, "SearchParametersIVF", selector, nprobe=index.nprobe))
        if index.nprobe < index.nlist and int((found[1] >= 0).sum(axis=1).min(initial=wanted)) < wanted:
            found = index.search(queries, k, params=_params(faiss, "SearchParametersIVF", selector, nprobe=index.nlist))
        return found
    if isinstance(index, faiss.IndexHNSW):
        params = _params(faiss, "SearchParametersHNSW", selector, efSearch=max(index.hnsw.efSearch, k))
    else:
        params = _params(faiss, "SearchParameters", selector)
    return index.search(queries, k, params=params)


def _params(faiss: Any, kind: str, selector: Any, **values: int) -> Any:
    """FAISS search parameters of ``kind`` with the ID selector (set as attributes: faiss's type stubs
    know neither the keyword arguments nor every kind)."""
    params = getattr(faiss, kind)()
    params.sel = selector
    for name, value in values.items():
        setattr(params, name, value)
    return params


def prepare_for_search(index: Any) -> None:
    """Settings FAISS does not store in the file: split one query's lists over the threads."""
    import faiss

    with contextlib.suppress(RuntimeError):  # raised for an index that is not IVF
        faiss.extract_index_ivf(index).parallel_mode = 1


def recall_at_k(index: Any, vectors: np.ndarray, k: int = 10, seed: int = 0) -> float:
    """Share of the exact top-k that ``index`` returns, for queries that lie between stored vectors.

    Each query is the normalised mean of two random stored vectors, so it is neither a stored
    vector (which every index finds first) nor unrelated noise.
    """
    import faiss

    n, dim = vectors.shape
    k = min(k, n)
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, n, size=(min(RECALL_QUERIES, n), 2))
    queries = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    _, truth = exact.search(queries.astype(np.float32), k)
    _, found = index.search(queries.astype(np.float32), k)
    return float(np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)]))
