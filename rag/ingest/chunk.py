"""Sentence-aware chunking that keeps character offsets into the original text.

Sentences come from SoMaJo (a tokenizer and sentence splitter built for German and
English web text), run line by line so that headings and paragraphs never merge,
with a few repairs for false splits such as "Nr. | 1". Chunks are runs of whole
sentences packed up to a token budget inside one region of kept text, so a chunk
never reaches across boilerplate that the cleaner dropped.

Every span and chunk points into the document text: ``doc.text[c.start:c.end] == c.text``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from somajo import SoMaJo

from rag.config import default
from rag.language import word_votes
from rag.lexicon import MONTHS, alternation
from rag.types import Chunk, Document, Span

# Same line boundaries as str.splitlines, so "\r\n" and U+2028 split too.
_LINE = re.compile(r"[^\n\r\v\f\x1c-\x1e\x85\u2028\u2029]+")
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")

# A gap between two kept spans that holds only whitespace and list bullets ("\n-\n")
# does not separate regions: the bullet was dropped as furniture, but the list items
# around it belong together.
_JOINABLE_GAP = re.compile(r"[\s\-–—•·*]*")

# Abbreviations that precede a number ("Nr. 1", "S. 5", "No. 3").
_NUMBER_ABBREVIATION = re.compile(r"(?:^|\s)(Nr|No|Nos|Abb|S|Art|Bd|Kap|Tab|Fig|Vol|p|pp)\.$")
_ORDINAL_END = re.compile(r"(?:^|\s)\d{1,2}\.$")
_MONTH_START = re.compile(rf"(?:{alternation(frozenset(m.capitalize() for m in MONTHS))})\b")


def split_sentences(text: str, span: Span | None = None) -> list[Span]:
    """Split ``text`` (or the part of it inside ``span``) into sentence spans.

    Spans are exact offsets into ``text`` without surrounding whitespace. A line
    break always ends a sentence.

    >>> text = "Es kostete ca. 5,6 Mio. Dollar am 27. Januar.\\nNeu: Nr. 1 im Store"
    >>> [text[s.start:s.end] for s in split_sentences(text)]
    ['Es kostete ca. 5,6 Mio. Dollar am 27. Januar.', 'Neu: Nr. 1 im Store']
    """
    start, end = (0, len(text)) if span is None else (span.start, span.end)
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"span {span} lies outside the text (length {len(text)})")
    sentences: list[Span] = []
    for line in _LINE.finditer(text, start, end):
        offset = line.start()
        for s, e in _split_line(line.group()):
            sentences.append(Span(offset + s, offset + e))
    return _merge_false_splits(text, sentences)


def chunk_document(
    doc: Document,
    spans: list[Span],
    count_tokens: Callable[[str], int],
    max_tokens: int = default("chunk_tokens"),
    overlap_sentences: int = default("chunk_overlap_sentences"),
) -> list[Chunk]:
    """Pack the sentences of the kept ``spans`` of ``doc`` into chunks of at most ``max_tokens``.

    ``spans`` are the cleaner's kept spans. Kept spans separated only by whitespace
    (or a dropped list bullet) form one region; a chunk never crosses regions. The
    last ``overlap_sentences`` sentences of a chunk open the next chunk of the same
    region, as far as the budget allows. A sentence longer than the budget becomes
    a chunk of its own; one longer than `RUN_ON` budgets is cut (`cut_run_on`).

    >>> doc = Document("d.txt", "T", "d.txt", "Eins zwei. Drei vier. Fünf.", "h")
    >>> chunks = chunk_document(doc, [Span(0, 27)], lambda s: len(s.split()), max_tokens=4)
    >>> [(c.chunk_id, c.text) for c in chunks]
    [('d.txt#0', 'Eins zwei. Drei vier.'), ('d.txt#1', 'Drei vier. Fünf.')]
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if overlap_sentences < 0:
        raise ValueError(f"overlap_sentences must be 0 or more, got {overlap_sentences}")
    chunks: list[Chunk] = []
    for region in _regions(doc.text, spans):
        sentences = [
            piece
            for span in region
            for sentence in split_sentences(doc.text, span)
            for piece in cut_run_on(doc.text, sentence, count_tokens, max_tokens)
        ]
        for first, last in _pack(doc.text, sentences, count_tokens, max_tokens, overlap_sentences):
            start, end = sentences[first].start, sentences[last].end
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{len(chunks)}",
                    doc_id=doc.doc_id,
                    title=doc.title,
                    start=start,
                    end=end,
                    text=text,
                    n_tokens=count_tokens(text),
                    published=doc.published,
                    author=doc.author,
                    url=doc.url,
                )
            )
    return chunks


# A sentence over this many chunk budgets is a run-on (a table or list flattened into one line, a text without
# full stops): whole, it would fill the answer prompt alone, or overflow it, and its embedding would see only
# its beginning. The corpus's longest sentence is 69 tokens against a budget of 64.
RUN_ON = 2
_WORD = re.compile(r"\S+")


