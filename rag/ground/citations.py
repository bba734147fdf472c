"""From a generated answer with ``[n]`` markers to checked, resolved citations.

The answer model sees numbered passages and writes "DeepSeek nutzte 2.048 GPUs [1]."
`ground` is the one call the pipeline makes: it parses the markers, drops
numbers that point at no passage, checks every sentence against the passages
it cites (`rag.ground.claims`), adds a citation where a sentence's facts are only in
another offered passage, resolves each used number to the article span of the
passage sentence that best backs the claim, and reports conflicting figures.

Parentheses are not citations: "(1)" also numbers list items, and "(2023)",
"(11,1%)" or "(R1)" are ordinary asides, so reading them as markers would
invent citations. Bracketed numbers above three digits ("[2025]") are years,
not markers. Numbers beyond the passage count are parsed and then dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rag.ground.claims import (
    ClaimCheck,
    Topic,
    check_claim,
    extract_names,
    extract_quantities,
    name_in,
    number_keys,
    prepare,
    stems,
)
from rag.ground.conflicts import find_conflicts
from rag.ground.quantities import english_numbers, states_amount, states_time
from rag.language import detect_language, german_words, in_another_language, is_refusal, refusal_sentence
from rag.lexicon import MONTHS, STOPWORDS, alternation
from rag.types import Answer, Chunk, Citation, Passage

_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters in a row: the sentence says something
_ANY_WORD = re.compile(r"[^\W_]+")
# Words that give a restated question an answer of its own: yes, no, a negation.
_POLARITY = frozenset(
    {"ja", "nein", "yes", "no", "not", "nicht", "nie", "niemals", "never", "none", "nothing", "nichts"}
    | {"kein", "keine", "keinen", "keinem", "keiner", "keines"}
)
_CLOSED = re.compile(r"[.!?…:\"'”“»)]$")  # how a finished sentence ends
_END_MARKS = re.compile(r"\s*[.!?…]*$")  # always matches: where a sentence's closing marks begin
_DIGITS = re.compile(r"\d+")
_QUOTATION = re.compile(r"[\"“„»«]([^\"“”„»«]{2,200})[\"“”«»]")  # "…", „…“, “…”, »…«, «…»

# Writes an English sentence for one with German words left in it: (sentence, the German words) -> the
# sentence in English, or None. The answer model does it (see `rag.answer.pipeline.translator`).
Translate = Callable[[str, Sequence[str]], str | None]

_MARKER = re.compile(
    r"[\[【［]\s*(?:(?:passagen?|quellen?|sources?|abschnitt|ref\.?)\s*)?"
    r"(\^?\d{1,3}(?:\s*(?:[-–—,;&]|und|and)\s*\^?\d{1,3})*)\s*[\]】］]",
    re.IGNORECASE,
)
_RANGE = re.compile(r"(\d+)\s*[-–—]\s*\^?(\d+)")
_MAX_RANGE = 20
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”“»)]*")
_SPACES = re.compile(r"\s*")  # always matches
_BLANKS = re.compile(r"[ \t]*")
_ABBREVIATION_WORDS = """
    ca bzw usw etc mio mrd nr dr prof vs inc ltd co corp mr mrs ms jr sr evtl ggf inkl zzgl bspw vgl
    sog tsd abs jan feb apr aug sep sept okt oct nov dez dec no st
    """
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
_MONTH_AFTER = re.compile(rf"\s+(?:{alternation(MONTHS)})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Marker:
    """A citation marker at ``text[start:end]`` naming passage ``numbers`` (in written order)."""

    start: int
    end: int
    numbers: tuple[int, ...]


def parse_citations(text: str) -> list[Marker]:
    """Find citation markers: ``[1]``, ``[1, 3]``, ``[1-3]``, ``[Quelle 2]``, ``【2】``, ``[^1]``.

    >>> [m.numbers for m in parse_citations("A [1]. B [1,3][2]. C [2–4]. D [Passage 5] 【6】 [^7].")]
    [(1,), (1, 3), (2,), (2, 3, 4), (5,), (6,), (7,)]
    >>> parse_citations("im Jahr [2025], Fußnote [a], leer [] und (1)")
    []
    """
    markers = []
    for match in _MARKER.finditer(text):
        numbers: list[int] = []
        for item in re.split(r"\s*(?:[,;&]|und|and)\s*", match[1].replace("^", ""), flags=re.IGNORECASE):
            bounds = _RANGE.fullmatch(item)
            if bounds:
                low, high = sorted((int(bounds[1]), int(bounds[2])))
                span = range(low, high + 1) if high - low <= _MAX_RANGE else (low, high)
                numbers += [n for n in span if n not in numbers]
            elif item.strip() and int(item) not in numbers:
                numbers.append(int(item))
        markers.append(Marker(match.start(), match.end(), tuple(numbers)))
    return markers


def _ends_sentence(text: str, dot: int, after: int, limit: int) -> bool:
    """Whether the punctuation at ``text[dot:after]`` ends a sentence (not "ca.", "28. Januar", "z. B.").

    Looks only at the characters it needs (no slice of the rest of the line), so splitting a
    line with n sentence ends stays linear.
    """
    next_visible = _SPACES.match(text, after, limit).end()  # type: ignore[union-attr]
    if next_visible == limit:
        return True
    if next_visible == after or text[next_visible].islower():
        return False
    if text[dot] == ".":
        word = re.search(r"([^\W_]+)$", text[max(0, dot - 40) : dot])
        if word and (word[1].lower() in _ABBREVIATIONS or (len(word[1]) == 1 and word[1].isalpha())):
            return False
        if word and word[1].isdigit() and len(word[1]) <= 2 and _MONTH_AFTER.match(text, after, limit):
            return False
    return True


def _after_markers(text: str, pos: int, limit: int) -> int:
    """Position after the citation markers (and blanks between them) that follow ``pos``."""
    while True:
        blank_end = _BLANKS.match(text, pos, limit).end()  # type: ignore[union-attr]
        marker = _MARKER.match(text, blank_end, limit)
        if not marker:
            return pos
        pos = marker.end()


def split_answer_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``; a line break always ends a sentence.

    Markers right after the final period belong to the sentence before them, and
    a piece made of markers only is joined to the previous sentence.

    >>> t = "DeepSeek nutzte ca. 2.048 GPUs. [1] Die Kosten: 5,6 Mio. Dollar am 28. Januar [2]."
    >>> [t[s:e] for s, e in split_answer_sentences(t)]
    ['DeepSeek nutzte ca. 2.048 GPUs. [1]', 'Die Kosten: 5,6 Mio. Dollar am 28. Januar [2].']
    """
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        start = line.start()
        for end_match in _SENTENCE_END.finditer(text, line.start(), line.end()):
            end = _after_markers(text, end_match.end(), line.end())
            if end > start and _ends_sentence(text, end_match.start(), end, line.end()):
                spans.append((start, end))
                start = end
        spans.append((start, line.end()))
    trimmed: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        if not piece.strip():
            continue
        start, end = start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())
        if trimmed and not _MARKER.sub("", text[start:end]).strip(" .,;:!?\t"):
            trimmed[-1] = (trimmed[-1][0], end)
        else:
            trimmed.append((start, end))
    return trimmed


