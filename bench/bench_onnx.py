"""EmbeddingGemma through ONNX Runtime (float32 and dynamic int8) against torch, on the corpus chunks.

Needs packages the project does not depend on, so it runs from its own virtualenv
(see bench/README.md): torch, sentence-transformers (same versions as the project),
onnx, onnxscript and onnxruntime. sentence-transformers' own ``backend="onnx"`` needs
optimum-onnx, which pins transformers < 4.58 while sentence-transformers 6.x needs
transformers >= 5, so the model is exported here with ``torch.onnx.export`` instead:
one graph from token ids to the normalised 768-d vector (transformer, mean pooling,
both Dense layers, normalisation), then quantised with
``onnxruntime.quantization.quantize_dynamic`` (int8 weights, int8 activations per batch),
once over all ops and once selectively (see ``quantize``).

Inputs come from ``bench/bench_ingest.py`` (``bench/results/embedding_inputs.json``: the
exact strings the product embeds, prompt and title included). Exported models are
cached in ``~/.cache/rag/bench-onnx``.

    /tmp/onnx-venv/bin/python bench/bench_onnx.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from _common import RESULTS_DIR, machine, table, write_result


def load_torch_model(path: Path, threads: int, eager: bool = False) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    kwargs = {"model_kwargs": {"attn_implementation": "eager"}} if eager else {}
    return SentenceTransformer(str(path), device="cpu", local_files_only=True, **kwargs)


def export(model: Any, out: Path, opset: int) -> float:
    """One ONNX graph: (input_ids, attention_mask) -> L2-normalised sentence embedding."""
    import torch

    class Wrapper(torch.nn.Module):
        def __init__(self, st: Any) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    wrapper = Wrapper(model).eval()
    enc = model.tokenizer(["title: x | text: ein Satz.", "zwei"], padding=True, return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (enc["input_ids"], enc["attention_mask"]),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=opset,
            dynamo=True,
        )
    return time.perf_counter() - t0


def quantize(src: Path, dst: Path, selective: bool) -> float:
    """Dynamic int8 (weights per channel, activations per batch).

    ``selective``: only MatMuls, and not the MLP down-projections (weight [ffn, hidden],
    ffn > hidden), whose inputs carry Gemma's large activation outliers; the embedding
    table stays float32 too. Costs speed and file size, buys back most of the accuracy.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kwargs: dict[str, Any] = {}
    if selective:
        graph = onnx.load(str(src), load_external_data=False).graph
        shapes = {init.name: list(init.dims) for init in graph.initializer}
        down = [
            node.name
            for node in graph.node
            if node.op_type == "MatMul"
            and len(shapes.get(node.input[1], [])) == 2
            and shapes[node.input[1]][0] > shapes[node.input[1]][1]
        ]
        kwargs = {"op_types_to_quantize": ["MatMul"], "nodes_to_exclude": down}
    t0 = time.perf_counter()
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, **kwargs)
    return time.perf_counter() - t0


def file_bytes(path: Path) -> int:
    """The model file plus any external-data files beside it."""
    total = path.stat().st_size
    for other in path.parent.glob(path.name + "*.data"):
        total += other.stat().st_size
    return total


