"""Deterministic stand-ins for the models, for fast tests. `test_contracts.py` holds them to the real ones."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEmbedder:
    """Hashed bag of words: texts sharing words are close, the same text always gives the same vector."""

    model_id = "fake"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.calls: list[tuple[int, str]] = []

    def embed(
        self, texts: Sequence[str], kind: str, *, titles: Sequence[str] | None = None, progress: bool = False
    ) -> np.ndarray:
        self.calls.append((len(texts), kind))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))