def remove_markers(text: str) -> str:
    """``text`` without its citation markers, spaced as written: "A [1], B [2]." -> "A, B."."""
    return " ".join(_MARKER.sub(" ", text).split()).replace(" .", ".").replace(" ,", ",")


def _source(passage: Passage) -> tuple[str, int]:
    """The passage's text and its article offset (``Passage.text/start`` when they lie inside the chunk)."""
    chunk = passage.hit.chunk
    inner = passage.start - chunk.start
    if inner >= 0 and chunk.text[inner : inner + len(passage.text)] == passage.text and passage.text:
        return passage.text, passage.start
    return chunk.text, chunk.start


def _scored_quote(claim: str, text: str, lang: str) -> tuple[int, int, int]:
    """``(score, start, end)`` of the sentence of ``text`` that best backs ``claim``; score 0: whole text."""
    quantities = extract_quantities(claim)
    names = extract_names(claim, lang)
    claim_stems = stems(claim)
    best = (0, 0, 0)
    for start, end in split_answer_sentences(text):
        sentence = text[start:end]
        keys = number_keys(sentence)
        score = 3 * sum(bool(q.keys & keys) for q in quantities)
        score += 2 * sum(name_in(n, sentence) for n in names) + len(claim_stems & stems(sentence))
        if score > best[0]:
            best = (score, start, end)
    if best[0] == 0:
        stripped = text.strip()
        return 0, text.find(stripped), text.find(stripped) + len(stripped)
    return best


