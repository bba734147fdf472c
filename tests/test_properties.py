"""Properties of the pure text functions on arbitrary input (hypothesis): no crash, offsets that hold.

Inputs mix arbitrary Unicode (all planes, combining marks, line separators, RTL and zero-width
characters; not lone surrogates, which no decoded file or JSON body can hold) with the pieces the
functions look for: abbreviations, ordinals and months, numbers, citation markers, boilerplate
lines. Examples per test are kept low and SoMaJo tests run without a deadline: it takes ~20 ms
per kB on a busy core.
"""

from __future__ import annotations

import itertools
import re
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rag.ground.citations import ground, parse_citations
from rag.ground.citations import split_answer_sentences as split_answer
from rag.ingest.chunk import RUN_ON, chunk_document, cut_run_on, split_sentences
from rag.ingest.clean import clean
from rag.language import REFUSAL, detect_language, is_refusal, model_guess, refusal_sentence, word_votes
from rag.types import Chunk, Document, Hit, Passage, Span

SOMAJO = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(max_examples=200, deadline=None)

# ----------------------------------------------------------------------------- inputs

PIECES = [
    " ", "  ", "\n", "\n\n", "\r\n", "\r", "\t", "\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c",
    ".", "!", "?", "…", ",", ";", ":", "-", "–", "\u00a0", "\u200b", "\u200f", "\u202e", "\ufeff",
    "Nr.", "No.", "S.", "ca.", "Mio.", "z. B.", "Dr.", "27.", "1.", "Januar", "Jan.", "Mai", "2.048", "5,6",
    "28.01.2025", "11,1%", "(2023)", "(1)", "[1]", "[2]", "[1, 3]", "[2–4]", "[1-30]", "[0]", "[7]", "[999]",
    "[1000]", "[Quelle 2]", "【3】", "［1］", "[^1]", "[", "]", "[1", "1]", "DeepSeek", "nutzte", "GPUs",
    "the", "der", "die", "und", "and", "Wie viele", "How many", "Er ging.", "He left.", "e.g.", "U.S.",
    "3 Minuten Lesezeit", "by Silke Mayr", "Von Max Muster", "MEHR", "Teilen", "© 2025 Verlag",
    "You may also like", "Meistgelesene Artikel", "Lassen Sie sich kostenlos beraten.", "#Disclaimer",
    "- ", "• ", "blog main image", "Foto: dpa", "ä", "ß", "İ", "ǅ", "e\u0301", "👍🏽", "🇩🇪", "日本語。",
    "مرحبا.", "\U0001d400", "\x00", "\x7f",
]  # fmt: skip


def texts(max_size: int = 60) -> st.SearchStrategy[str]:
    """Arbitrary Unicode, the pieces above, or both interleaved."""
    piece = st.sampled_from(PIECES) | st.text(max_size=6)
    return st.one_of(
        st.text(max_size=max_size * 4),
        st.lists(piece, max_size=max_size).map("".join),
    )


def assert_spans_hold(text: str, spans: list[Span], *, nonempty: bool = True) -> None:
    """Sorted, non-overlapping, inside the text, no surrounding whitespace."""
    previous_end = 0
    for s in spans:
        assert previous_end <= s.start <= s.end <= len(text), (spans, len(text))
        piece = text[s.start : s.end]
        assert piece == piece.strip()
        if nonempty:
            assert piece
        previous_end = s.end


def words(text: str) -> int:
    return len(text.split())


# ----------------------------------------------------------------------------- cleaner


@FAST
@given(texts())
@example("")
@example("\n \n\t\n")
@example("Titel\n3 Minuten Lesezeit\nDer Text.\nYou may also like\nLink 1\nLink 2")
def test_clean_keeps_exact_whole_lines(text: str) -> None:
    spans = clean(text)
    assert_spans_hold(text, spans)
    for s in spans:
        assert "\n" not in text[s.start : s.end]  # one span, one line
        line_start = text.rfind("\n", 0, s.start) + 1
        line_end = text.find("\n", s.end)
        line = text[line_start : len(text) if line_end == -1 else line_end]
        assert line.strip() == text[s.start : s.end]  # the whole line, stripped: never part of one


@FAST
@given(texts())
def test_clean_never_keeps_a_line_without_a_word(text: str) -> None:
    for s in clean(text):
        assert any(ch.isalnum() or ch == "_" for ch in text[s.start : s.end])


# ----------------------------------------------------------------------------- sentence splitting and chunking


