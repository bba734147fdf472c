"""Dense retrieval at scale: exact vs approximate FAISS indexes on 768-d unit vectors.

For each corpus size N it builds an exact index (IndexFlatIP) and approximate ones
(HNSW, IVF-Flat, IVF-SQ8, IVF-SQ8 with an exact re-rank from the float vectors that
`LoadedIndex.vectors` already holds) and reports build time, memory (serialized
bytes and RSS delta), single-query latency (median, p95) and recall@k against
exact search. It ends with the auto-selection rule that the measurements support.

The vectors are synthetic (a clustered Gaussian mixture with a shared mean direction
and a power-law spectrum, roughly matching the global statistics of EmbeddingGemma
sentence vectors of the corpus: mean pairwise cosine ~0.3); ``--vectors file.npy``
runs the same measurements on real embeddings instead.

    .venv/bin/python bench/bench_faiss.py            # 10^3 ... 10^6 (about 10-15 min, ~10 GB peak)
    .venv/bin/python bench/bench_faiss.py --quick    # 10^3 ... 2*10^4, under a minute
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from _common import machine, mib, rss_bytes, summarize_ms, table, trim_memory, write_result

DIM = 768
Generator = Callable[[int], np.ndarray]


# ----------------------------------------------------------------------------- data


def make_generator(seed: int, dim: int, clusters: int, alpha: float, mean_weight: float, noise: float) -> Generator:
    """Unit vectors from a Gaussian mixture: shared mean + cluster centre + noise, power-law spectrum.

    Per-dimension variance falls off as ``i**-alpha`` in a random basis, so the data has a
    low effective dimension like real text embeddings; ``noise`` sets how much clusters
    overlap (larger is harder for approximate search).
    """
    rng = np.random.default_rng(seed)
    spectrum = np.arange(1, dim + 1, dtype=np.float32) ** (-alpha / 2)
    spectrum /= np.sqrt((spectrum**2).sum())
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)).astype(np.float32))
    basis = basis.astype(np.float32)
    mean = rng.standard_normal(dim).astype(np.float32)
    mean /= np.linalg.norm(mean)
    centres = (rng.standard_normal((clusters, dim), dtype=np.float32) * spectrum) @ basis.T
    weights = rng.dirichlet(np.full(clusters, 2.0))  # clusters of unequal size

    def generate(n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 100_000):  # batches keep the temporaries small
            m = min(100_000, n - start)
            labels = rng.choice(clusters, size=m, p=weights)
            z = (rng.standard_normal((m, dim), dtype=np.float32) * spectrum) @ basis.T
            x = mean_weight * mean + centres[labels] + noise * z
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return generate


def from_file(path: str, seed: int) -> Generator:
    """Draw rows (without replacement across calls) from a .npy matrix of real embeddings."""
    data = np.load(path, mmap_mode="r")
    if data.ndim != 2:
        raise SystemExit(f"{path}: expected a 2-d matrix, got shape {data.shape}")
    order = np.random.default_rng(seed).permutation(len(data))
    taken = 0

    def generate(n: int) -> np.ndarray:
        nonlocal taken
        if taken + n > len(data):
            raise SystemExit(f"{path} has {len(data)} rows, the run needs more; lower --sizes or --max-n")
        rows = np.sort(order[taken : taken + n])
        taken += n
        x = np.ascontiguousarray(data[rows], dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return generate


# ----------------------------------------------------------------------------- measuring


def serialized_bytes(index: Any) -> int:
    """Byte count of ``faiss.serialize_index(index)`` without the extra numpy copy it makes."""
    writer = faiss.VectorIOWriter()
    faiss.write_index(index, writer)
    return int(writer.data.size())


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = [len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / k


def time_single_queries(search: Callable[[np.ndarray], Any], xq: np.ndarray, budget_s: float) -> dict[str, float]:
    """Latency of batch-of-1 searches; stops early (after at least 20) when the budget is spent."""
    for q in xq[:5]:  # warm caches and thread pools
        search(q[None, :])
    times: list[float] = []
    started = time.perf_counter()
    for q in xq:
        t0 = time.perf_counter()
        search(q[None, :])
        times.append(time.perf_counter() - t0)
        if len(times) >= 20 and time.perf_counter() - started > budget_s:
            break
    return summarize_ms(times)


def row(family: str, params: str, n: int, **fields: Any) -> dict[str, Any]:
    out = {"n": n, "index": family, "params": params}
    out.update(fields)
    out["bytes_mib"] = mib(fields.get("bytes"))
    out["rss_mib"] = mib(fields.get("rss_delta"))
    return out


def latency_fields(lat: dict[str, float]) -> dict[str, Any]:
    return {"p50_ms": lat["median_ms"], "p95_ms": lat["p95_ms"], "timed_queries": lat["n"]}


# ----------------------------------------------------------------------------- index families


def bench_flat(xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    n, k = len(xb), gt.shape[1]
    trim_memory()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    build = time.perf_counter() - t0
    rss = rss_bytes() - rss0
    search = functools.partial(index.search, k=k)
    lat = time_single_queries(search, xq, args.query_budget_s)
    _, found = search(xq)
    rows = [
        row(
            "flat",
            "IndexFlatIP",
            n,
            build_s=build,
            bytes=serialized_bytes(index),
            rss_delta=rss,
            recall=recall_at_k(found, gt),
            **latency_fields(lat),
        )
    ]
    del index

    # The product keeps vectors.npy in memory anyway (LoadedIndex.vectors): a BLAS matvec over it
    # is an exact search that uses both cores for a single query, unlike IndexFlatIP at nq=1.
    def matvec(q: np.ndarray) -> np.ndarray:
        scores = xb @ q[0]
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    lat = time_single_queries(matvec, xq, args.query_budget_s)
    found = np.stack([matvec(q[None, :]) for q in xq[: min(len(xq), 50)]])
    rows.append(
        row(
            "numpy-matvec",
            "xb @ q (exact)",
            n,
            build_s=0.0,
            bytes=0,
            extra_bytes=xb.nbytes,
            rss_delta=0,
            recall=recall_at_k(found, gt[: len(found)]),
            **latency_fields(lat),
        )
    )
    return rows


def bench_hnsw(xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    n, k = len(xb), gt.shape[1]
    rows: list[dict[str, Any]] = []
    for efc in args.hnsw_efc:
        trim_memory()
        rss0 = rss_bytes()
        index = faiss.IndexHNSWFlat(xb.shape[1], args.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        t0 = time.perf_counter()
        step = 25_000
        for start in range(0, n, step):  # in slices, so a build that overruns its budget can stop
            index.add(xb[start : start + step])
            elapsed = time.perf_counter() - t0
            if index.ntotal < n and elapsed > args.hnsw_build_budget_s:
                rate = index.ntotal / elapsed
                rows.append(
                    row(
                        "hnsw",
                        f"M={args.hnsw_m} efC={efc}",
                        n,
                        build_s=None,
                        note=(
                            f"build stopped after {index.ntotal:,} vectors in {elapsed:.0f}s "
                            f"({rate:.0f} vec/s); full build >= {n / rate:.0f}s (linear extrapolation, "
                            "a lower bound: insertion slows as the graph grows)"
                        ),
                        build_rate_vps=rate,
                        build_s_lower_bound=n / rate,
                    )
                )
                break
        else:
            build = time.perf_counter() - t0
            rss = rss_bytes() - rss0
            size = serialized_bytes(index)
            search = functools.partial(index.search, k=k)
            for ef in args.hnsw_ef:
                index.hnsw.efSearch = ef
                lat = time_single_queries(search, xq, args.query_budget_s)
                _, found = search(xq)
                rows.append(
                    row(
                        "hnsw",
                        f"M={args.hnsw_m} efC={efc} efS={ef}",
                        n,
                        build_s=build,
                        bytes=size,
                        rss_delta=rss,
                        recall=recall_at_k(found, gt),
                        efSearch=ef,
                        efConstruction=efc,
                        **latency_fields(lat),
                    )
                )
        del index
    return rows


def train_centroids(xb: np.ndarray, nlist: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical k-means on ``train_per_list * nlist`` sampled vectors: (centroids, sample, seconds)."""
    rng = np.random.default_rng(args.seed + 1)
    sample_n = min(len(xb), args.train_per_list * nlist)
    sample = xb[np.sort(rng.choice(len(xb), sample_n, replace=False))]
    t0 = time.perf_counter()
    km = faiss.Kmeans(xb.shape[1], nlist, niter=args.kmeans_iter, spherical=True, seed=args.seed)
    km.train(sample)
    return km.centroids, sample, time.perf_counter() - t0