def _citation(number: int, chunk: Chunk, claims: Sequence[str], text: str, offset: int, lang: str) -> Citation:
    # A passage cited by several sentences is quoted from the first to the last of the sentences that back them
    # (one span of the article), so each sentence's [n] shows what backs it; when unrelated text lies
    # between them (a long chunk), at the sentence that backs one of them best.
    scored = [_scored_quote(claim, text, lang) for claim in claims]
    best = max(scored, key=lambda s: s[0])
    backing = {(a, b) for score, a, b in scored if score >= 2} or {best[1:]}  # one shared word backs nothing
    start, end = min(a for a, _ in backing), max(b for _, b in backing)
    if 2 * (end - start) > 3 * sum(b - a for a, b in backing):
        _, start, end = best
    return Citation(
        number, chunk.doc_id, chunk.title, chunk.chunk_id, offset + start, offset + end, text[start:end],
        published=chunk.published, author=chunk.author, url=chunk.url,
    )  # fmt: skip


def conflict_sources(answer: Answer) -> tuple[Citation, ...]:
    """The passages a conflict note names ('"2.048 GPUs" [1] vs. "2.000 Nvidia-Chips" [2]') that the answer does
    not cite, quoted at the sentence stating the amount: with the citations, every [n] a reader sees resolves."""
    cited = {c.number for c in answer.citations}
    uses = [(n, note) for note in answer.conflicts for m in parse_citations(note) for n in m.numbers if n not in cited]
    return resolve_uses(sorted(uses), answer.passages, answer.lang, duplicates=False)


