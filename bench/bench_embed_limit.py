"""How fast can this CPU embed chunks at all? The matrix products of EmbeddingGemma, alone.

    .venv/bin/python bench/bench_embed_limit.py [--batch 16] [--repeat 3]

Issue 8 targets 30 chunks/s for ingestion; the pipeline embeds 13 chunks/s in bfloat16
(bench_ingest.py). This script asks whether any float32 or bfloat16 implementation could do
better on this machine. It takes the real corpus chunks as the model sees them (title prompt
included), and for one batch runs, back to back, one `torch.mm` per linear layer of the model
with that layer's weight shape and the batch's token count, nothing else: no attention, no norms,
no Python around a model. That is less work than the model does, so its chunks/s is a ceiling.
It then embeds the same chunks with the project's embedder and prints both, with the
throughput (GFLOP/s) each reaches. Writes bench/results/embed_limit.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine, table, write_result  # noqa: E402
from bench_ingest import embed_chunks, model_inputs  # noqa: E402

from rag import wiring  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.models import fetch  # noqa: E402
from rag.models.embed import SentenceTransformerEmbedder  # noqa: E402


def linear_shapes(model: Any) -> list[tuple[int, int]]:
    """(in, out) of every linear layer the model runs per token (the pooled Dense layers excluded)."""
    import torch

    transformer = model[0].auto_model
    return [(m.in_features, m.out_features) for m in transformer.modules() if isinstance(m, torch.nn.Linear)]


def matmul_seconds(shapes: list[tuple[int, int]], rows: int, dtype: Any, repeat: int) -> float:
    """Fastest of ``repeat`` runs of every layer's product for ``rows`` tokens, in ``dtype``."""
    import torch

    weights = [torch.randn(o, i).to(dtype) for i, o in shapes]
    inputs = {i: torch.randn(rows, i).to(dtype) for i, _ in shapes}
    times = []
    with torch.inference_mode():
        for _ in range(repeat + 1):
            started = time.perf_counter()
            for (i, _), w in zip(shapes, weights, strict=True):
                torch.nn.functional.linear(inputs[i], w)
            times.append(time.perf_counter() - started)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="chunks per batch (the pipeline's default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed_limit.json")
    args = parser.parse_args()

    import torch

    settings = Settings()
    torch.set_num_threads(settings.threads)
    chunks = wiring.open_index(settings).chunks
    rows: list[dict[str, Any]] = []
    for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        path = fetch.require(settings.models_path, settings.embedding_model)
        embedder = SentenceTransformerEmbedder(path, model_id=settings.embedding_model, threads=settings.threads,
                                               batch_size=args.batch, dtype=dtype_name)  # fmt: skip
        model = embedder._model
        tokens = [len(model.tokenizer(x)["input_ids"]) for x in model_inputs(embedder, chunks)]
        shapes = linear_shapes(model)
        flops_per_token = 2 * sum(i * o for i, o in shapes)
        mean_tokens = statistics.mean(tokens)
        batch_rows = round(mean_tokens * args.batch)
        mm = matmul_seconds(shapes, batch_rows, dtype, args.repeat)
        ceiling = args.batch / mm
        embed_chunks(embedder, chunks[: args.batch])  # warm-up
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            embed_chunks(embedder, chunks)
            runs.append(time.perf_counter() - started)
        real = len(chunks) / min(runs)
        rows.append({
            "dtype": dtype_name, "mean_tokens": mean_tokens, "gflop_per_chunk": flops_per_token * mean_tokens / 1e9,
            "matmul_only_chunks_per_s": ceiling, "matmul_gflops": flops_per_token * batch_rows / mm / 1e9,
            "model_chunks_per_s": real, "model_gflops": flops_per_token * sum(tokens) / min(runs) / 1e9,
            "share_of_ceiling": real / ceiling,
        })  # fmt: skip
        print(f"{dtype_name}: {len(shapes)} linear layers, {flops_per_token / 1e6:.0f} MFLOP per token", flush=True)
    print()
    print(table(rows, [("dtype", "dtype"), ("mean_tokens", "tokens per chunk"), ("gflop_per_chunk", "GFLOP/chunk"),
                       ("matmul_only_chunks_per_s", "matmuls alone: chunks/s"), ("matmul_gflops", "GFLOP/s"),
                       ("model_chunks_per_s", "embedder: chunks/s"), ("model_gflops", "GFLOP/s"),
                       ("share_of_ceiling", "embedder / matmuls")]))  # fmt: skip
    out = write_result("embed_limit", {"machine": machine(), "batch": args.batch, "rows": rows}, args.out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
