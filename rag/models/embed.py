"""Embeddings behind a one-method interface.

`sentence_transformers` (and so torch) is imported only inside the adapter, so
chunking, prompts, citations and most tests never pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rag.config import default
from rag.errors import ModelError

Kind = Literal["query", "document"]


def resolve_device(requested: str, cuda_available: bool) -> str:
    """The torch device for RAG_EMBED_DEVICE: ``cpu``, ``cuda`` (a GPU must be usable) or ``auto``.

    >>> resolve_device("auto", cuda_available=False), resolve_device("auto", cuda_available=True)
    ('cpu', 'cuda')
    """
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise ModelError(
            "RAG_EMBED_DEVICE=cuda, but torch sees no usable GPU (a CPU build of torch, or no driver); use cpu or auto"
        )
    if requested not in ("cpu", "cuda"):
        raise ModelError(f"RAG_EMBED_DEVICE={requested!r}: use cpu, cuda or auto")
    return requested


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; ``kind`` selects the model's prompt."""

    model_id: str
    dimension: int

    def embed(
        self, texts: Sequence[str], kind: Kind, *, titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """EmbeddingGemma (or any sentence-transformers folder) on the CPU or a GPU, fully offline."""

    def __init__(
        self,
        path: Path,
        *,
        model_id: str,
        threads: int = default("threads"),
        batch_size: int = default("embed_batch_size"),
        dtype: str = default("embed_dtype"),
        device: str = default("embed_device"),
    ) -> None:
        if not (path / "modules.json").is_file():
            raise ModelError(f"embedding model not found at {path}; run `rag models fetch`")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        device = resolve_device(device, cuda_available=torch.cuda.is_available())
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        if dtype == "bfloat16":
            # bench_ingest.py: 1.5x the chunks/s of float32 on 2 cores, cosine to float32 0.99994, same top-1.
            self._model = self._model.to(torch.bfloat16)
        elif dtype != "float32":
            raise ModelError(f"unknown embedding dtype {dtype!r}; use float32 or bfloat16")
        self._batch_size = batch_size
        self.model_id = model_id
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 0)
        # EmbeddingGemma was trained with task prompts; a folder without them embeds plain text.
        self._prompts: dict[str, str] = dict(getattr(self._model, "prompts", {}) or {})

    def embed(
        self, texts: Sequence[str], kind: Kind, *, titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray:
        """Embed with the model's ``query``/``document`` prompt.

        EmbeddingGemma's document prompt is ``title: none | text: ``; given ``titles`` it
        becomes ``title: <article title> | text: ``, which lifted recall@5 on the gold set
        from 0.933 to 0.967 (dense only, docs/experiments.md).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self._prompts.get(kind, "")
        inputs = list(texts)
        if titles is not None and "title: none" in prompt:
            inputs = [prompt.replace("title: none", f"title: {t}") + x for t, x in zip(titles, texts, strict=True)]
            prompt = ""
        if len(inputs) <= self._batch_size and not progress and hasattr(self._model, "preprocess"):
            vectors = self._forward(inputs, prompt or None)  # a query: one batch
        else:
            vectors = self._model.encode(
                inputs,
                prompt=prompt or None,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        # bfloat16 normalises with 8 bits of mantissa (norms 0.998-1.003): normalise again in float32.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

    def _forward(self, inputs: list[str], prompt: str | None) -> np.ndarray:
        """One batch straight through the model's modules, the steps ``encode`` takes for it.

        bench: a 20-token query takes ~52 ms this way against ~60 ms through ``encode``, whose
        per-call bookkeeping (sorting, batching, progress) buys nothing for one batch.
        """
        import torch
        from sentence_transformers.util import batch_to_device

        features = batch_to_device(self._model.preprocess(inputs, prompt=prompt), self._model.device)
        with torch.inference_mode():
            embedding = self._model.forward(features)["sentence_embedding"]
        return embedding.float().cpu().numpy()

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])


class OnnxEmbedder:
    """The same model as one int8 ONNX graph in ONNX Runtime (`rag.models.onnx_export`); CPU only, no torch.

    Texts are tokenized with the model's own ``tokenizer.json`` (the ids sentence-transformers
    feeds it), sorted by token count so each batch pads to near its own length, and put back in
    input order. bench_ingest.py: about 2x the chunks/s of bfloat16 torch on 2 cores, cosine to
    float32 ~0.98, and the same recall@5 on the gold and held-out sets (docs/experiments.md).
    """

    def __init__(
        self,
        path: Path,
        graph: Path,
        *,
        model_id: str,
        threads: int = default("threads"),
        batch_size: int = default("embed_batch_size"),
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for a damaged file
            raise ModelError(
                f"ONNX Runtime cannot load {graph} ({type(exc).__name__}: {exc}); delete {graph.parent} "
                "to export it again, or use RAG_EMBED_BACKEND=torch"
            ) from exc
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        max_length = _json(path / "sentence_bert_config.json").get("max_seq_length")
        if max_length:
            self._tokenizer.enable_truncation(int(max_length))
        self._tokenizer.no_padding()
        self._prompts: dict[str, str] = dict(_json(path / "config_sentence_transformers.json").get("prompts") or {})
        self._batch_size = batch_size
        self.model_id = model_id
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def embed(
        self, texts: Sequence[str], kind: Kind, *, titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray:
        """Embed with the model's ``query``/``document`` prompt (the title in it, as the torch adapter does)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self._prompts.get(kind, "")
        if titles is not None and "title: none" in prompt:
            inputs = [prompt.replace("title: none", f"title: {t}") + x for t, x in zip(titles, texts, strict=True)]
        else:
            inputs = [prompt + x for x in texts]
        ids = [e.ids for e in self._tokenizer.encode_batch(inputs)]
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        batches = length_sorted_batches([len(row) for row in ids], self._batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="Batches", unit="batch")
        for rows in batches:
            width = max(len(ids[r]) for r in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)  # pad id 0, masked out
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                input_ids[i, : len(ids[r])] = ids[r]
                mask[i, : len(ids[r])] = 1
            out[rows] = self._session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row numbers in batches of similar length, longest first, so little of a batch is padding.

    >>> length_sorted_batches([3, 9, 1, 8, 2], 2)
    [[1, 3], [0, 4], [2]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); run `rag models fetch`") from exc
    return data if isinstance(data, dict) else {}


