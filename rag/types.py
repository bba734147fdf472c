"""The data that flows through the pipeline, stage by stage.

Read this first: every other module takes and returns these types.

    Document -> Chunk -> Hit -> Passage -> (generation) -> Citation -> Answer

All are frozen dataclasses with plain fields so they serialise with
`dataclasses.asdict` (CLI `--json`, HTTP responses, eval reports) and never
import a model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A half-open character range ``[start, end)`` in a document's original text."""

    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One source article as loaded from disk.

    ``text`` is the extracted text that offsets refer to (for .txt/.md the file
    content itself; for .html/.pdf the extracted text layer). ``doc_id`` is the
    file name, which is what citations name.

    ``title`` is the file's own title when it has one (front matter, HTML meta, a heading line),
    else its first sentence. ``published`` (ISO ``YYYY-MM-DD``), ``author`` and ``url`` are
    only what the file states (rag/ingest/meta.py); a field the file does not hold is ``None``.
    """

    doc_id: str
    title: str
    path: str
    text: str
    content_hash: str
    published: str | None = None
    author: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences from one document.

    Invariant: ``document.text[start:end] == text``. ``title``, ``published``, ``author`` and
    ``url`` repeat the document's, so a hit or citation names its article without a lookup.
    """

    chunk_id: str
    doc_id: str
    title: str
    start: int
    end: int
    text: str
    n_tokens: int
    published: str | None = None
    author: str | None = None
    url: str | None = None

    def header(self) -> str:
        """The article's date and author as the answer prompt shows them above the passage (German, like
        the articles; the date as ``28.01.2025``), so a question about when an article appeared or who
        wrote it can be answered and checked; empty when the article states neither. The title is left
        out: it cost ~40 prompt tokens a passage (+1.6 s to the first token) for no measured gain.

        >>> Chunk("a#0", "a", "KI aus China", 0, 1, "x", 1, published="2025-01-28", author="Silke Mayr").header()
        '(Artikel vom 28.01.2025, von Silke Mayr)'
        >>> Chunk("a#0", "a", "KI aus China", 0, 1, "x", 1, author="Silke Mayr").header()
        '(Artikel von Silke Mayr)'
        """
        parts = []
        if self.published:
            year, month, day = self.published.split("-")
            parts.append(f"vom {day}.{month}.{year}")
        if self.author:
            parts.append(f"von {self.author}")
        return f"(Artikel {', '.join(parts)})" if parts else ""


@dataclass(frozen=True)
class Hit:
    """A chunk found by retrieval, with what each side of the hybrid search said.

    Ranks are 1-based; ``None`` means that side did not return the chunk.
    ``duplicates`` are chunk ids of near-identical chunks collapsed into this one
    (other articles saying the same), so answers can cite every agreeing source.
    """

    chunk: Chunk
    score: float
    rank: int
    dense_score: float | None = None
    dense_rank: int | None = None
    keyword_score: float | None = None
    keyword_rank: int | None = None
    duplicates: tuple[Chunk, ...] = ()


@dataclass(frozen=True)
class Passage:
    """A numbered passage offered to the answer model as ``[number]``."""

    number: int
    hit: Hit
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """A ``[n]`` marker in an answer, resolved to the article span it points at."""

    number: int
    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    quote: str
    published: str | None = None  # the article's metadata, as on `Document`
    author: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Filter:
    """Which articles retrieval may draw from; every condition given must hold.

    ``docs``: document ids (empty: any). ``since`` / ``until``: ISO dates ``YYYY-MM-DD``,
    inclusive, compared with ``Document.published``; a document without a date never
    matches a date condition. Built and checked by `rag.retrieval.filters.make_filter`.
    """

    docs: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the pipeline returns to the CLI, the HTTP API and the evaluator."""

    question: str
    text: str
    lang: str
    refused: bool
    grounded: bool = True  # False when a claim has no supporting passage or nothing is cited
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    conflicts: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    rewritten_question: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_per_second: float = 0.0
    cached: bool = False  # served from the answer cache (same question, history and index version)
    # The model's P(the passages state the answer), from its Yes/No logits; None when not checked.
    answerable_p: float | None = None
    truncated: bool = False  # generation stopped at max_tokens (the last sentence may be cut off)
