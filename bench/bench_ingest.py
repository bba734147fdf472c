"""Ingestion throughput: load, clean, chunk, embed (EmbeddingGemma on the CPU) and write the index.

(a) the real corpus through the real pipeline (`rag.wiring` components and
    `rag.retrieval.store.update_index`, the same calls `rag index` makes), per stage;
(b) a synthetic corpus of ~10,000 chunks (sentences of the real corpus shuffled into
    many documents): chunking and index writing measured in full, embedding measured
    on a sample and extrapolated (``--full`` embeds everything);
(c) embedding throughput by batch size and by chunk length (``chunk_tokens``);
(d) speed-ups that need no new package (bf16 weights, dynamic int8 Linear layers),
    each with its cosine similarity to the default float32 embeddings;
(e) the embedding backends (RAG_EMBED_BACKEND: torch, the float path, and onnx-int8, the
    default) interleaved in one run: median chunks/s, chunks per CPU second, their ratio.

It also writes ``bench/results/embedding_inputs.json`` (the exact model inputs for the
corpus chunks) for ``bench/bench_onnx.py``.

    .venv/bin/python bench/bench_ingest.py            # about 5 min on 2 free cores
    .venv/bin/python bench/bench_ingest.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _common import RESULTS_DIR, machine, table, write_result

from rag import wiring
from rag.config import Settings
from rag.ingest.chunk import split_sentences
from rag.ingest.clean import clean
from rag.ingest.load import load_documents
from rag.language import detect_language
from rag.models.embed import SentenceTransformerEmbedder
from rag.retrieval.store import update_index
from rag.types import Chunk, Document

TARGET_CHUNKS_PER_S = 30.0


class Stopwatch:
    """Wraps a function and adds up the wall and CPU seconds spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.cpu_seconds += time.process_time() - c0
                self.calls += 1

        return timed

    @property
    def cores(self) -> float | None:
        """CPU seconds per wall second: ~2 for torch on 2 free cores, less when others compete."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else None


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, cores busy on average) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall = time.perf_counter() - t0
    return out, wall, (time.process_time() - c0) / wall


def rate(count: float, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def embed_chunks(embedder: Any, chunks: Sequence[Chunk]) -> np.ndarray:
    """What `wiring.index_documents` does with a chunk list: document prompt with the article title."""
    return embedder.embed([c.text for c in chunks], "document", titles=[c.title for c in chunks])


def model_inputs(embedder: Any, chunks: Sequence[Chunk]) -> list[str]:
    """The exact strings the model sees for these chunks (document prompt with the title)."""
    prompt = embedder._prompts.get("document", "")  # bench-only peek, mirrors SentenceTransformerEmbedder.embed
    return [prompt.replace("title: none", f"title: {c.title}") + c.text for c in chunks]


# ----------------------------------------------------------------------------- (a) real corpus


def bench_real(settings: Settings, embedder: Any, corpus: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    documents, skipped = load_documents([corpus])
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chunk_fn = wiring.chunker(settings)  # loads the tokenizer that counts chunk tokens
    chunker_setup_s = time.perf_counter() - t0
    chunk_w, embed_w, lang_w = Stopwatch(), Stopwatch(), Stopwatch()
    t0 = time.perf_counter()
    report = update_index(
        settings.index_dir,
        wiring.index_config(settings),
        documents,
        chunk=chunk_w.wrap(chunk_fn),
        embed=embed_w.wrap(lambda chunks: embed_chunks(embedder, chunks)),
        detect_lang=lang_w.wrap(detect_language),
        rebuild=True,
    )
    update_s = time.perf_counter() - t0
    write_s = update_s - chunk_w.seconds - embed_w.seconds - lang_w.seconds
    prep_s = load_s + chunker_setup_s + chunk_w.seconds + lang_w.seconds
    total_s = load_s + chunker_setup_s + update_s
    n = report.chunks
    tokens = _index_tokens(settings)
    return {
        "documents": len(documents),
        "skipped": [str(p) for p, _ in skipped],
        "chunks": n,
        "chunk_tokens_total": tokens,
        "mean_tokens_per_chunk": tokens / n if n else None,
        "stages": [
            {"stage": "load+clean+chunk (+lang)", "seconds": prep_s, "chunks_per_s": rate(n, prep_s)},
            {
                "stage": "embed",
                "seconds": embed_w.seconds,
                "chunks_per_s": rate(n, embed_w.seconds),
                "cores": embed_w.cores,
            },
            {"stage": "write (faiss+bm25+jsonl+fsync)", "seconds": write_s, "chunks_per_s": rate(n, write_s)},
            {
                "stage": "whole run (model load excluded)",
                "seconds": total_s,
                "chunks_per_s": rate(n, total_s),
            },
        ],
        "detail_s": {
            "load": load_s,
            "chunker_setup": chunker_setup_s,
            "clean+chunk": chunk_w.seconds,
            "language": lang_w.seconds,
            "embed": embed_w.seconds,
            "update_index": update_s,
        },
    }


def _index_tokens(settings: Settings) -> int:
    return int(wiring.open_index(settings).manifest["counts"]["tokens"])


# ----------------------------------------------------------------------------- (b) synthetic corpus


def sentence_pool(documents: Sequence[Document]) -> tuple[list[str], list[str]]:
    """Cleaned sentences and titles of the real corpus."""
    sentences: list[str] = []
    for doc in documents:
        for span in clean(doc.text):
            for s in split_sentences(doc.text, span):
                text = doc.text[s.start : s.end].strip()
                if len(text) >= 20:
                    sentences.append(" ".join(text.split()))
    return sentences, [d.title for d in documents]


def write_synthetic(folder: Path, n_docs: int, sentences: list[str], titles: list[str], seed: int) -> None:
    """Documents of 10-30 shuffled corpus sentences in paragraphs of 2-5, each under its own heading."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        picked = rng.sample(sentences, rng.randint(10, min(30, len(sentences))))
        paragraphs, j = [], 0
        while j < len(picked):
            step = rng.randint(2, 5)
            paragraphs.append(" ".join(picked[j : j + step]))
            j += step
        title = f"{rng.choice(titles)[:70]} (Teil {i})"
        (folder / f"synth_{i:06d}.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


def bench_synthetic(
    settings: Settings, embedder: Any, real_docs: Sequence[Document], args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    sentences, titles = sentence_pool(real_docs)
    chunk_fn = wiring.chunker(settings)
    # Calibrate documents per chunk on a few throw-away documents, then write the corpus.
    probe = tmp / "probe"
    write_synthetic(probe, 20, sentences, titles, args.seed + 99)
    per_doc = sum(len(chunk_fn(d)) for d in load_documents([probe])[0]) / 20
    n_docs = max(1, round(args.synthetic_chunks / per_doc))
    folder = tmp / "synthetic"
    t0 = time.perf_counter()
    write_synthetic(folder, n_docs, sentences, titles, args.seed)
    generate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    documents, _ = load_documents([folder])
    load_s = time.perf_counter() - t0
    chunks: dict[str, list[Chunk]] = {}
    langs: dict[str, str] = {}
    t0 = time.perf_counter()
    for doc in documents:
        chunks[doc.doc_id] = chunk_fn(doc)
    chunk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for doc in documents:
        langs[doc.doc_id] = detect_language(doc.text[:2000])
    lang_s = time.perf_counter() - t0
    all_chunks = [c for doc in documents for c in chunks[doc.doc_id]]
    n = len(all_chunks)
    tokens = sum(c.n_tokens for c in all_chunks)

    # Embedding: a random sample, extrapolated; or everything with --full.
    rng = random.Random(args.seed)
    sample = all_chunks if args.full else rng.sample(all_chunks, min(args.sample, n))
    embed_chunks(embedder, sample[: min(8, len(sample))])  # warm-up, not timed
    sample_vectors, embed_s, embed_cores = timed(lambda: embed_chunks(embedder, sample))
    embed_rate = len(sample) / embed_s
    embed_total_s = embed_s if args.full else n / embed_rate

    # Index writing: the real update_index with chunking and embedding answered from what is done.
    if args.full:
        vectors = sample_vectors
    else:
        vectors = np.random.default_rng(args.seed).standard_normal((n, embedder.dimension), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    row_of = {c.chunk_id: i for i, c in enumerate(all_chunks)}
    lang_of = {doc.text[:2000]: langs[doc.doc_id] for doc in documents}
    write_settings = settings.model_copy(update={"index_dir": tmp / "synthetic-index"})
    t0 = time.perf_counter()
    update_index(
        write_settings.index_dir,
        wiring.index_config(write_settings),
        documents,
        chunk=lambda doc: chunks[doc.doc_id],
        embed=lambda cs: vectors[[row_of[c.chunk_id] for c in cs]],
        detect_lang=lambda text: lang_of[text],
        rebuild=True,
    )
    write_s = time.perf_counter() - t0
    prep_s = load_s + chunk_s + lang_s
    whole_s = prep_s + embed_total_s + write_s
    embed_label = "embed (all chunks)" if args.full else f"embed (EXTRAPOLATED from {len(sample)} sampled chunks)"
    return {
        "documents": len(documents),
        "chunks": n,
        "chunk_tokens_total": tokens,
        "mean_tokens_per_chunk": tokens / n,
        "generate_corpus_s": generate_s,
        "embedded_sample": len(sample),
        "embedding_extrapolated": not args.full,
        "sample_mean_tokens": float(np.mean([c.n_tokens for c in sample])),
        "stages": [
            {"stage": "load", "seconds": load_s, "chunks_per_s": rate(n, load_s)},
            {"stage": "clean+chunk", "seconds": chunk_s, "chunks_per_s": rate(n, chunk_s)},
            {"stage": "language", "seconds": lang_s, "chunks_per_s": rate(n, lang_s)},
            {"stage": "load+clean+chunk (+lang)", "seconds": prep_s, "chunks_per_s": rate(n, prep_s)},
            {
                "stage": embed_label,
                "seconds": embed_total_s,
                "chunks_per_s": embed_rate,
                "cores": embed_cores,
            },
            {"stage": "write (faiss+bm25+jsonl+fsync)", "seconds": write_s, "chunks_per_s": rate(n, write_s)},
            {
                "stage": "whole run" + ("" if args.full else " (embedding extrapolated)"),
                "seconds": whole_s,
                "chunks_per_s": rate(n, whole_s),
            },
        ],
    }


# ----------------------------------------------------------------------------- (c) + (d) embedding


def best_of(runs: dict[Any, list[tuple[float, float]]], key: Any) -> tuple[float, float]:
    """The fastest of the (seconds, cores) runs of one setting: the least disturbed by other load."""
    return min(runs[key])


def bench_batch_sizes(
    embedder: Any, chunks: Sequence[Chunk], sizes: Sequence[int], repeat: int
) -> list[dict[str, Any]]:
    """Settings are interleaved (A B C A B C) so a burst of outside load hits all of them alike."""
    tokens = sum(c.n_tokens for c in chunks)
    saved = embedder._batch_size  # bench-only: the adapter takes its batch size at construction
    embed_chunks(embedder, chunks[:8])
    runs: dict[Any, list[tuple[float, float]]] = {bs: [] for bs in sizes}
    for _ in range(repeat):
        for bs in sizes:
            embedder._batch_size = bs
            _, s, cores = timed(lambda: embed_chunks(embedder, chunks))
            runs[bs].append((s, cores))
    embedder._batch_size = saved
    rows = []
    for bs in sizes:
        s, cores = best_of(runs, bs)
        rows.append(
            {
                "batch_size": bs,
                "cores": cores,
                "chunks": len(chunks),
                "seconds": s,
                "chunks_per_s": len(chunks) / s,
                "tokens_per_s": tokens / s,
                "runs_s": [r[0] for r in runs[bs]],
            }
        )
    return rows


def bench_chunk_lengths(
    settings: Settings, embedder: Any, documents: Sequence[Document], lengths: Sequence[int], repeat: int
) -> list[dict[str, Any]]:
    by_length = {}
    for tokens in lengths:
        chunk_fn = wiring.chunker(settings.model_copy(update={"chunk_tokens": tokens}))
        by_length[tokens] = [c for d in documents for c in chunk_fn(d)]
    runs: dict[Any, list[tuple[float, float]]] = {t: [] for t in lengths}
    embed_chunks(embedder, by_length[lengths[0]][:4])
    for _ in range(repeat):
        for tokens in lengths:
            _, s, cores = timed(functools.partial(embed_chunks, embedder, by_length[tokens]))
            runs[tokens].append((s, cores))
    rows = []
    for tokens in lengths:
        chunks = by_length[tokens]
        s, cores = best_of(runs, tokens)
        total = sum(c.n_tokens for c in chunks)
        rows.append(
            {
                "chunk_tokens": tokens,
                "cores": cores,
                "chunks": len(chunks),
                "mean_tokens": total / len(chunks),
                "seconds_whole_corpus": s,
                "chunks_per_s": len(chunks) / s,
                "tokens_per_s": total / s,
                "runs_s": [r[0] for r in runs[tokens]],
            }
        )
    return rows


def bench_variants(
    settings: Settings,
    chunks: Sequence[Chunk],
    baseline: np.ndarray,
    baseline_s: float,
    baseline_cores: float,
    variants: Sequence[str],
    repeat: int,
) -> list[dict[str, Any]]:
    """Speed-ups with what is installed; each compared with the float32 vectors of the same chunks."""
    import torch

    rows: list[dict[str, Any]] = [
        {
            "variant": "torch-fp32 (default)",
            "cores": baseline_cores,
            "chunks_per_s": len(chunks) / baseline_s,
            "speedup": 1.0,
            "cos_mean": 1.0,
            "cos_min": 1.0,
        }
    ]
    path = settings.models_path / settings.embedding_model
    for name in variants:
        emb = SentenceTransformerEmbedder(
            path, model_id=name, threads=settings.threads, batch_size=settings.embed_batch_size
        )
        model = emb._model  # bench-only: swap the weights, keep the adapter's prompt handling
        try:
            if name == "torch-bf16":
                emb._model = model.to(torch.bfloat16)
            elif name == "torch-int8-dynamic":
                emb._model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            else:
                raise SystemExit(f"unknown variant {name!r}")
            embed_chunks(emb, chunks[:4])
            vectors, s, cores = min(
                (timed(functools.partial(embed_chunks, emb, chunks)) for _ in range(repeat)), key=lambda r: r[1]
            )
            vectors = vectors.astype(np.float32)
        except (RuntimeError, AttributeError, NotImplementedError) as exc:  # a backend without the kernel
            rows.append({"variant": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        cos = (vectors * baseline).sum(1) / np.linalg.norm(vectors, axis=1)
        rows.append(
            {
                "variant": name,
                "cores": cores,
                "chunks_per_s": len(chunks) / s,
                "speedup": baseline_s / s,
                "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()),
                "top1_agreement": _top1_agreement(vectors, baseline),
            }
        )
        del emb, model
    return rows


def _top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of chunks whose nearest other chunk is the same under both embeddings."""
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -2)
    np.fill_diagonal(sb, -2)
    return float((sa.argmax(1) == sb.argmax(1)).mean())


# ----------------------------------------------------------------------------- (e) backends


def bench_backends(
    settings: Settings, chunks: Sequence[Chunk], backends: Sequence[str], repeat: int
) -> list[dict[str, Any]]:
    """Each RAG_EMBED_BACKEND as `rag index` loads it, interleaved (A B A B ...) over the corpus chunks.

    On a shared machine the wall-clock rate moves with the other jobs; interleaving makes both
    paths meet the same load, so their ratio holds. ``chunks_per_cpu_s`` (chunks per CPU second of
    this process) is steadier still: x threads is what free cores would give, at best.
    """
    embedders = {}
    for backend in backends:
        t0 = time.perf_counter()
        embedders[backend] = wiring.embedder(settings.model_copy(update={"embed_backend": backend}))
        embed_chunks(embedders[backend], chunks[:8])  # warm-up, not timed
        print(f"  {backend}: loaded in {time.perf_counter() - t0:.1f} s (excluded)", flush=True)
    runs: dict[str, list[tuple[float, float]]] = {b: [] for b in backends}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for backend in backends:
            t0, c0 = time.perf_counter(), time.process_time()
            vectors[backend] = embed_chunks(embedders[backend], chunks)
            runs[backend].append((time.perf_counter() - t0, time.process_time() - c0))
    reference = vectors[backends[0]]
    rows = []
    for backend in backends:
        wall = float(np.median([r[0] for r in runs[backend]]))
        cpu = float(np.median([r[1] for r in runs[backend]]))
        cos = (vectors[backend] * reference).sum(1)
        rows.append(
            {
                "backend": backend,
                "chunks_per_s": len(chunks) / wall,
                "chunks_per_cpu_s": len(chunks) / cpu,
                "cores": cpu / wall,
                "runs_s": [round(r[0], 2) for r in runs[backend]],
                "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()),
                "top1_agreement": _top1_agreement(vectors[backend], reference),
            }
        )
    base = rows[0]
    for row in rows:
        row["ratio"] = row["chunks_per_s"] / base["chunks_per_s"]
        row["ratio_cpu"] = row["chunks_per_cpu_s"] / base["chunks_per_cpu_s"]
    return rows


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="real corpus + a small synthetic run; under a minute")
    p.add_argument("--full", action="store_true", help="embed every synthetic chunk instead of extrapolating")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: Settings.corpus_dir)")
    p.add_argument("--synthetic-chunks", type=int, default=10_000, help="size of the synthetic corpus")
    p.add_argument("--sample", type=int, default=200, help="synthetic chunks embedded to extrapolate from")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--batch-size", type=int, default=16, help="batch size of the pipeline runs (a) and (b)")
    p.add_argument("--batch-sizes", type=int, nargs="*", default=[8, 16, 32], help="(c) batch sizes")
    p.add_argument("--chunk-tokens", type=int, nargs="*", default=[64, 160, 256], help="(c) chunk lengths")
    p.add_argument(
        "--variants",
        nargs="*",
        default=["torch-bf16", "torch-int8-dynamic"],
        choices=["torch-bf16", "torch-int8-dynamic"],
        help="(d) speed-ups without new packages",
    )
    p.add_argument(
        "--backends",
        nargs="*",
        default=["torch", "onnx-int8"],
        choices=["torch", "onnx-int8"],
        help="(e) RAG_EMBED_BACKEND values timed interleaved; the first is the reference for ratio and cosine",
    )
    p.add_argument(
        "--skip", nargs="*", default=[], choices=["real", "synthetic", "batch", "length", "variants", "backends"]
    )
    p.add_argument("--repeat", type=int, default=2, help="(c), (d): runs per setting, the fastest is reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="results file name (default bench_ingest[_quick])")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here instead")
    args = p.parse_args(argv)
    if args.quick:
        args.synthetic_chunks = min(args.synthetic_chunks, 1000)
        args.sample = min(args.sample, 24)
        args.batch_sizes = []
        args.chunk_tokens = []
        args.variants = []
    return args


STAGE_COLUMNS = [("stage", "stage"), ("seconds", "seconds"), ("chunks_per_s", "chunks/s"), ("cores", "cores")]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rag-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(index_dir=tmp / "index", threads=args.threads, embed_batch_size=args.batch_size)
        corpus = args.corpus or settings.corpus_dir
        t0 = time.perf_counter()
        embedder = wiring.embedder(settings)
        load_model_s = time.perf_counter() - t0
        print(
            f"model load {load_model_s:.1f}s (excluded from throughput); torch threads {args.threads}",
            flush=True,
        )
        result: dict[str, Any] = {
            "benchmark": "ingest",
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine(),
            "model_load_s": load_model_s,
            "target_chunks_per_s": TARGET_CHUNKS_PER_S,
        }
        real_docs, _ = load_documents([corpus])
        if "real" not in args.skip:
            real = bench_real(settings, embedder, corpus)
            result["real"] = real
            print(
                f"\n== (a) real corpus {corpus}: {real['documents']} documents, {real['chunks']} chunks, "
                f"{real['mean_tokens_per_chunk']:.0f} tokens/chunk (chunk_tokens={settings.chunk_tokens})"
            )
            print(table(real["stages"], STAGE_COLUMNS), flush=True)
        chunk_fn = wiring.chunker(settings)
        corpus_chunks = [c for d in real_docs for c in chunk_fn(d)]
        if "synthetic" not in args.skip:
            synth = bench_synthetic(settings, embedder, real_docs, args, tmp)
            result["synthetic"] = synth
            print(
                f"\n== (b) synthetic corpus: {synth['documents']} documents, {synth['chunks']} chunks, "
                f"{synth['mean_tokens_per_chunk']:.0f} tokens/chunk"
            )
            print(table(synth["stages"], STAGE_COLUMNS), flush=True)
        if "batch" not in args.skip and args.batch_sizes:
            rows = bench_batch_sizes(embedder, corpus_chunks, args.batch_sizes, args.repeat)
            result["batch_sizes"] = rows
            print(f"\n== (c) batch size (real corpus chunks, {args.threads} torch threads)")
            cols = [("batch_size", "batch"), ("chunks", "chunks"), ("seconds", "s")]
            print(
                table(
                    rows,
                    [*cols, ("chunks_per_s", "chunks/s"), ("tokens_per_s", "tokens/s"), ("cores", "cores")],
                ),
                flush=True,
            )
        if "length" not in args.skip and args.chunk_tokens:
            rows = bench_chunk_lengths(settings, embedder, real_docs, args.chunk_tokens, args.repeat)
            result["chunk_lengths"] = rows
            print(f"\n== (c) chunk length (real corpus re-chunked, batch {args.batch_size})")
            cols = [("chunk_tokens", "chunk_tokens"), ("chunks", "chunks"), ("mean_tokens", "mean tok")]
            cols += [
                ("seconds_whole_corpus", "corpus s"),
                ("chunks_per_s", "chunks/s"),
                ("tokens_per_s", "tok/s"),
                ("cores", "cores"),
            ]
            print(table(rows, cols), flush=True)
        if ("variants" not in args.skip and args.variants) or args.quick:
            # float32 reference vectors: for the variants here and for bench_onnx.py
            baseline, baseline_s, baseline_cores = min(
                (timed(lambda: embed_chunks(embedder, corpus_chunks)) for _ in range(args.repeat)),
                key=lambda r: r[1],
            )
            _save_inputs(embedder, corpus_chunks, baseline, baseline_s, args.batch_size)
        if "variants" not in args.skip and args.variants:
            del embedder
            rows = bench_variants(
                settings, corpus_chunks, baseline, baseline_s, baseline_cores, args.variants, args.repeat
            )
            result["variants"] = rows
            print("\n== (d) speed-ups without new packages (real corpus chunks; cosine vs float32)")
            cols = [("variant", "variant"), ("chunks_per_s", "chunks/s"), ("speedup", "speed-up")]
            cols += [
                ("cos_mean", "cos mean"),
                ("cos_min", "cos min"),
                ("top1_agreement", "NN agree"),
                ("cores", "cores"),
                ("error", "error"),
            ]
            print(table(rows, cols), flush=True)
        if "backends" not in args.skip and args.backends:
            print(f"\n== (e) backends, interleaved x{args.repeat} (real corpus chunks; medians; cosine vs the first)")
            rows = bench_backends(settings, corpus_chunks, args.backends, args.repeat)
            result["backends"] = rows
            cols = [("backend", "backend"), ("chunks_per_s", "chunks/s"), ("ratio", "ratio")]
            cols += [("chunks_per_cpu_s", "chunks/CPU s"), ("ratio_cpu", "ratio (CPU)"), ("cores", "cores")]
            cols += [("cos_mean", "cos mean"), ("cos_min", "cos min"), ("top1_agreement", "NN agree")]
            print(table(rows, cols), flush=True)
    result["total_s"] = time.perf_counter() - started
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _verdict(result)
    path = write_result(args.name or ("bench_ingest_quick" if args.quick else "bench_ingest"), result, args.out)
    print(f"\nwrote {path} ({result['total_s']:.0f}s)")
    return 0


def _save_inputs(embedder: Any, chunks: Sequence[Chunk], vectors: np.ndarray, seconds: float, batch: int) -> None:
    """The corpus chunks as the model sees them, plus their float32 vectors, for bench_onnx.py."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    np.save(RESULTS_DIR / "embedding_inputs_fp32.npy", vectors)
    write_result(
        "embedding_inputs",
        {
            "texts": model_inputs(embedder, chunks),
            "n_tokens": [c.n_tokens for c in chunks],
            "torch_fp32_seconds": seconds,
            "batch_size": batch,
        },
    )


def _verdict(result: dict[str, Any]) -> None:
    rates = {}
    for part in ("real", "synthetic"):
        if part in result:
            stages = {s["stage"].split(" (")[0]: s["chunks_per_s"] for s in result[part]["stages"]}
            rates[part] = {"embed": stages.get("embed"), "whole run": stages.get("whole run")}
    result["verdict"] = rates
    print(f"\n== target >= {TARGET_CHUNKS_PER_S:.0f} chunks/s on 2 cores")
    for row in result.get("backends", []):
        ok = "meets" if row["chunks_per_s"] >= TARGET_CHUNKS_PER_S else "MISSES"
        print(
            f"  embedding, {row['backend']}: {row['chunks_per_s']:.1f} chunks/s on {row['cores']:.2f} busy cores "
            f"({row['chunks_per_cpu_s']:.1f} per CPU second): {ok} the target"
        )
    for part, r in rates.items():
        whole, embed = r["whole run"], r["embed"]
        ok = "meets" if whole and whole >= TARGET_CHUNKS_PER_S else "MISSES"
        print(f"  {part}: whole run {whole:.1f} chunks/s, embedding {embed:.1f} chunks/s: {ok} the target")


if __name__ == "__main__":
    sys.exit(main())
