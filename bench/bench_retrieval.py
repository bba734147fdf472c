"""Retrieval latency on the gold questions: question in, passages out, query embedding included.

    .venv/bin/python bench/bench_retrieval.py [--repeat 3] [--gold eval/gold.jsonl]

Uses the built index (`make index`) and the real EmbeddingGemma. Prints median and p95 per stage
(query embedding, dense search, keyword search, end to end) and writes bench/results/retrieval.json.

Then, alternating per question in the same run, the query embedding as the pipeline does it (one
batch straight through the model's modules) against `SentenceTransformer.encode` with the same
prompt and settings, which the pipeline used before; the ratio is the median of per-query ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.evaluation.gold import load_gold  # noqa: E402
from rag.evaluation.retrieval_metrics import percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    parser.add_argument("--repeat", type=int, default=3, help="passes over all questions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()
    settings = Settings()
    retriever = wiring.open_retriever(settings)
    questions = [i.standalone_question for i in load_gold(args.gold)]
    retriever.search(questions[0])  # warm-up
    stages: dict[str, list[float]] = {"end_to_end": []}
    for _ in range(args.repeat):
        for q in questions:
            t = time.perf_counter()
            retriever.search(q)
            stages["end_to_end"].append(time.perf_counter() - t)
            for stage, seconds in retriever.last_timings.items():
                stages.setdefault(stage, []).append(seconds)
    rows = {
        s: {"median_ms": 1000 * statistics.median(v), "p95_ms": 1000 * percentile(v, 0.95), "n": len(v)}
        for s, v in stages.items()
    }
    print(f"retrieval over {len(questions)} gold questions x {args.repeat}, {len(retriever.index.chunks)} chunks")
    print(f"{'stage':16} {'median ms':>10} {'p95 ms':>10}")
    for stage, r in rows.items():
        print(f"{stage:16} {r['median_ms']:10.1f} {r['p95_ms']:10.1f}")
    shortcut = compare_with_encode(retriever.embedder, questions, args.repeat)
    print(
        f"query embedding, alternating per question: pipeline median {shortcut['pipeline_median_ms']:.1f} ms, "
        f"encode() {shortcut['encode_median_ms']:.1f} ms, per-query ratio {shortcut['ratio']:.3f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"chunks": len(retriever.index.chunks), "stages": rows, "query_embedding_vs_encode": shortcut}
    args.out.write_text(json.dumps(payload, indent=2))


def compare_with_encode(embedder: Any, questions: list[str], repeat: int) -> dict[str, float]:
    model, prompt = embedder._model, embedder._prompts.get("query") or None  # bench-only peek

    def encode(q: str) -> Any:
        return model.encode([q], prompt=prompt, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            embedder.embed([q], "query")
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            encode(q)
            theirs.append(time.perf_counter() - t)
    return {
        "pipeline_median_ms": 1000 * statistics.median(ours),
        "encode_median_ms": 1000 * statistics.median(theirs),
        "ratio": statistics.median(a / b for a, b in zip(ours, theirs, strict=True)),
    }


if __name__ == "__main__":
    main()