def bench_ivf(xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, args: argparse.Namespace) -> list[dict[str, Any]]:
    n, d, k = len(xb), xb.shape[1], gt.shape[1]
    rows: list[dict[str, Any]] = []
    for factor in args.nlist_factors:
        nlist = max(8, round(factor * math.sqrt(n)))
        if nlist * 39 > n:  # too few vectors per list to train (and to be worth it)
            nlist = max(8, n // 39)
        centroids, sample, train_s = train_centroids(xb, nlist, args)
        # Assigning N vectors to their lists is most of an IVF build; it is done once here and
        # counted in every variant's build time (each would do it in its own add()).
        t0 = time.perf_counter()
        coarse = faiss.IndexFlatIP(d)
        coarse.add(centroids)
        _, assign = coarse.search(xb, 1)
        assign_s = time.perf_counter() - t0
        del coarse
        for family in args.ivf:
            trim_memory()
            rss0 = rss_bytes()
            t0 = time.perf_counter()
            quantizer = faiss.IndexFlatIP(d)
            # trained once and shared: IndexIVF skips k-means when the quantizer already holds nlist centroids
            quantizer.add(centroids)
            if family == "ivf-flat":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFScalarQuantizer(
                    quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
            index.train(sample)  # SQ8: learns per-dimension ranges; Flat: nothing left to train
            index.add_core(n, faiss.swig_ptr(xb), None, faiss.swig_ptr(assign.ravel()))
            add_s = time.perf_counter() - t0 + assign_s
            rss = rss_bytes() - rss0
            size = serialized_bytes(index)
            variants: list[tuple[str, int]] = [(family, 0)]
            if family == "ivf-sq8":
                variants += [(f"ivf-sq8+rerank{r}", r) for r in args.rerank]
            search: Callable[[np.ndarray], np.ndarray] | None = None
            for nprobe in args.nprobe:
                if nprobe > nlist:
                    continue
                index.nprobe = nprobe
                for name, rerank in variants:
                    search = _searcher(index, xb, k, rerank)
                    index.parallel_mode = 1  # split one query's probes over the threads (2x at nq=1)
                    lat = time_single_queries(search, xq, args.query_budget_s)
                    extra: dict[str, Any] = {}
                    if args.parallel_mode_0 and rerank == 0:
                        index.parallel_mode = 0  # faiss default: threads only across queries
                        lat0 = time_single_queries(search, xq, args.query_budget_s)
                        extra["p50_ms_pm0"] = lat0["median_ms"]
                        index.parallel_mode = 1
                    found = np.concatenate([search(xq[i : i + 64]) for i in range(0, len(xq), 64)])
                    rows.append(
                        row(
                            name,
                            f"nlist={nlist} nprobe={nprobe}" + (f" rerank {rerank}k" if rerank else ""),
                            n,
                            build_s=train_s + add_s,
                            train_s=train_s,
                            assign_s=assign_s,
                            bytes=size,
                            extra_bytes=xb.nbytes if rerank else 0,
                            rss_delta=rss,
                            recall=recall_at_k(found, gt),
                            nlist=nlist,
                            nlist_factor=factor,
                            nprobe=nprobe,
                            **latency_fields(lat),
                            **extra,
                        )
                    )
            del index, quantizer, search  # the searcher closes over the index
    return rows


def _searcher(index: Any, xb: np.ndarray, k: int, rerank: int) -> Callable[[np.ndarray], np.ndarray]:
    if not rerank:
        return lambda q: index.search(q, k)[1]

    def search(q: np.ndarray) -> np.ndarray:
        """Approximate candidates from SQ8, then exact inner products from the float vectors."""
        _, cand = index.search(q, rerank * k)
        out = np.empty((len(q), k), dtype=np.int64)
        for i, (qi, ci) in enumerate(zip(q, cand, strict=True)):
            ci = ci[ci >= 0]
            scores = xb[ci] @ qi
            out[i] = ci[np.argsort(-scores)[:k]]
        return out

    return search


# ----------------------------------------------------------------------------- the recommendation


def recommend(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The rule the measurements support.

    Exact search while its p95 stays within the latency target (it is linear in N, so the
    limit is extrapolated from the largest measured size); above that, the approximate
    family that meets both targets at the most sizes from the threshold up, ties broken by
    memory and then latency, with its cheapest passing setting at each size.
    """
    sizes = sorted({r["n"] for r in rows})
    flat = {r["n"]: r for r in rows if r["index"] == "flat"}
    largest = max(flat)
    per_vector_ms = flat[largest]["p95_ms"] / largest
    flat_limit = int(args.target_ms / per_vector_ms)
    threshold = _round_down_nice(flat_limit)

    def passes(r: dict[str, Any]) -> bool:
        return r.get("recall") is not None and r["recall"] >= args.target_recall and r["p95_ms"] <= args.target_ms

    families = sorted({r["index"] for r in rows if r["index"] not in ("flat", "numpy-matvec")})
    choice: dict[str, dict[int, dict[str, Any]]] = {}
    for fam in families:
        choice[fam] = {}
        for n in sizes:
            ok = [r for r in rows if r["index"] == fam and r["n"] == n and passes(r)]
            if ok:
                choice[fam][n] = min(ok, key=lambda r: (r["p95_ms"], _memory(r)))

    above = [n for n in sizes if n >= threshold] or sizes[-1:]

    def score(fam: str) -> tuple[int, int, float, float]:
        met = [n for n in above if n in choice[fam]]
        if not met:
            return (0, 0, 0.0, 0.0)
        r = choice[fam][max(met)]
        return (len(met), max(met), -_memory(r), -r["p95_ms"])

    best = max(families, key=score) if families else None
    fastest: dict[str, Any] = {}
    for n in sizes:  # whatever reaches the recall target at each size, fastest first: the measured limit
        meeting = [r for r in rows if r["n"] == n and (r.get("recall") or 0) >= args.target_recall]
        if meeting:
            fastest[str(n)] = _brief(min(meeting, key=lambda r: r["p95_ms"]))
    return {
        "target_ms": args.target_ms,
        "target_recall": args.target_recall,
        "flat_p95_ms_per_million_vectors": per_vector_ms * 1e6,
        "flat_meets_target_up_to_n_extrapolated": flat_limit,
        "flat_meets_target_at_measured_n": [n for n in sizes if n in flat and flat[n]["p95_ms"] <= args.target_ms],
        "switch_threshold_n": threshold,
        "approximate_family": best,
        "sizes_at_or_above_threshold": above,
        "settings_by_n": {str(n): _brief(choice[best].get(n)) for n in above} if best else {},
        "all_families_by_n": {f: {str(n): _brief(r) for n, r in sorted(c.items())} for f, c in choice.items()},
        "fastest_meeting_recall_by_n": fastest,
    }


def _memory(r: dict[str, Any]) -> int:
    return int(r.get("bytes") or 0) + int(r.get("extra_bytes") or 0)


def _brief(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    keys = ("index", "params", "p50_ms", "p95_ms", "recall", "bytes", "extra_bytes", "build_s", "train_s")
    return {key: r.get(key) for key in keys if key in r}


def _round_down_nice(n: int) -> int:
    if n <= 0:
        return 0
    exp = 10 ** math.floor(math.log10(n))
    return max(m * exp for m in (1, 2, 5) if m * exp <= n)


def describe(rec: dict[str, Any]) -> str:
    per_million = rec["flat_p95_ms_per_million_vectors"]
    lines = [
        f"Targets: p95 <= {rec['target_ms']} ms for one query, recall@10 >= {rec['target_recall']}.",
        f"Exact (IndexFlatIP, nq=1) costs ~{per_million:.0f} ms p95 per 10^6 vectors; it meets the latency "
        f"target up to ~{rec['flat_meets_target_up_to_n_extrapolated']:,} vectors.",
    ]
    fam = rec["approximate_family"]
    lines.append(f"RULE: exact (flat) while N < {rec['switch_threshold_n']:,}; above it {fam or 'nothing met both'}:")
    for n, r in rec["settings_by_n"].items():
        if r is None:
            lines.append(f"  N={int(n):>9,}: no measured setting met both targets (see fastest_meeting_recall_by_n)")
            continue
        extra = f" + {mib(r['extra_bytes']):.0f} MiB float vectors" if r.get("extra_bytes") else ""
        lines.append(
            f"  N={int(n):>9,}: {r['params']:<30} p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms, "
            f"recall {r['recall']:.3f}, index {mib(r['bytes']):.0f} MiB{extra}, build {r['build_s']:.1f} s"
        )
    lines.append("Fastest setting of any kind reaching the recall target, per N:")
    for n, r in rec["fastest_meeting_recall_by_n"].items():
        lines.append(
            f"  N={int(n):>9,}: {r['index']} {r['params']}: p95 {r['p95_ms']:.2f} ms, recall {r['recall']:.3f}"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes and grids; under a minute")
    p.add_argument("--sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6], help="corpus sizes N")
    p.add_argument("--max-n", type=int, default=10**6, help="skip sizes above this (memory: ~10 GB at 10^6)")
    p.add_argument("--queries", type=int, default=200, help="queries per size (fresh points, not in the index)")
    p.add_argument("--k", type=int, default=10, help="recall@k and neighbours per query")
    p.add_argument("--threads", type=int, default=2, help="faiss.omp_set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vectors", help="a .npy matrix of real embeddings to sample from instead of synthetic data")
    p.add_argument("--clusters", type=int, default=1000, help="synthetic: mixture components")
    p.add_argument(
        "--points-per-cluster",
        type=int,
        default=0,
        help="synthetic: components = N / this (same local density at every N); 0 = use --clusters",
    )
    p.add_argument("--alpha", type=float, default=1.0, help="synthetic: spectrum decay (variance ~ i**-alpha)")
    p.add_argument("--mean-weight", type=float, default=1.1, help="synthetic: weight of the shared mean direction")
    p.add_argument("--noise", type=float, default=1.1, help="synthetic: within-cluster spread (higher = harder)")
    p.add_argument("--skip", nargs="*", default=[], choices=["flat", "hnsw", "ivf"], help="families to leave out")
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--hnsw-efc", type=int, nargs="+", default=[40], help="efConstruction values")
    p.add_argument("--hnsw-ef", type=int, nargs="+", default=[16, 32, 64, 128, 256], help="efSearch values")
    p.add_argument("--hnsw-max-n", type=int, default=10**6, help="no HNSW above this N")
    p.add_argument(
        "--hnsw-build-budget-s",
        type=float,
        default=300,
        help="stop an HNSW build after this long and extrapolate",
    )
    p.add_argument("--ivf", nargs="+", default=["ivf-flat", "ivf-sq8"], choices=["ivf-flat", "ivf-sq8"])
    p.add_argument("--nlist-factors", type=float, nargs="+", default=[4.0], help="nlist = factor * sqrt(N)")
    p.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256])
    p.add_argument("--rerank", type=int, nargs="*", default=[4], help="IVF-SQ8: re-rank R*k candidates exactly")
    p.add_argument("--train-per-list", type=int, default=40, help="k-means sample = this * nlist vectors")
    p.add_argument("--kmeans-iter", type=int, default=10)
    p.add_argument("--parallel-mode-0", action="store_true", help="also time IVF with faiss' default parallel_mode=0")
    p.add_argument("--query-budget-s", type=float, default=15.0, help="max seconds of timed queries per setting")
    p.add_argument("--target-ms", type=float, default=10.0)
    p.add_argument("--target-recall", type=float, default=0.95)
    p.add_argument("--name", default=None, help="results file name (default bench_faiss[_quick])")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here instead")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = [10**3, 10**4, 2 * 10**4]
        args.queries = min(args.queries, 100)
        args.hnsw_ef = [16, 64, 128]
        args.nprobe = [4, 16, 64]
        args.query_budget_s = 2.0
    args.sizes = sorted(n for n in args.sizes if n <= args.max_n)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    shared = from_file(args.vectors, args.seed) if args.vectors else None
    rows: list[dict[str, Any]] = []
    data_stats: dict[str, Any] = {}
    started = time.perf_counter()
    for n in args.sizes:
        clusters = max(1, n // args.points_per_cluster) if args.points_per_cluster else args.clusters
        gen = shared or make_generator(args.seed, DIM, clusters, args.alpha, args.mean_weight, args.noise)
        xq = gen(args.queries)  # fresh points from the same distribution, not in the index
        t0 = time.perf_counter()
        xb = gen(n)
        gen_s = time.perf_counter() - t0
        sims, gt = faiss.knn(xq, xb, args.k, faiss.METRIC_INNER_PRODUCT)
        sample = xb[: min(n, 2000)]
        half = len(sample) // 2
        data_stats[str(n)] = {
            "generate_s": gen_s,
            "clusters": None if shared else clusters,
            "mean_pair_cos": float((sample[:half] * sample[half : 2 * half]).sum(1).mean()),
            "mean_nn1_cos": float(sims[:, 0].mean()),
            "mean_nn10_cos": float(sims[:, -1].mean()),
            "data_bytes": int(xb.nbytes),
        }
        print(f"\n== N={n:,}  (data {gen_s:.1f}s, {mib(xb.nbytes):.0f} MiB; {data_stats[str(n)]})", flush=True)
        here: list[dict[str, Any]] = []
        if "flat" not in args.skip:
            here += bench_flat(xb, xq, gt, args)
        if "hnsw" not in args.skip and n <= args.hnsw_max_n:
            here += bench_hnsw(xb, xq, gt, args)
        if "ivf" not in args.skip:
            here += bench_ivf(xb, xq, gt, args)
        print(table(here, COLUMNS), flush=True)
        for r in here:
            if r.get("note"):
                print(f"  note {r['index']} {r['params']}: {r['note']}")
        rows += here
        del xb
        trim_memory()
    rec = recommend(rows, args) if any(r["index"] == "flat" for r in rows) else {}
    print("\n== all results")
    print(table(rows, COLUMNS))
    if rec:
        print("\n== recommendation (measured)")
        print(describe(rec))
    payload = {
        "benchmark": "faiss",
        "args": vars(args),
        "machine": machine(),
        "faiss_version": faiss.__version__,
        "data": data_stats,
        "rows": rows,
        "recommendation": rec,
        "total_s": time.perf_counter() - started,
    }
    path = write_result(args.name or ("bench_faiss_quick" if args.quick else "bench_faiss"), payload, args.out)
    print(f"\nwrote {path} ({payload['total_s']:.0f}s)")
    return 0


COLUMNS = [
    ("n", "N"),
    ("index", "index"),
    ("params", "params"),
    ("build_s", "build s"),
    ("bytes_mib", "index MiB"),
    ("rss_mib", "RSS+ MiB"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("recall", "recall@10"),
    ("p50_ms_pm0", "p50 pm0"),
]


if __name__ == "__main__":
    sys.exit(main())