def load_embedder(
    models_dir: Path,
    name: str,
    *,
    backend: str = default("embed_backend"),
    cache_dir: Path | None = None,
    threads: int = default("threads"),
    batch_size: int = default("embed_batch_size"),
    dtype: str = default("embed_dtype"),
    device: str = default("embed_device"),
) -> Embedder:
    """The embedder for RAG_EMBED_BACKEND: ``onnx-int8`` (exported into ``cache_dir/onnx`` once) or ``torch``."""
    from rag.models import fetch

    if backend not in ("onnx-int8", "torch"):
        raise ModelError(f"RAG_EMBED_BACKEND={backend!r}: use onnx-int8 or torch")
    if backend == "onnx-int8" and device == "cuda":
        raise ModelError("RAG_EMBED_DEVICE=cuda runs only with RAG_EMBED_BACKEND=torch (onnx-int8 is CPU only)")
    if backend == "onnx-int8" and cache_dir is None:
        raise ModelError("the onnx-int8 embedder needs a cache folder for its exported graph (RAG_CACHE_DIR)")
    path = fetch.require(models_dir, name)
    if backend == "torch" or cache_dir is None:
        return SentenceTransformerEmbedder(
            path, model_id=name, threads=threads, batch_size=batch_size, dtype=dtype, device=device
        )
    graph = int8_graph(path, name, cache_dir, threads=threads)
    return OnnxEmbedder(path, graph, model_id=name, threads=threads, batch_size=batch_size)


def int8_graph(model_dir: Path, name: str, cache_dir: Path, *, threads: int = default("threads")) -> Path:
    """The int8 ONNX graph of embedding model ``name`` (files in ``model_dir``), exported into
    ``cache_dir/onnx`` first when it is not there (`rag models fetch` calls this too)."""
    from rag.models import fetch
    from rag.models.onnx_export import ensure_int8_graph

    sha256 = fetch.get_spec(name).sha256
    return ensure_int8_graph(model_dir, cache_dir / "onnx", model_id=name, model_sha256=sha256, threads=threads)
