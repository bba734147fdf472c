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


class FakeGenerator:
    """Answers by copying the first sentence of the passage sharing most words with the question.

    With ``script`` it replays fixed replies in order instead (to test grounding and refusals).
    """

    model_id = "fake-llm"

    def __init__(self, script: Sequence[str] = ()) -> None:
        from rag.generate import Usage

        self.script = list(script)
        self.calls: list[list[dict[str, str]]] = []
        self.last_usage = Usage()

    def stream(self, messages, settings):  # type: ignore[no-untyped-def]
        from rag.generate import Usage

        self.calls.append(list(messages))
        reply = self.script.pop(0) if self.script else self._copy_best(messages[-1]["content"])
        pieces = re.findall(r"\S+\s*", reply)
        yield from pieces
        self.last_usage = Usage(sum(len(m["content"].split()) for m in messages), len(pieces))

    @staticmethod
    def _copy_best(user: str) -> str:
        blocks = re.findall(r"^\[(\d+)\] (.+?)(?=\n\n\[|\n\n(?:Frage|Question):)", user, re.S | re.M)
        question = re.search(r"(?:Frage|Question): (.*)$", user, re.S)
        words = set(_WORD.findall((question.group(1) if question else "").lower()))
        if not blocks:
            return "The articles do not say."
        number, text = max(blocks, key=lambda b: len(words & set(_WORD.findall(b[1].lower()))))
        sentence = re.split(r"(?<=[.!?])\s", text.strip())[0].rstrip(".")
        return f"{sentence} [{number}]."