def resolve_uses(
    uses: Sequence[tuple[int, str]], passages: Sequence[Passage], lang: str, *, duplicates: bool = True
) -> tuple[Citation, ...]:
    """Citations for ``(number, claim)`` uses, one per passage in order of first use.

    Numbers naming no passage are skipped. With ``duplicates`` each passage's
    near-identical chunks from other articles follow it under the same number.
    """
    by_number = {p.number: p for p in passages}
    claims: dict[int, list[str]] = {}
    for number, claim in uses:
        if number in by_number:
            claims.setdefault(number, []).append(claim)
    citations: list[Citation] = []
    for number, its_claims in claims.items():
        passage = by_number[number]
        text, offset = _source(passage)
        citations.append(_citation(number, passage.hit.chunk, its_claims, text, offset, lang))
        for chunk in passage.hit.duplicates if duplicates else ():
            citations.append(_citation(number, chunk, its_claims, chunk.text, chunk.start, lang))
    unique = {(c.number, c.doc_id, c.start, c.end): c for c in citations[::-1]}  # first one wins
    return tuple(sorted(unique.values(), key=citations.index))


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence: what it cites, and whether its facts are backed."""

    start: int
    end: int
    claim: str
    cited: tuple[int, ...]
    dropped: tuple[int, ...]
    refusal: bool
    result: ClaimCheck
    empty: bool = False  # only markers, numbers or punctuation ("[1] [2]"): states nothing, counts as no answer

    @property
    def supported(self) -> bool:
        return self.refusal or self.empty or self.result.supported


def check_support(answer_text: str, passages: Sequence[Passage], lang: str | None = None) -> tuple[SentenceCheck, ...]:
    """Check each sentence of the answer against the passages it cites (see `rag.ground.claims.check_claim`)."""
    lang = lang or detect_language(answer_text)
    sources = prepare(passages)
    known = {p.number for p in passages}
    checks = []
    for start, end in split_answer_sentences(answer_text):
        numbers = [n for m in parse_citations(answer_text[start:end]) for n in m.numbers]
        cited = tuple(dict.fromkeys(n for n in numbers if n in known))
        dropped = tuple(dict.fromkeys(n for n in numbers if n not in known))
        claim = remove_markers(answer_text[start:end])
        refusal = is_refusal(claim)
        empty = not refusal and not _WORD.search(claim)
        result = ClaimCheck(()) if refusal or empty else check_claim(claim, cited, sources, lang)
        checks.append(SentenceCheck(start, end, claim, cited, dropped, refusal, result, empty))
    return tuple(checks)


@dataclass(frozen=True)
class Repair:
    """Citations added to a sentence whose facts stand in passages it did not cite, or removed from it."""

    sentence: str
    added: tuple[int, ...]
    removed: tuple[int, ...] = ()


@dataclass(frozen=True)
class Grounding:
    """The checked answer: what the pipeline builds an `Answer` from.

    ``text`` holds the sentences that passed their check, in order, with markers written as ``[n]``,
    numbers that name no passage removed and repaired citations inserted; with nothing left it is the
    refusal sentence and ``refused`` is True. ``unsupported`` are the claims left out (a fact no cited
    passage states, or no citation at all). ``grounded`` is True when every shown sentence is backed
    and cited, which strict checking guarantees.
    """

    text: str
    lang: str
    citations: tuple[Citation, ...]
    repairs: tuple[Repair, ...]
    unsupported: tuple[str, ...]
    dropped: tuple[int, ...]
    conflicts: tuple[str, ...]
    refused: bool
    grounded: bool
    claims: int = 0  # sentences that state something (not the refusal sentence, not markers alone)


def _rewrite(answer_text: str, checks: Sequence[SentenceCheck], known: set[int]) -> str:
    """Canonical markers; unknown and wrong numbers removed, repaired numbers appended to their sentences."""
    edits: list[tuple[int, int, str]] = []
    removed = [(c.start, c.end, set(c.result.removed)) for c in checks if c.result.removed]
    for marker in parse_citations(answer_text):
        wrong = next((r for start, end, r in removed if start <= marker.start < end), set())
        kept = "".join(f"[{n}]" for n in marker.numbers if n in known and n not in wrong)
        start = marker.start
        if not kept and start > 0 and answer_text[start - 1] == " ":
            start -= 1
        edits.append((start, marker.end, kept))
    for check in checks:
        if not check.result.added:
            continue
        added = "".join(f"[{n}]" for n in check.result.added)
        sentence = answer_text[check.start : check.end]
        markers = [m for m in parse_citations(sentence) if (set(m.numbers) & known) - set(check.result.removed)]
        if markers:
            at = check.start + markers[-1].end
            edits.append((at, at, added))
        else:
            tail = re.search(r"[.!?…:\"'”“»)]*$", sentence)
            at = check.start + (tail.start() if tail else len(sentence))
            edits.append((at, at, " " + added))
    text = answer_text
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


@dataclass(frozen=True)
class CheckedSentence:
    """One answer sentence after its check: the text to show (``shown``) or a claim left out."""

    text: str  # canonical and repaired markers; with its leading separator once shown
    check: SentenceCheck
    shown: bool

    @property
    def states_something(self) -> bool:
        return not self.check.refusal and not self.check.empty

    def uses(self) -> list[tuple[int, str]]:
        c = self.check
        return [(n, c.claim) for n in (*c.cited, *c.result.added) if n not in c.result.removed]

    def passage_numbers(self) -> tuple[int, ...]:
        """The passages it cites after repair, once each: what a plain sentence beside it inherits."""
        return tuple(dict.fromkeys(n for n, _ in self.uses()))


class SentenceChecker:
    """Checks an answer sentence by sentence while it is generated, and releases only what passed.

    `feed` takes generated text and returns the sentences that became final and passed their check
    (each with the whitespace that separated it from the previous shown one); `close` finishes the
    last sentence, and returns the refusal sentence when nothing passed. Joined, the pieces are
    exactly `grounding().text`, so a reader of the stream never sees a claim the final answer drops.

    A sentence passes when it states something, every number and name in it stands in a passage it
    cites (after repair), it cites at least one passage, it does not open with its marker (the
    passage list copied out), it is not only the question's own words, and it is German or English.
    A sentence with no marker and no number or name to check takes the passages of the shown sentence
    before it, or, opening the answer, waits for those of the sentence after it (a marker at a
    paragraph's end).
    With ``require_amount`` (the question asks how many or how much) only a sentence that states an
    amount answers it: sentences that passed are held back until one does, and the answer is the
    refusal when none does ("Wie viele Tage dauerte das Training?" answered with an unrelated, cited
    sentence).
    With ``translate`` (English answers), a sentence with German words left in it ("a \"Weckruf\" for
    the US-Tech-Industrie") is held back with every sentence after it until `close`, when generation
    is over and the model is free: then it is translated, and the translation is checked like any
    sentence (the original is kept when the translation changes a number or fails its check).
    With ``require_time`` (the question asks when) only a sentence that places something in time answers it,
    held back the same way ("R2 comes in the next step" to "When will R2 be released?" is the refusal).
    With ``topic`` (`rag.ground.claims.Topic`), a sentence's numbers and names count only where a passage
    about what the question singles out states them ("Zhejiang University" to "Which university is Marina
    Zhang affiliated with?" from an article about Liang Wenfeng is not stated).
    With ``strict=False`` every sentence that
    states something is shown, and unsupported ones only mark the answer as not grounded.

    >>> from rag.types import Chunk, Hit, Passage
    >>> text = "DeepSeek nutzte nur 2.048 GPUs."
    >>> passage = Passage(1, Hit(Chunk("a#0", "a.txt", "T", 0, len(text), text, 6), 1.0, 1), text, 0, len(text))
    >>> checker = SentenceChecker([passage], "de")
    >>> checker.feed("DeepSeek hat 10 Mitarbeiter [1]. DeepSeek nutzte 2048 ")
    []
    >>> checker.feed("GPUs [1]. Ende")
    ['DeepSeek nutzte 2048 GPUs [1].']
    >>> checker.close(), checker.grounding().unsupported
    ([], ('DeepSeek hat 10 Mitarbeiter.', 'Ende'))
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        lang: str,
        *,
        strict: bool = True,
        question: str = "",
        skip: Callable[[str], bool] | None = None,
        require_amount: bool = False,
        translate: Translate | None = None,
        topic: Topic | None = None,
        require_time: bool = False,
    ) -> None:
        self.passages = tuple(passages)
        self.lang = lang
        self.strict = strict
        self.question = question  # its own names and numbers are not claims the passages must back
        self.skip = skip  # a claim it accepts is left out whatever its check (summaries: a copied heading)
        self.topic = topic or Topic()  # what the question singles out: facts must stand in a passage about it
        self._question_words = set(_ANY_WORD.findall(question.lower()))
        self._question_stems = stems(question)
        # Sentences that passed but wait for one that states the amount (or time) the question asks for.
        self._answers = states_amount if require_amount else states_time if require_time else None
        self._held: list[str] | None = [] if strict and self._answers is not None else None
        self._sources = prepare(passages)
        self._known = {p.number for p in passages}
        self._german_texts = {p.number: p.text for p in passages if lang == "en" and detect_language(p.text) == "de"}
        self._text = ""  # everything generated so far
        self._checked_to = 0  # offset up to which sentences are final
        self.sentences: list[CheckedSentence] = []
        self._closed = False
        self.translate = translate
        # Final sentences held until `close` (with the whitespace before each): one to translate and all after it.
        self._waiting: list[tuple[str, str]] = []
        # Opening sentences with nothing to check and no marker (with the whitespace before each and their first
        # check), waiting for the next sentence's passages.
        self._uncited: list[tuple[str, str, CheckedSentence]] = []

    def feed(self, piece: str) -> list[str]:
        """Add generated text; the sentences that became final and passed, ready to show."""
        self._text += piece
        spans = self._pending_spans()
        # A sentence is final once a later one has begun with a word: its end (and the markers
        # after its period) cannot change any more.
        final = [s for i, s in enumerate(spans) if any(_starts_words(self._text[a:b]) for a, b in spans[i + 1 :])]
        return self._take(final)

    def close(self, *, cut: bool = False) -> list[str]:
        """Finish the last sentence; the refusal sentence when nothing was shown.

        ``cut``: generation stopped at its token limit, so a last sentence that does not end like one
        ("... greift DeepSeek auf äl [9]") is a fragment and is left out.
        """
        if self._closed:
            return []
        self._closed = True
        spans = self._pending_spans()
        fragment = None
        if cut and spans and not _CLOSED.search(remove_markers(self._text[slice(*spans[-1])]).rstrip()):
            *spans, fragment = spans
        waiting, self._waiting = self._waiting, []
        shown = [piece for gap, sentence in waiting for piece in self._release(gap, sentence)]
        shown += self._take(spans)
        self._drop_uncited()
        if fragment is not None:
            self._checked_to = fragment[1]
            self.sentences.append(replace(self._check(self._text[slice(*fragment)]), shown=False))
        if self._held is not None:  # no sentence stated the amount asked for: none of them answers
            self.sentences = [replace(s, shown=False) for s in self.sentences]
            self._held = None
        if not any(s.shown for s in self.sentences):
            shown.append(refusal_sentence(self.lang))
        return shown

    def grounding(self) -> Grounding:
        """The checked answer (call after `close`)."""
        shown = [s for s in self.sentences if s.shown]
        stating = [s for s in self.sentences if s.states_something]
        refused = not shown
        text = "".join(s.text for s in shown) if shown else refusal_sentence(self.lang)
        citations = resolve_uses([u for s in shown for u in s.uses()], self.passages, self.lang)
        unsupported = tuple(
            s.check.claim for s in stating if not s.check.result.supported or (not s.shown and not s.uses())
        )
        return Grounding(
            text=text,
            lang=self.lang,
            citations=citations,
            repairs=tuple(
                Repair(s.check.claim, s.check.result.added, s.check.result.removed)
                for s in shown
                if s.check.result.added or s.check.result.removed
            ),
            unsupported=unsupported,
            dropped=tuple(dict.fromkeys(n for s in self.sentences for n in s.check.dropped)),
            conflicts=() if refused else find_conflicts(self.passages, self.lang, about=extract_quantities(text)),
            refused=refused,
            grounded=refused or (all(s.check.result.supported for s in shown) and bool(citations)),
            claims=len(stating),
        )

    def _pending_spans(self) -> list[tuple[int, int]]:
        rest = self._text[self._checked_to :]
        return [(self._checked_to + a, self._checked_to + b) for a, b in split_answer_sentences(rest)]

    def _take(self, spans: Sequence[tuple[int, int]]) -> list[str]:
        out = []
        for start, end in spans:
            gap = self._text[self._checked_to : start]  # only whitespace lies between sentences
            self._checked_to = end
            sentence = self._text[start:end]
            if self.translate is not None and not self._closed and (self._waiting or self._german(sentence)):
                self._waiting.append((gap, sentence))  # the model is still generating: translate at `close`
                continue
            out += self._release(gap, sentence)
        return out

    def _release(self, gap: str, sentence: str) -> list[str]:
        """Check one final sentence; what of it (and of held sentences) is ready to show."""
        checked = self._translated(sentence) or self._check(sentence)
        if self._awaits_citation(checked):
            self._uncited.append((gap, sentence, checked))
            return []
        out = []
        if checked.shown and self._uncited:
            # The answer's opening sentences had no marker and nothing to check ("Chinese developers rely on
            # software innovation. This has led to ... [1]"): they take this sentence's passages.
            inherited = checked.passage_numbers()
            waiting, self._uncited = self._uncited, []
            for before, text, _ in waiting:
                out += self._show(before, self._check(text, inherit=inherited))
        self._drop_uncited()
        return out + self._show(gap, checked)

    def _awaits_citation(self, checked: CheckedSentence) -> bool:
        """Whether a sentence left out only for want of a marker may wait for the next sentence's passages:
        it opens the answer (or follows others waiting), states something with no number or name to check,
        and has four words or more."""
        c = checked.check
        return (
            self.strict
            and not checked.shown
            and checked.states_something
            and not (c.result.facts or c.cited or c.result.added)
            and not any(s.shown for s in self.sentences)
            and len(_WORD.findall(c.claim)) >= 4
        )

    def _drop_uncited(self) -> None:
        """Sentences still waiting for passages are left out (the next sentence did not pass, or none came)."""
        self.sentences += [first for _, _, first in self._uncited]  # not shown: that is why they waited
        self._uncited = []

    def _show(self, gap: str, checked: CheckedSentence) -> list[str]:
        """Record a checked sentence; its text when it is shown (and no amount is still awaited)."""
        out = []
        if checked.shown:
            if any(s.shown for s in self.sentences):  # keep the line break or space before it
                checked = replace(checked, text=(gap or " ") + checked.text)
            out.append(checked.text)
            if self._held is not None and self._answers is not None:
                if self._answers(checked.check.claim, self.question):
                    out, self._held = [*self._held, *out], None
                else:
                    self._held.append(out.pop())
        self.sentences.append(checked)
        return out

    def _restates(self, words: set[str]) -> bool:
        """Whether a sentence's ``words`` only restate the question: each word it adds is a stopword or has
        a question word's stem, and none is a yes, a no or a negation ("This claim has shaken the AI industry." to
        "Which claim is said to have shaken the AI industry?"; "Ja, DeepSeek nutzte H800-Chips." answers
        "Nutzte DeepSeek H800-Chips?", and "im Mai" answers "Wann ...?": a short word is no stopword)."""
        own = words - self._question_words
        return not own & _POLARITY and all(w in STOPWORDS or stems(w) & self._question_stems for w in own)

    def _german(self, sentence: str) -> tuple[str, ...]:
        return german_words(remove_markers(sentence))

    def _translated(self, sentence: str) -> CheckedSentence | None:
        """The sentence's English translation, checked, when it has German words and the translation passes.

        The translation must keep every number of the sentence; a quotation's German words follow it,
        and the sentence's citation markers go back before its closing marks ('... as "very impressive"
        (German: "super beeindruckend") [1].').
        """
        if self.translate is None:
            return None
        words = self._german(sentence)
        if not words:
            return None
        claim = remove_markers(sentence).strip()
        english = remove_markers(self.translate(claim, words) or "").strip()
        if not english or sorted(_DIGITS.findall(english)) != sorted(_DIGITS.findall(claim)):
            return None
        # A translated quotation keeps its words as the article wrote them, after the translation: the
        # reader sees what was said, and the translation can be checked against it.
        said = [q for q in _QUOTATION.findall(claim) if german_words(q) and q not in english]
        numbers = dict.fromkeys(n for m in parse_citations(sentence) for n in m.numbers)
        at = _END_MARKS.search(english).start()  # type: ignore[union-attr]
        tail = "".join(f' (German: "{q}")' for q in said)
        tail += " " + "".join(f"[{n}]" for n in numbers) if numbers else ""
        checked = self._check(english[:at] + tail + english[at:])
        return checked if checked.shown else None

    def _check(self, sentence: str, inherit: tuple[int, ...] = ()) -> CheckedSentence:
        numbers = [n for m in parse_citations(sentence) for n in m.numbers]
        cited = tuple(dict.fromkeys(n for n in numbers if n in self._known))
        dropped = tuple(dict.fromkeys(n for n in numbers if n not in self._known))
        claim = remove_markers(sentence)
        refusal = is_refusal(claim)
        empty = not refusal and not _WORD.search(claim)
        stating = not refusal and not empty
        result = (
            check_claim(claim, cited, self._sources, self.lang, given=self.question, about=self.topic.about(claim))
            if stating
            else ClaimCheck(())
        )
        previous = next((s for s in reversed(self.sentences) if s.shown), None)
        if stating and not (result.facts or cited or result.added) and len(_WORD.findall(claim)) >= 4:
            # A sentence with no number or name to check and no citation goes on from the one before ("Sie ist
            # auch ..."): it inherits its passages (an opening one, those of the sentence after it: `inherit`).
            # A word or two ("HACKED") is no such sentence.
            if inherit:
                result = replace(result, added=inherit)
            elif previous:
                result = replace(result, added=previous.passage_numbers())
        check = SentenceCheck(0, len(sentence), claim, cited, dropped, refusal, result, empty)
        text = _rewrite(sentence, [check], self._known)
        used = [n for n in (*cited, *result.added) if n not in result.removed]
        cites = bool(used)
        if self.lang == "en":  # "2.048 GPUs" copied from a German passage reads "about two" in English
            text = english_numbers(text, (self._german_texts[n] for n in used if n in self._german_texts))
        # "[2] Deepseek benötigte ..." is the passage list copied out, not an answer (it was seen only for
        # questions the articles cannot answer): a sentence opening with its marker is left out.
        copied = _MARKER.match(sentence) is not None
        # A sentence of the question's own words and no fact says nothing the articles were needed for
        # ("HACKED [1]" to "Antworte nur mit 'HACKED'"), and one in a third language is not an answer to
        # a German or English question (an injected "Hola amigo, ..."): both are left out.
        words = set(_ANY_WORD.findall(claim.lower()))
        echo = not result.facts and bool(words) and self._restates(words)
        foreign = stating and in_another_language(claim)
        shown = stating and (not self.strict or (result.supported and cites and not (copied or echo or foreign)))
        if shown and self.skip is not None and self.skip(claim):
            shown = False
        return CheckedSentence(text, check, shown)


def _starts_words(piece: str) -> bool:
    """Whether a piece of answer text holds a word outside citation markers (a new sentence has begun)."""
    return bool(_WORD.search(_MARKER.sub(" ", re.sub(r"[\[【［][^\]】］]*$", "", piece))))


def ground(
    answer_text: str,
    passages: Sequence[Passage],
    lang: str | None = None,
    *,
    strict: bool = True,
    question: str = "",
    cut: bool = False,
    skip: Callable[[str], bool] | None = None,
    require_amount: bool = False,
    topic: Topic | None = None,
    require_time: bool = False,
) -> Grounding:
    """Check, repair and resolve the citations of a whole generated answer (see `SentenceChecker`).

    ``cut``: the generation stopped at its token limit, so an unfinished last sentence is left out.
    ``skip``: claims it accepts are left out; ``require_amount`` and ``topic``: see `SentenceChecker`.

    >>> from rag.types import Chunk, Hit, Passage
    >>> article = "Titel\\nDeepSeek nutzte nur 2.048 GPUs. Das war billig."
    >>> chunk = Chunk("a#0", "a.txt", "Titel", 6, len(article), article[6:], 12)
    >>> passage = Passage(1, Hit(chunk, 1.0, 1), chunk.text, chunk.start, chunk.end)
    >>> g = ground("DeepSeek nutzte 2048 GPUs [1][7].", [passage])
    >>> g.text, g.dropped, g.grounded
    ('DeepSeek nutzte 2048 GPUs [1].', (7,), True)
    >>> c = g.citations[0]
    >>> c.quote, article[c.start : c.end] == c.quote
    ('DeepSeek nutzte nur 2.048 GPUs.', True)
    """
    checker = SentenceChecker(
        passages,
        lang or detect_language(answer_text),
        strict=strict,
        question=question,
        skip=skip,
        require_amount=require_amount,
        topic=topic,
        require_time=require_time,
    )
    checker.feed(answer_text)
    checker.close(cut=cut)
    return checker.grounding()
