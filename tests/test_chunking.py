"""Sentence splitting and chunk packing: worked examples, invariants on the corpus."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rag.ingest.chunk import RUN_ON, chunk_document, split_sentences
from rag.ingest.clean import clean
from rag.types import Chunk, Document, Span

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.txt"))


def words(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def sentences(text: str, span: Span | None = None) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text, span)]


def make_doc(text: str, doc_id: str = "doc.txt") -> Document:
    return Document(doc_id=doc_id, title="Titel", path=doc_id, text=text, content_hash="0" * 64)


def whole(text: str) -> list[Span]:
    return [Span(0, len(text))]


# --- split_sentences: worked examples -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Das Training kostete ca. 5,6 Mio. Dollar. Danach kam mehr.",
            ["Das Training kostete ca. 5,6 Mio. Dollar.", "Danach kam mehr."],
        ),
        ("Deepseek nutzte 2.048 GPUs. Das war wenig.", ["Deepseek nutzte 2.048 GPUs.", "Das war wenig."]),
        (
            "Am 28.01.2025 erschien der Bericht. Er war kurz.",
            ["Am 28.01.2025 erschien der Bericht.", "Er war kurz."],
        ),
        (
            "Viele Firmen, z. B. Nvidia, verloren. Das ist klar.",
            ["Viele Firmen, z. B. Nvidia, verloren.", "Das ist klar."],
        ),
        (
            "Dr. Müller sprach mit Prof. Schmidt. Sie einigten sich.",
            ["Dr. Müller sprach mit Prof. Schmidt.", "Sie einigten sich."],
        ),
        ("Die U.S. Regierung reagierte. Peking auch.", ["Die U.S. Regierung reagierte.", "Peking auch."]),
        ("Die App ist Nr. 1 im Store. Das ist neu.", ["Die App ist Nr. 1 im Store.", "Das ist neu."]),
        (
            "Das Modell erschien am 27. Januar 2025 in China. Es war schnell.",
            ["Das Modell erschien am 27. Januar 2025 in China.", "Es war schnell."],
        ),
        ("Er kam im 3. Quartal. Dann ging er.", ["Er kam im 3. Quartal.", "Dann ging er."]),
        (
            "Microsoft und Co. beobachten die Entwicklung genau.",
            ["Microsoft und Co. beobachten die Entwicklung genau."],
        ),
        (
            "DeepSeek Artificial Intelligence Co., Ltd., kurz DeepSeek, ist ein Unternehmen.",
            ["DeepSeek Artificial Intelligence Co., Ltd., kurz DeepSeek, ist ein Unternehmen."],
        ),
        (
            "Nvidia verlor 11,1% bis zu 15%. Das ist viel.",
            ["Nvidia verlor 11,1% bis zu 15%.", "Das ist viel."],
        ),
        (
            "Er sagte: „Das ist gut.“ Dann ging er.",
            ["Er sagte: „Das ist gut.“", "Dann ging er."],
        ),
        ("Wie viele? Sehr viele! Wirklich.", ["Wie viele?", "Sehr viele!", "Wirklich."]),
        (
            "Es liegt auf Augenhöhe mit Claude 3.5 Sonnet. Gut.",
            ["Es liegt auf Augenhöhe mit Claude 3.5 Sonnet.", "Gut."],
        ),
        # English
        (
            "Dr. Smith met U.S. officials on Jan. 5. He left.",
            ["Dr. Smith met U.S. officials on Jan. 5.", "He left."],
        ),
        (
            "The U.S. economy grew by 5.6 percent. It was the No. 1 topic.",
            ["The U.S. economy grew by 5.6 percent.", "It was the No. 1 topic."],
        ),
        (
            "Nvidia lost $600 billion, e.g. in one day. Meta lost too.",
            ["Nvidia lost $600 billion, e.g. in one day.", "Meta lost too."],
        ),
    ],
)
def test_split_sentences_worked_examples(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_newlines_always_split_and_whitespace_is_excluded() -> None:
    text = "Globale Marktimplikationen\r\n\r\n  Der Aufstieg. Er wirkt.  \n-\nOhne Punkt am Ende"
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == [
        "Globale Marktimplikationen",
        "Der Aufstieg.",
        "Er wirkt.",
        "-",
        "Ohne Punkt am Ende",
    ]
    assert spans[1] == Span(32, 45)


def test_span_limits_the_split_and_offsets_stay_absolute() -> None:
    text = "Vorne. Mitte eins. Mitte zwei. Hinten."
    span = Span(7, 30)
    spans = split_sentences(text, span)
    assert spans == [Span(7, 18), Span(19, 30)]
    assert [text[s.start : s.end] for s in spans] == ["Mitte eins.", "Mitte zwei."]


def test_span_outside_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        split_sentences("kurz", Span(0, 10))


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n", "\u00a0"])
def test_split_sentences_on_empty_input(text: str) -> None:
    assert split_sentences(text) == []


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_sentences_are_exact_and_keep_the_figures_whole(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = sentences(text)
    for sentence in found:
        assert sentence == sentence.strip() and "\n" not in sentence
    for figure in [
        "2.048",
        "5,6",
        "16.000",
        "100.000",
        "2.000",
        "11,1%",
        "Claude 3.5 Sonnet",
        "Co. beobachten",
    ]:
        if figure in text:
            assert any(figure in s for s in found), figure


# --- chunk_document ----------------------------------------------------------------


def check_invariants(doc: Document, chunks: list[Chunk], max_tokens: int) -> None:
    for i, chunk in enumerate(chunks):
        assert chunk.chunk_id == f"{doc.doc_id}#{i}"
        assert chunk.doc_id == doc.doc_id and chunk.title == doc.title
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert chunk.n_tokens == words(chunk.text)
        if chunk.n_tokens > max_tokens:  # only a single over-long sentence may exceed the budget, and not far
            assert len(split_sentences(doc.text, Span(chunk.start, chunk.end))) == 1
            assert chunk.n_tokens <= RUN_ON * max_tokens
    for before, after in itertools.pairwise(chunks):
        assert (before.start, before.end) < (after.start, after.end)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("max_tokens", [20, 60, 160, 1000])
def test_offset_invariant_on_the_corpus(path: Path, max_tokens: int) -> None:
    doc = make_doc(path.read_text(encoding="utf-8"), path.name)
    kept = clean(doc.text)
    chunks = chunk_document(doc, kept, words, max_tokens=max_tokens)
    assert chunks
    check_invariants(doc, chunks, max_tokens)
    # Every kept sentence lands in some chunk, a run-on one cut into pieces that follow each other.
    for span in kept:
        for sentence in split_sentences(doc.text, span):
            inside = [c for c in chunks if sentence.start < c.end and c.start < sentence.end]
            assert inside[0].start <= sentence.start and sentence.end <= max(c.end for c in inside)


def test_chunks_never_contain_dropped_text_of_the_corpus() -> None:
    for path in CORPUS_FILES:
        doc = make_doc(path.read_text(encoding="utf-8"), path.name)
        kept = clean(doc.text)
        covered = {i for s in kept for i in range(s.start, s.end)}
        for chunk in chunk_document(doc, kept, words, max_tokens=1000):
            dropped = {doc.text[i] for i in range(chunk.start, chunk.end) if i not in covered}
            # Between kept spans a chunk holds only whitespace and dropped list bullets.
            assert dropped <= set(" \n\t\u00a0-–•"), (chunk.chunk_id, dropped)


def test_overlap_repeats_the_last_sentence() -> None:
    text = "Eins zwei. Drei vier. Fünf sechs. Sieben acht."
    doc = make_doc(text)
    chunks = chunk_document(doc, whole(text), words, max_tokens=4, overlap_sentences=1)
    assert [c.text for c in chunks] == [
        "Eins zwei. Drei vier.",
        "Drei vier. Fünf sechs.",
        "Fünf sechs. Sieben acht.",
    ]
    check_invariants(doc, chunks, 4)


def test_no_overlap_partitions_the_sentences() -> None:
    text = "Eins zwei. Drei vier. Fünf sechs. Sieben acht. Neun."
    doc = make_doc(text)
    chunks = chunk_document(doc, whole(text), words, max_tokens=4, overlap_sentences=0)
    assert [c.text for c in chunks] == ["Eins zwei. Drei vier.", "Fünf sechs. Sieben acht.", "Neun."]


def test_overlap_shrinks_when_it_would_not_fit() -> None:
    # Overlap 2 wants "Zwei ..." and "Drei ..." before "Vier ...", but 9 words exceed 7:
    # only "Drei ..." is repeated.
    text = "Eins eins eins. Zwei zwei zwei. Drei drei drei. Vier vier vier."
    chunks = chunk_document(make_doc(text), whole(text), words, max_tokens=7, overlap_sentences=2)
    assert [c.text for c in chunks] == [
        "Eins eins eins. Zwei zwei zwei.",
        "Zwei zwei zwei. Drei drei drei.",
        "Drei drei drei. Vier vier vier.",
    ]


def test_large_overlap_still_makes_progress() -> None:
    text = "Eins eins. Zwei zwei. Drei drei. Vier vier."
    chunks = chunk_document(make_doc(text), whole(text), words, max_tokens=4, overlap_sentences=5)
    assert [c.text for c in chunks] == [
        "Eins eins. Zwei zwei.",
        "Zwei zwei. Drei drei.",
        "Drei drei. Vier vier.",
    ]


def test_budget_packs_whole_sentences() -> None:
    text = "Eins zwei drei. Vier fünf. Sechs sieben acht neun."
    chunks = chunk_document(make_doc(text), whole(text), words, max_tokens=5, overlap_sentences=0)
    assert [(c.text, c.n_tokens) for c in chunks] == [
        ("Eins zwei drei. Vier fünf.", 5),
        ("Sechs sieben acht neun.", 4),
    ]


def test_sentence_longer_than_the_budget_is_its_own_chunk() -> None:
    text = "Kurz. Dieser Satz ist viel länger als das Budget erlaubt. Kurz danach."
    doc = make_doc(text)
    chunks = chunk_document(doc, whole(text), words, max_tokens=5, overlap_sentences=1)  # 9 words: not a run-on
    assert [c.text for c in chunks] == [
        "Kurz.",
        "Dieser Satz ist viel länger als das Budget erlaubt.",
        "Kurz danach.",
    ]
    check_invariants(doc, chunks, 5)


def test_a_run_on_sentence_is_cut_between_words_and_a_huge_word_inside() -> None:
    """A sentence over `RUN_ON` budgets (a flattened table, 3,000 words without a full stop) filled the answer
    prompt alone or overflowed it ("the prompt has 4292 tokens"), and only its beginning was embedded."""
    run_on = "Die Zentralbank hob den Leitzins auf 4,25 Prozent, " + ", ".join(f"Punkt {i}" for i in range(1500))
    blob = "x" * 10_000  # a word over the budget (101 tokens here): a URL, base64
    text = f"Kurz. {run_on} {blob} Ende."
    doc = make_doc(text)
    chunks = chunk_document(doc, whole(text), lambda t: sum(1 + len(w) // 100 for w in t.split()), max_tokens=64)
    assert chunks[0].text == "Kurz."
    body = chunks[1:]
    assert len(body) > 40 and all(c.n_tokens <= 64 for c in body)
    assert body[0].text.startswith("Die Zentralbank hob den Leitzins auf 4,25 Prozent,")
    assert "".join(c.text for c in body).replace(" ", "") == (run_on + blob + "Ende.").replace(" ", "")
    for before, after in itertools.pairwise(body):  # pieces follow each other, cut only at spaces or in the blob
        assert before.end <= after.start and doc.text[before.end : after.start].strip() == ""


def test_chunks_do_not_cross_dropped_regions() -> None:
    text = "Erster Satz. Zweiter Satz.\nMeistgelesene Artikel\nDritter Satz. Vierter Satz."
    kept = [Span(0, 26), Span(49, 76)]
    assert text[49:76] == "Dritter Satz. Vierter Satz."
    chunks = chunk_document(make_doc(text), kept, words, max_tokens=100)
    assert [c.text for c in chunks] == ["Erster Satz. Zweiter Satz.", "Dritter Satz. Vierter Satz."]


def test_whitespace_separated_spans_form_one_region() -> None:
    text = "Titel\n\nErster Satz.\n  Zweiter Satz."
    kept = [Span(0, 5), Span(7, 19), Span(22, 35)]
    chunks = chunk_document(make_doc(text), kept, words, max_tokens=100)
    assert [c.text for c in chunks] == [text]


def test_a_dropped_list_bullet_does_not_split_a_region() -> None:
    text = "Die Folgen:\n-\nNvidia verlor 600 Milliarden.\n-\nMeta auch."
    kept = clean(text)
    assert [text[s.start : s.end] for s in kept] == [
        "Die Folgen:",
        "Nvidia verlor 600 Milliarden.",
        "Meta auch.",
    ]
    chunks = chunk_document(make_doc(text), kept, words, max_tokens=100)
    assert [c.text for c in chunks] == [text]


def test_overlap_stays_inside_a_region() -> None:
    text = "Eins eins. Zwei zwei.\nWERBUNG\nDrei drei. Vier vier."
    kept = [Span(0, 21), Span(30, 51)]
    assert text[30:51] == "Drei drei. Vier vier."
    chunks = chunk_document(make_doc(text), kept, words, max_tokens=100, overlap_sentences=1)
    assert [c.text for c in chunks] == ["Eins eins. Zwei zwei.", "Drei drei. Vier vier."]


def test_empty_input() -> None:
    assert chunk_document(make_doc(""), [], words) == []
    assert chunk_document(make_doc("Text hier."), [], words) == []
    assert chunk_document(make_doc("   "), [Span(0, 3)], words) == []


def test_chunking_is_deterministic() -> None:
    doc = make_doc(CORPUS_FILES[0].read_text(encoding="utf-8"), CORPUS_FILES[0].name)
    kept = clean(doc.text)
    assert chunk_document(doc, kept, words, max_tokens=50) == chunk_document(doc, kept, words, max_tokens=50)


@pytest.mark.parametrize(
    ("spans", "kwargs", "message"),
    [
        ([Span(5, 9), Span(0, 4)], {}, "sorted"),
        ([Span(0, 6), Span(4, 9)], {}, "sorted"),
        ([Span(0, 99)], {}, "outside"),
        ([Span(0, 4)], {"max_tokens": 0}, "max_tokens"),
        ([Span(0, 4)], {"overlap_sentences": -1}, "overlap"),
    ],
)
def test_bad_arguments(spans: list[Span], kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_document(make_doc("Eins. Zwei."), spans, words, **kwargs)