def cut_run_on(text: str, sentence: Span, count_tokens: Callable[[str], int], max_tokens: int) -> list[Span]:
    """``sentence`` itself, or, over `RUN_ON` budgets, its pieces of about ``max_tokens`` tokens cut between
    words (inside a word longer than the budget too), with exact offsets.

    >>> text = "eins, zwei, drei, vier, fünf, sechs, sieben"
    >>> [text[s.start:s.end] for s in cut_run_on(text, Span(0, len(text)), lambda t: len(t.split()), 3)]
    ['eins, zwei, drei,', 'vier, fünf, sechs,', 'sieben']
    """
    if count_tokens(text[sentence.start : sentence.end]) <= RUN_ON * max_tokens:
        return [sentence]
    pieces: list[Span] = []
    start = end = sentence.start
    used = 0
    for word in _WORD.finditer(text, sentence.start, sentence.end):
        for part_start, part_end, cost in _word_parts(text, word.start(), word.end(), count_tokens, max_tokens):
            if used and used + cost > max_tokens:
                pieces.append(Span(start, end))
                start, used = part_start, 0
            end, used = part_end, used + cost
    pieces.append(Span(start, end))
    return pieces


def _word_parts(
    text: str, start: int, end: int, count_tokens: Callable[[str], int], max_tokens: int
) -> list[tuple[int, int, int]]:
    """A word as it is, or one longer than the budget (a URL, a base64 blob) in pieces within it; each with its
    tokens."""
    if (cost := count_tokens(text[start:end])) <= max_tokens:
        return [(start, end, cost)]
    parts = []
    while start < end:
        cut = min(end, start + max_tokens)  # a token holds a character or more
        while (cost := count_tokens(text[start:cut])) > max_tokens and cut > start + 1:
            cut = start + (cut - start) // 2
        parts.append((start, cut, cost))
        start = cut
    return parts


def _split_line(line: str) -> list[tuple[int, int]]:
    """Sentence offsets within one line, whitespace excluded."""
    if line.isspace():
        return []
    tokenizer = _tokenizer("en_PTB" if _guess_language(line) == "en" else "de_CMC")
    found = []
    for sentence in tokenizer.tokenize_text([line]):
        if not sentence:
            continue
        start, end = sentence[0].character_offset[0], sentence[-1].character_offset[1]
        piece = line[start:end]
        stripped = piece.strip()
        if stripped:
            left = start + len(piece) - len(piece.lstrip())
            found.append((left, left + len(stripped)))
    return found


@lru_cache(maxsize=2)
def _tokenizer(model: str) -> SoMaJo:
    """One SoMaJo per model, built on first use and reused (loading its lists takes ~0.1 s)."""
    return SoMaJo(model, split_camel_case=False, character_offsets=True)


def _guess_language(line: str) -> str:
    """'en' when a line has more English-only than German-only words, else 'de' (the corpus language).

    >>> _guess_language("Dr. Smith met U.S. officials on Jan. 5. He left."), _guess_language("Er ging.")
    ('en', 'de')
    """
    german, english = word_votes(line)
    return "en" if english > german else "de"


def _merge_false_splits(text: str, sentences: list[Span]) -> list[Span]:
    """Undo splits that the tokenizer makes inside a sentence.

    Merges when the next piece starts in lower case, when "Nr."/"No."/"S." is
    followed by a number, and when an ordinal ("27.") is followed by a month.
    Pieces on different lines are never merged.
    """
    merged: list[Span] = []
    for sentence in sentences:
        if merged and _is_false_split(text, merged[-1], sentence):
            merged[-1] = Span(merged[-1].start, sentence.end)
        else:
            merged.append(sentence)
    return merged


def _is_false_split(text: str, left: Span, right: Span) -> bool:
    if _LINE_BREAK.search(text, left.end, right.start):
        return False
    before, after = text[left.start : left.end], text[right.start : right.end]
    if after[:1].islower():
        return True
    if after[:1].isdigit() and _NUMBER_ABBREVIATION.search(before):
        return True
    return bool(_ORDINAL_END.search(before) and _MONTH_START.match(after))


def _regions(text: str, spans: Sequence[Span]) -> list[list[Span]]:
    """Group sorted, non-overlapping spans into regions of text with no dropped content between."""
    regions: list[list[Span]] = []
    previous: Span | None = None
    for span in spans:
        if not 0 <= span.start <= span.end <= len(text):
            raise ValueError(f"span {span} lies outside the document text (length {len(text)})")
        if previous is not None and span.start < previous.end:
            raise ValueError(f"spans must be sorted and non-overlapping: {previous} then {span}")
        if previous is not None and _JOINABLE_GAP.fullmatch(text, previous.end, span.start):
            regions[-1].append(span)
        else:
            regions.append([span])
        previous = span
    return regions


def _pack(
    text: str,
    sentences: list[Span],
    count_tokens: Callable[[str], int],
    max_tokens: int,
    overlap: int,
) -> list[tuple[int, int]]:
    """Greedy packing of sentence indexes into (first, last) pairs, each chunk within budget.

    Each chunk adds at least one sentence not in the chunk before it, so packing
    always ends; overlap shrinks when the repeated sentences and the next new one
    would not fit together.
    """

    def fits(first: int, last: int) -> bool:
        return count_tokens(text[sentences[first].start : sentences[last].end]) <= max_tokens

    packed: list[tuple[int, int]] = []
    first = 0
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and fits(first, last + 1):
            last += 1
        packed.append((first, last))
        if last + 1 >= len(sentences):
            break
        following = last + 1
        first = max(following - overlap, packed[-1][0] + 1)
        while first < following and not fits(first, following):
            first += 1
    return packed
