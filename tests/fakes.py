"""Deterministic stand-ins for the models and a tiny fake corpus, shared by the fast tests.

`test_contracts.py` holds the fakes to the same protocol behaviour as the real adapters.
The fixtures built from these live in `conftest.py`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.pipeline import AnswerSettings, Templates
from rag.answer.prompt import load_template
from rag.language import LANGUAGES
from rag.models.generate import Usage
from rag.retrieval.retrieve import RetrievalSettings, Retriever
from rag.retrieval.store import IndexConfig, update_index
from rag.types import Chunk, Document
from rag.wiring import Answerer

ROOT = Path(__file__).resolve().parent.parent

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
        if titles is not None:
            # Like EmbeddingGemma's "title: <title> | text: <text>" document prompt: the title moves the vector.
            texts = [f"{title} {text}" for title, text in zip(titles, texts, strict=True)]
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
        self.script = list(script)
        self.calls: list[list[dict[str, str]]] = []
        self.last_usage = Usage()

    def stream(self, messages, settings):  # type: ignore[no-untyped-def]
        self.calls.append(list(messages))
        self.last_usage = Usage()
        reply = self.script.pop(0) if self.script else self._copy_best(messages[-1]["content"])
        for stop in settings.stop:  # like llama.cpp: the text ends before the first stop string
            reply = reply.split(stop, 1)[0]
        pieces = re.findall(r"\S+\s*", reply)[: settings.max_tokens]
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


# ----------------------------------------------------------------------------- a tiny corpus and its index

CONFIG = IndexConfig("fake", "f" * 64, 64, chunk_tokens=50, overlap_sentences=0)


def doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id, doc_id, text, hashlib.sha256(text.encode()).hexdigest())


def paragraphs(d: Document) -> list[Chunk]:
    """One chunk per line: enough to exercise the index without the real chunker."""
    out, pos = [], 0
    for n, line in enumerate(d.text.split("\n")):
        if line.strip():
            out.append(Chunk(f"{d.doc_id}#{n}", d.doc_id, d.title, pos, pos + len(line), line, len(line.split())))
        pos += len(line) + 1
    return out


def run(index_dir: Path, docs: list[Document], embedder: FakeEmbedder | None = None, **kw):
    embedder = embedder or FakeEmbedder()
    return update_index(
        index_dir,
        CONFIG,
        docs,
        chunk=paragraphs,
        embed=lambda chunks: embedder.embed([c.text for c in chunks], "document"),
        detect_lang=lambda text: "de",
        **kw,
    )


A = doc("a.txt", "DeepSeek nutzte 2.048 GPUs.\nDas Training kostete 5,6 Millionen Dollar.")
B = doc("b.txt", "Nvidia verlor 600 Milliarden Dollar an einem Tag.")
C = doc("c.txt", "Liang Wenfeng gründete DeepSeek.\nDer Sitz ist in Hangzhou.")


# ----------------------------------------------------------------------------- the service with fakes


def fake_answerer(settings: Any) -> Answerer:
    """The Answerer over the index in ``settings.index_dir`` with a fake embedder and generator."""
    from rag import wiring

    return Answerer(
        retriever=Retriever(wiring.open_index(settings), FakeEmbedder(768), RetrievalSettings(k=3)),
        generator=FakeGenerator(),
        templates=Templates(answer={lang: load_template(ROOT / "prompts", f"answer.{lang}") for lang in LANGUAGES}),
        count_tokens=lambda t: len(t.split()),
        settings=AnswerSettings(min_dense_score=0.1),
    )


def wait_ready(client: Any) -> None:
    """Poll a TestClient's `/health` until the (fake) models are loaded."""
    for _ in range(100):
        if client.get("/health").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(client.get("/health").json())


def cli_commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of a Typer app, e.g. ``("models", "fetch")``."""
    import typer.main

    click_group = typer.main.get_command(group) if not hasattr(group, "commands") else group
    for name, cmd in click_group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from cli_commands(cmd, (*prefix, name))


def served_routes(app: Any) -> list[tuple[str, str, Any]]:
    """``(method, path, route)`` for every route ``app`` serves, routers included with `include_router` expanded.

    FastAPI >= 0.160 keeps an included router as one lazy entry in ``app.routes``; its
    `iter_route_contexts` walks them. Older versions copied the routes into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI
        found = [(r, getattr(r, "path", None)) for r in app.routes]
    else:
        found = [(ctx.original_route, ctx.path) for ctx in iter_route_contexts(app.routes)]
    return [
        (method, path, route)
        for route, path in found
        if path is not None and getattr(route, "methods", None)
        for method in sorted(route.methods)
    ]