@SOMAJO
@given(texts())
@example("")
@example("Es kostete ca. 5,6 Mio. Dollar am 27. Januar.\nNeu: Nr. 1 im Store")
@example("a\u2028b\x85c\r\nd")
def test_sentences_are_exact_slices_that_never_cross_a_line_break(text: str) -> None:
    spans = split_sentences(text)
    assert_spans_hold(text, spans)
    breaks = set("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
    for s in spans:
        assert not breaks & set(text[s.start : s.end])


@SOMAJO
@given(texts(), st.data())
def test_sentences_of_a_span_stay_inside_it(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    for s in split_sentences(text, Span(start, end)):
        assert start <= s.start <= s.end <= end


@SOMAJO
@given(texts(), st.integers(1, 40), st.integers(0, 3), st.booleans())
@example("Eins zwei. Drei vier. Fünf.", 4, 1, False)
@example("", 1, 0, True)
def test_chunks_are_exact_ordered_slices_within_budget(text: str, budget: int, overlap: int, cleaned: bool) -> None:
    doc = Document("d.txt", "Titel", "d.txt", text, "h")
    spans = clean(text) if cleaned else ([Span(0, len(text))] if text else [])
    chunks = chunk_document(doc, spans, words, max_tokens=budget, overlap_sentences=overlap)
    whole = [s for span in spans for s in split_sentences(text, span)]
    # The units a chunk is made of: sentences, a run-on one (over RUN_ON budgets) in pieces within the budget.
    sentences = [piece for s in whole for piece in cut_run_on(text, s, words, budget)]
    for s in whole:
        pieces = cut_run_on(text, s, words, budget)
        assert pieces[0].start == s.start and pieces[-1].end == s.end
        assert len(pieces) == 1 or all(words(text[p.start : p.end]) <= budget for p in pieces)
    for n, c in enumerate(chunks):
        assert text[c.start : c.end] == c.text and c.text
        assert c.chunk_id == f"d.txt#{n}" and c.doc_id == "d.txt" and c.n_tokens == words(c.text)
        inside = [s for s in sentences if c.start <= s.start and s.end <= c.end]
        assert inside and inside[0].start == c.start and inside[-1].end == c.end  # whole units
        assert c.n_tokens <= budget or (len(inside) == 1 and c.n_tokens <= RUN_ON * budget)  # a lone long sentence
        assert any(span.start <= c.start and c.end <= span.end for span in _regions(text, spans))
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start and a.end < b.end  # ordered; each adds text
    covered = {(s.start, s.end) for c in chunks for s in sentences if c.start <= s.start and s.end <= c.end}
    assert covered == {(s.start, s.end) for s in sentences}  # no sentence left out


def _regions(text: str, spans: list[Span]) -> list[Span]:
    """Kept spans joined across gaps of whitespace and bullets (what a chunk may not cross)."""
    out: list[Span] = []
    for s in spans:
        if out and re.fullmatch(r"[\s\-–—•·*]*", text[out[-1].end : s.start]):
            out[-1] = Span(out[-1].start, s.end)
        else:
            out.append(s)
    return out


def test_huge_documents_clean_and_chunk() -> None:
    base = "DeepSeek nutzte ca. 2.048 GPUs am 27. Januar. Nvidia verlor 600 Mrd. Dollar [1]. "
    for text in (base * 400 + "\n", (base + "\n") * 400, "x" * 30_000, "a. " * 10_000, "\n" * 50_000):
        doc = Document("big.txt", "T", "big.txt", text, "h")
        started = time.perf_counter()
        chunks = chunk_document(doc, clean(text), words, max_tokens=64)
        assert time.perf_counter() - started < 30
        assert all(text[c.start : c.end] == c.text for c in chunks)


# ----------------------------------------------------------------------------- citations


def passages_for(article: str, count: int) -> list[Passage]:
    """``count`` passages numbered 1..count, each a slice of ``article`` (the whole text when short)."""
    out = []
    step = max(1, len(article) // max(count, 1))
    for number in range(1, count + 1):
        start = min((number - 1) * step, len(article))
        end = len(article) if number == count else min(start + step, len(article))
        chunk = Chunk(f"a#{number}", f"doc{number}.txt", "Titel", start, end, article[start:end], 5)
        out.append(Passage(number, Hit(chunk, 1.0, number), chunk.text, chunk.start, chunk.end))
    return out


ARTICLE = (
    "Das Start-up DeepSeek aus Hangzhou wurde 2023 von Liang Wenfeng gegründet. "
    "Für das Training von R1 nutzte DeepSeek nur 2.048 GPUs. Die Entwicklungskosten lagen bei 5,6 Millionen "
    "US-Dollar. Nvidia verlor am 27. Januar 600 Milliarden Dollar an Börsenwert."
)


@FAST
@given(texts(80))
@example("A [1]. B [1,3][2]. C [2–4]. D [Passage 5] 【6】 [^7].")
@example("[1-999] [0-0] [999-1]")
def test_parse_citations_markers_are_where_they_say(text: str) -> None:
    for m in parse_citations(text):
        piece = text[m.start : m.end]
        assert piece[0] in "[【［" and piece[-1] in "]】］"
        assert m.numbers and len(m.numbers) == len(set(m.numbers))
        assert all(0 <= n <= 999 for n in m.numbers)
        assert all(str(n) in piece for n in m.numbers if len(m.numbers) <= 2)
        assert len(m.numbers) <= 999  # ranges over 20 keep only their ends


@SOMAJO
@given(texts(60), st.integers(0, 5), st.sampled_from([None, "de", "en"]))
@example("DeepSeek nutzte 2048 GPUs [1][7].", 1, None)
@example("Dazu enthalten die Artikel keine Angabe. [3]", 2, "de")
@example("[0] [1-30] [999] 【2】", 3, "en")
def test_ground_never_cites_a_passage_not_offered(text: str, count: int, lang: str | None) -> None:
    passages = passages_for(ARTICLE, count)
    known = {p.number for p in passages}
    g = ground(text, passages, lang)
    for c in g.citations:
        assert c.number in known
        assert ARTICLE[c.start : c.end] == c.quote  # the quote is the article, by its offsets
    assert g.lang in ("de", "en")
    assert not set(g.dropped) & known
    assert {n for m in parse_citations(g.text) for n in m.numbers} <= known  # the rewritten answer too
    assert not (g.refused and g.citations)  # a refusal cites nothing
    assert g.refused == (g.text == refusal_sentence(g.lang))


@FAST
@given(texts(80))
def test_answer_sentences_are_exact_slices(text: str) -> None:
    previous_end = 0
    for start, end in split_answer(text):
        assert previous_end <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        previous_end = end


HUGE = [
    "DeepSeek nutzte 2.048 GPUs [1]. Nvidia verlor 600 Mrd. [2][9]\n" * 3_000,
    "[1," * 100_000,
    "[" * 200_000 + "1" + "]" * 200_000,
    "x" * 300_000,
    "\n" * 300_000,
]


@pytest.mark.parametrize("text", HUGE, ids=["lines", "open-markers", "nested", "one-word", "newlines"])
def test_huge_text_through_the_cleaner_and_the_marker_parser(text: str) -> None:
    started = time.perf_counter()
    assert_spans_hold(text, clean(text))
    for m in parse_citations(text):
        assert all(0 <= n <= 999 for n in m.numbers)
    assert time.perf_counter() - started < 10


# The answer side is quadratic in the length of one line (`split_answer_sentences` copies the rest of the
# line at each full stop): fine for what the model can write (max_tokens <= 4096, ~20k characters),
# so that is the size tested; 300k characters of ". " take ~5 s, of "[1," ~30 s in `ground`.
LONGEST_ANSWER = 20_000


@pytest.mark.parametrize("unit", ["DeepSeek nutzte 2.048 GPUs [1]. ", "[1,", ". ", "x", "[7] "])
def test_the_longest_possible_answer_grounds_quickly(unit: str) -> None:
    text = unit * (LONGEST_ANSWER // len(unit))
    started = time.perf_counter()
    g = ground(text, passages_for(ARTICLE, 2), "de")
    assert {n for m in parse_citations(g.text) for n in m.numbers} <= {1, 2}
    assert time.perf_counter() - started < 10


# ----------------------------------------------------------------------------- language


@FAST
@given(texts(40))
@example("")
@example("H800 Chips?")
@example("123 456 !!!")
def test_detect_language_is_de_or_en_or_the_default(text: str) -> None:
    found = detect_language(text, default="xx")
    assert found in ("de", "en", "xx")
    german, english = word_votes(text)
    assert german >= 0 and english >= 0 and german + english <= len(re.findall(r"[^\W\d_]+", text.lower()))
    if not re.search(r"[^\W\d_]", text):  # no letter (as the module counts them: "¹" is one)
        assert found == "xx" and model_guess(text) is None
    guess = model_guess(text)
    assert guess is None or (guess[0] in ("de", "en") and 0.0 <= guess[1] <= 1.0)


@FAST
@given(
    st.sampled_from(sorted(REFUSAL)),
    st.sampled_from(["", " ", "\n", "  \t"]),
    st.sampled_from(["", "**", "_", '"', "„", "»"]),
    st.sampled_from(["", ".", " [1]", "[2].", " [1] [3]"]),
)
def test_the_refusal_sentence_is_recognised_however_it_is_dressed(lang: str, space: str, mark: str, tail: str) -> None:
    sentence = REFUSAL[lang].rstrip(".")
    closing = {"„": "“", "»": "«"}.get(mark, mark)
    dressed = f"{space}{mark}{sentence}{closing}{tail}{space}"
    assert is_refusal(dressed) and is_refusal(dressed, lang)


@FAST
@given(texts(40), st.sampled_from([None, "de", "en", "fr"]))
def test_is_refusal_never_crashes_and_needs_the_sentence(text: str, lang: str | None) -> None:
    if is_refusal(text, lang):
        assert any(REFUSAL[x].rstrip(".").lower() in " ".join(text.split()).lower() for x in REFUSAL)


def test_detect_language_on_huge_text_with_spaces_is_fast() -> None:
    started = time.perf_counter()
    assert detect_language("Wie viele GPUs nutzte DeepSeek? " * 30_000) == "de"
    assert detect_language("How many GPUs did DeepSeek use? " * 30_000) == "en"
    assert time.perf_counter() - started < 5


def test_detect_language_on_a_long_run_without_spaces_is_fast() -> None:
    detect_language("warmup")
    started = time.perf_counter()
    detect_language("x" * 10_000)
    assert time.perf_counter() - started < 0.2
