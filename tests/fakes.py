"""Deterministic stand-ins for the models and a tiny fake corpus, shared by the fast tests.

`test_contracts.py` holds the fakes to the same protocol behaviour as the real adapters.
The fixtures built from these live in `conftest.py`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def _read(messages: Sequence[dict[str, str]], between: Any) -> None:
    """Call ``between`` before each batch of 128 words of the prompt, as the real model reads 128 tokens."""
    if between is not None:
        for _ in range(0, sum(len(m["content"].split()) for m in messages), 128):
            between()


class FakeGenerator:
    """Answers by copying the first sentence of the passage sharing most words with the question.

    With ``script`` it replays fixed replies in order instead (to test grounding and refusals).
    `yes_probability` is ``answerable`` when given, else 0.9 when a passage shares a word of four or
    more letters with the question and 0.1 when none does.
    """

    model_id = "fake-llm"

    def __init__(self, script: Sequence[str] = (), answerable: float | None = None) -> None:
        self.script = list(script)
        self.answerable = answerable
        self.calls: list[list[dict[str, str]]] = []
        self.checks: list[list[dict[str, str]]] = []
        self.prefixes: list[str] = []  # the reply's beginning each `stream` call was given
        self.words: list[tuple[str, str]] = []  # the yes-word and no-word each check read
        self.yielded = 0  # pieces written, over all `stream` calls
        self.last_usage = Usage()

    def yes_probability(self, messages, *, words=("Yes", "No"), between=None):  # type: ignore[no-untyped-def]
        self.checks.append(list(messages))
        self.words.append(words)
        _read(messages, between)
        if self.answerable is not None:
            return self.answerable
        user = next(m["content"] for m in messages if m["role"] == "user")  # the passages and the question
        blocks = re.findall(r"^\[(\d+)\] (.+?)(?=\n\n\[|\n\n(?:Frage|Question):)", user, re.S | re.M)
        question = re.search(r"(?:Frage|Question): (.*)$", user, re.S)
        words = {w for w in _WORD.findall((question.group(1) if question else "").lower()) if len(w) >= 4}
        return 0.9 if any(words & set(_WORD.findall(text.lower())) for _, text in blocks) else 0.1

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        self.calls.append(list(messages))
        self.prefixes.append(prefix)
        self.last_usage = Usage()
        _read(messages, between)
        reply = self.script.pop(0) if self.script else self._copy_best(messages[-1]["content"])
        for stop in settings.stop:  # like llama.cpp: the text ends before the first stop string
            reply = reply.split(stop, 1)[0]
        pieces = re.findall(r"\S+\s*", reply)[: settings.max_tokens]
        for piece in pieces:
            self.yielded += 1
            yield piece
        self.last_usage = Usage(sum(len(m["content"].split()) for m in messages), len(pieces))

    @staticmethod
    def _copy_best(user: str) -> str:
        blocks = re.findall(r"^\[(\d+)\] (.+?)(?=\n\n\[|\n\n(?:Frage|Question):)", user, re.S | re.M)
        question = re.search(r"(?:Frage|Question): (.*)$", user, re.S)
        words = set(_WORD.findall((question.group(1) if question else "").lower()))
        if not blocks:
            return "The articles do not say."
        number, text = max(blocks, key=lambda b: len(words & set(_WORD.findall(b[1].lower()))))
        text = re.sub(r"^\(Artikel .*?\)\n", "", text)  # the passage's header line (date, author)
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
            meta = {"published": d.published, "author": d.author, "url": d.url}
            out.append(
                Chunk(f"{d.doc_id}#{n}", d.doc_id, d.title, pos, pos + len(line), line, len(line.split()), **meta)
            )
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


def fake_answerer(settings: Any, generator: FakeGenerator | None = None) -> Answerer:
    """The Answerer over the index in ``settings.index_dir`` with a fake embedder and generator."""
    from rag import wiring

    return Answerer(
        retriever=Retriever(wiring.open_index(settings), FakeEmbedder(768), RetrievalSettings(k=3)),
        generator=generator or FakeGenerator(),
        templates=Templates(
            answer={lang: load_template(ROOT / "prompts", f"answer.{lang}") for lang in LANGUAGES},
            check=load_template(ROOT / "prompts", "answerable"),
        ),
        count_tokens=lambda t: len(t.split()),
        settings=AnswerSettings(min_dense_score=0.1),
    )


@contextmanager
def index_lock_held_elsewhere(index_dir: Path) -> Iterator[None]:
    """The index writer lock held by another thread for the block (as another replica would hold it).

    Not held in the calling thread: the lock is re-entrant there (an upload holds it around `update_index`).
    """
    from rag.retrieval.files import IndexLock

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with IndexLock(index_dir):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold, name="other-writer", daemon=True)
    holder.start()
    assert held.wait(10), "the other writer never got the lock"
    try:
        yield
    finally:
        release.set()
        holder.join(10)


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


# ----------------------------------------------------------------------------- llama_cpp.Llama without a model

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class StubLlama:
    """What `LlamaCppGenerator` uses of `llama_cpp.Llama`, without a model: a ChatML template, a word-level
    tokenizer, a KV cache of evaluated tokens, and logits that favour ``answer`` ("Yes", "No", "Ja" or "Nein").

    Records the rendered prompts (``prompts``), the system prompt of each (``systems``) and how many tokens
    each evaluation had to decode (``decoded``), so tests can see prefix reuse.
    """

    def __init__(self, reply: str = "ok", answer: str = "Yes", n_ctx: int = 4096) -> None:
        import ctypes

        self.reply, self.answer, self._n_ctx = reply, answer, n_ctx
        self.metadata = {"tokenizer.chat_template": CHATML}
        self._model = type("Model", (), {"token_get_text": staticmethod(lambda i: {1: "<|im_end|>", 2: ""}[i])})
        self.prompts: list[str] = []
        self.systems: list[str] = []
        self.decoded: list[int] = []
        self.cache: list[int] = []
        self.n_tokens = 0
        self._logits = (ctypes.c_float * self.n_vocab())()
        stub = self

        class _Ctx:
            @staticmethod
            def get_logits_ith(i: int) -> Any:
                return ctypes.cast(stub._logits, ctypes.POINTER(ctypes.c_float))

        self._ctx = _Ctx()

    def n_ctx(self) -> int:
        return self._n_ctx

    def n_vocab(self) -> int:
        return 4096

    def token_eos(self) -> int:
        return 1

    def token_bos(self) -> int:
        return -1

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        decoded = text.decode("utf-8")
        if special:
            self.prompts.append(decoded)
            system = re.search(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", decoded, re.S)
            self.systems.append(system.group(1) if system else "")
        return [10 + zlib.crc32(w.encode()) % (self.n_vocab() - 10) for w in re.findall(r"\s*\S+|\s+$", decoded)]

    @property
    def _input_ids(self) -> np.ndarray:
        return np.array(self.cache[: self.n_tokens], dtype=np.intc)

    @staticmethod
    def longest_token_prefix(a: Sequence[int], b: Sequence[int]) -> int:
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        return n

    def eval(self, tokens: Sequence[int]) -> None:
        self.cache = self.cache[: self.n_tokens] + list(tokens)
        self.n_tokens = len(self.cache)
        self.decoded.append(len(tokens))
        for i in range(self.n_vocab()):
            self._logits[i] = -10.0  # every other token unlikely, as in a real model
        for word in ("Yes", "No", "Ja", "Nein"):
            self._logits[self.tokenize(word.encode(), add_bos=False)[0]] = 4.0 if word == self.answer else 0.0

    def create_completion(self, prompt: Sequence[int], **kwargs: Any) -> Iterator[dict[str, Any]]:
        reuse = self.longest_token_prefix(self.cache[: self.n_tokens], prompt)
        reuse = min(reuse, len(prompt) - 1)
        self.n_tokens = reuse
        self.eval(list(prompt[reuse:]))
        for piece in re.findall(r"\S+\s*", self.reply)[: kwargs.get("max_tokens") or None]:
            yield {"choices": [{"text": piece}]}


def stub_generator(contexts: int = 1, **stub: Any) -> tuple[Any, list[StubLlama]]:
    """A `LlamaCppGenerator` over ``contexts`` `StubLlama` contexts (no model file, no llama.cpp)."""
    from collections import OrderedDict

    from rag.models.generate import LlamaCppGenerator

    stubs = [StubLlama(**stub) for _ in range(contexts)]
    gen = object.__new__(LlamaCppGenerator)
    gen._llm, gen._spare, gen._contexts, gen._formatters = stubs[0], list(stubs), OrderedDict(), {}
    gen.model_id, gen.last_usage = "stub", Usage()
    return gen, stubs