def ort_embed(session: Any, tokenizer: Any, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """Like SentenceTransformer.encode: longest first, padded per batch, back in input order."""
    order = np.argsort([-len(t) for t in texts])
    out = np.empty((len(texts), 768), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        out[idx] = session.run(["sentence_embedding"], feeds)[0]
    return out


def compare(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = (v * reference).sum(1)
    sa, sb = v @ v.T, reference @ reference.T
    np.fill_diagonal(sa, -2)
    np.fill_diagonal(sb, -2)
    return {
        "cos_mean": float(cos.mean()),
        "cos_min": float(cos.min()),
        "top1_agreement": float((sa.argmax(1) == sb.argmax(1)).mean()),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="first 16 chunks only (export still takes ~1-2 min once)")
    p.add_argument("--inputs", type=Path, default=RESULTS_DIR / "embedding_inputs.json")
    p.add_argument("--model", type=Path, default=Path.home() / ".cache/rag/models/embeddinggemma-300m")
    p.add_argument("--export-dir", type=Path, default=Path.home() / ".cache/rag/bench-onnx")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--repeat", type=int, default=3, help="timed passes over the chunks (best is reported)")
    p.add_argument("--name", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime as ort
    import sentence_transformers
    import torch
    import transformers

    if not args.inputs.is_file():
        raise SystemExit(f"{args.inputs} not found; run `.venv/bin/python bench/bench_ingest.py` first")
    data = json.loads(args.inputs.read_text(encoding="utf-8"))
    texts: list[str] = data["texts"][:16] if args.quick else data["texts"]
    reference_file = RESULTS_DIR / "embedding_inputs_fp32.npy"
    project_vectors = np.load(reference_file)[: len(texts)] if reference_file.is_file() else None

    model = load_torch_model(args.model, args.threads)
    model.max_seq_length = args.max_length

    encode = functools.partial(
        model.encode, texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    encode()  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        reference = encode()
        times.append(time.perf_counter() - t0)
    torch_s = min(times)
    rows: list[dict[str, Any]] = [
        {"variant": "torch fp32 (project default)", "chunks_per_s": len(texts) / torch_s, "speedup": 1.0}
        | compare(reference, reference)
    ]
    if project_vectors is not None:
        rows[0]["cos_vs_project_run"] = compare(reference, project_vectors)["cos_min"]

    fp32 = args.export_dir / "embeddinggemma-300m.onnx"
    int8 = args.export_dir / "embeddinggemma-300m.int8.onnx"
    int8_sel = args.export_dir / "embeddinggemma-300m.int8-selective.onnx"
    prep: dict[str, float] = {}
    if not fp32.is_file():
        eager = load_torch_model(args.model, args.threads, eager=True)
        prep["export_s"] = export(eager, fp32, args.opset)
        del eager
    if not int8.is_file():
        prep["quantize_s"] = quantize(fp32, int8, selective=False)
    if not int8_sel.is_file():
        prep["quantize_selective_s"] = quantize(fp32, int8_sel, selective=True)
    del model

    sessions = (
        ("onnxruntime fp32", fp32),
        ("onnxruntime int8 (dynamic, all ops)", int8),
        ("onnxruntime int8 (MatMul only, MLP down-proj fp32)", int8_sel),
    )
    for label, path in sessions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        t0 = time.perf_counter()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        load_s = time.perf_counter() - t0
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(args.model))
        ort_embed(session, tokenizer, texts[:4], args.batch_size, args.max_length)  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            vectors = ort_embed(session, tokenizer, texts, args.batch_size, args.max_length)
            times.append(time.perf_counter() - t0)
        s = min(times)
        rows.append(
            {
                "variant": label,
                "chunks_per_s": len(texts) / s,
                "speedup": torch_s / s,
                "load_s": load_s,
                "file_mib": file_bytes(path) / 2**20,
            }
            | compare(vectors, reference)
        )
        del session

    cols = [("variant", "variant"), ("chunks_per_s", "chunks/s"), ("speedup", "speed-up")]
    cols += [("cos_mean", "cos mean"), ("cos_min", "cos min"), ("top1_agreement", "NN agree")]
    cols += [("file_mib", "file MiB"), ("load_s", "load s")]
    print(f"== {len(texts)} corpus chunks, batch {args.batch_size}, {args.threads} threads; cosine vs torch fp32")
    print(table(rows, cols))
    payload = {
        "benchmark": "onnx",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": ort.__version__,
            "onnx": __import__("onnx").__version__,
        },
        "chunks": len(texts),
        "prepare": prep,
        "rows": rows,
    }
    path = write_result(args.name or ("bench_onnx_quick" if args.quick else "bench_onnx"), payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
