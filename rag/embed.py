"""Embeddings behind a one-method interface.

`sentence_transformers` (and so torch) is imported only inside the adapter, so
chunking, prompts, citations and most tests never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from rag.errors import ModelError

Kind = Literal["query", "document"]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows; ``kind`` selects the model's prompt."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str], kind: Kind, *, progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


class SentenceTransformerEmbedder:
    """EmbeddingGemma (or any sentence-transformers folder) on the CPU, fully offline."""

    def __init__(self, path: Path, *, model_id: str, threads: int, batch_size: int = 16) -> None:
        if not (path / "modules.json").is_file():
            raise ModelError(f"embedding model not found at {path}; run `rag models fetch`")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self.model_id = model_id
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 0)
        prompts = getattr(self._model, "prompts", {}) or {}
        # EmbeddingGemma was trained with task prompts; a folder without them embeds plain text.
        self._prompt_names = {k: k for k in ("query", "document") if k in prompts}

    def embed(self, texts: Sequence[str], kind: Kind, *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            prompt_name=self._prompt_names.get(kind),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])


def load_embedder(models_dir: Path, name: str, *, threads: int, batch_size: int = 16) -> Embedder:
    from rag import models

    path = models.require(models_dir, name)
    return SentenceTransformerEmbedder(path, model_id=name, threads=threads, batch_size=batch_size)
