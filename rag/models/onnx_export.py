"""EmbeddingGemma as one int8 ONNX graph, exported once from the local model files and cached.

The graph runs the whole sentence-transformers pipeline (Gemma encoder, mean pooling,
both Dense layers, normalisation) from ``(input_ids, attention_mask)`` to the 768-d
vector. It is exported with ``torch.onnx.export`` (sentence-transformers' own ONNX
backend needs optimum-onnx, which cannot be installed beside sentence-transformers 6)
and quantised with ``onnxruntime.quantization.quantize_dynamic``: int8 weights per
output channel, activations quantised per batch at run time.

Nothing is downloaded: the export reads the model folder `rag models fetch` built.
torch, sentence-transformers and onnx are imported only here, only when the cached
graph is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rag.durable import atomic_write_text, fsync_tree
from rag.errors import ModelError, StorageError

# Bumped when the export or the quantisation changes, so an old cached graph is rebuilt, not reused.
EXPORT_VERSION = 2
GRAPH_FILE = "model.onnx"
STAMP_FILE = "export.json"


def cached_graph(cache_root: Path, model_id: str, model_sha256: str) -> Path:
    """Where the int8 graph of this exact model file lives (the hash is part of the folder name)."""
    return cache_root / f"{model_id}-{model_sha256[:12]}-int8-v{EXPORT_VERSION}" / GRAPH_FILE


def ensure_int8_graph(
    model_dir: Path, cache_root: Path, *, model_id: str, model_sha256: str, threads: int, log: Any = None
) -> Path:
    """The cached int8 graph, exported and quantised first if missing (~3-5 min once on 2 cores).

    The work happens in a staging folder renamed into place when complete, so a killed
    export leaves nothing that looks finished; two processes exporting at once both
    succeed and one result is kept.
    """
    graph = cached_graph(cache_root, model_id, model_sha256)
    if graph.is_file() and (graph.parent / STAMP_FILE).is_file():
        return graph
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    staging = graph.parent.with_name(f".{graph.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        started = time.perf_counter()
        say(f"embedding: exporting {model_id} to ONNX once, from {model_dir} (a few minutes; cached in {cache_root})")
        float_graph = staging / "float32.onnx"
        _export(model_dir, float_graph, threads)
        say(f"embedding: exported in {time.perf_counter() - started:.0f} s; fusing norms and GELU")
        fused_graph = staging / "fused.onnx"
        _fuse(float_graph, fused_graph)
        say(f"embedding: fused after {time.perf_counter() - started:.0f} s; quantising to int8")
        _quantize(fused_graph, staging / GRAPH_FILE)
        for leftover in [*staging.glob("float32.onnx*"), *staging.glob("fused.onnx*")]:
            leftover.unlink()
        stamp = {
            "model": model_id,
            "sha256": model_sha256,
            "export_version": EXPORT_VERSION,
            "quantization": "dynamic int8, per channel, 7-bit weights (reduce_range)",
        }
        atomic_write_text(staging / STAMP_FILE, json.dumps(stamp, indent=2) + "\n")
        fsync_tree(staging)
        try:
            os.replace(staging, graph.parent)
        except OSError:
            if not (graph.parent / STAMP_FILE).is_file():  # not another process winning the race
                raise
        say(f"embedding: int8 graph ready in {time.perf_counter() - started:.0f} s -> {graph}")
    except OSError as exc:
        raise StorageError(
            f"cannot write the ONNX export in {cache_root} ({exc.strerror or exc}); free some space or set "
            "RAG_CACHE_DIR, or use RAG_EMBED_BACKEND=torch"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return graph


def _export(model_dir: Path, out: Path, threads: int) -> None:
    """One graph (input_ids, attention_mask) -> sentence_embedding, with dynamic batch and length."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise ModelError(f"exporting the embedding model needs torch and sentence-transformers ({exc})") from exc

    torch.set_num_threads(threads)
    # Eager attention: the SDPA path's mask construction does not trace into an exportable graph.
    model = SentenceTransformer(
        str(model_dir), device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"}
    )

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, st: Any) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    example = model.tokenizer(["title: x | text: ein Satz.", "zwei"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.onnx.export(
            SentenceEmbedding(model).eval(),
            (example["input_ids"], example["attention_mask"]),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=18,
            dynamo=True,
            verbose=False,
        )


def _fuse(src: Path, dst: Path) -> None:
    """RMSNorm subgraphs -> SimplifiedLayerNormalization, tanh GELU -> FastGelu (ONNX Runtime's fusions).

    The exported graph spells each of the 145 RMSNorms as Pow, ReduceMean, Add, Sqrt, Reciprocal
    and two Muls, which ONNX Runtime's own session optimiser leaves alone; those element-wise ops
    took ~45% of an int8 run. Fused: 1.3x the chunks per CPU second, the same vectors (bench_ingest.py).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    # Only the norm and GELU fusions: Gemma's attention (rotary, grouped KV) matches no BERT pattern.
    options.enable_attention = False
    options.enable_embed_layer_norm = False
    options.enable_bias_gelu = False
    model = optimize_model(str(src), model_type="bert", optimization_options=options, opt_level=0)
    model.save_model_to_file(str(dst), use_external_data_format=True)


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # reduce_range: 7-bit weights. ONNX Runtime multiplies uint8 activations by int8 weights; on CPUs
    # without VNNI (AVX2 only) its kernel adds pairs of products in int16, which saturates with full
    # 8-bit weights and ruins the vectors (gold dense R@5 0.785 against 0.97 on an AVX2-only EPYC).
    # 7 bits cannot saturate there and cost nothing measurable where VNNI exists.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
