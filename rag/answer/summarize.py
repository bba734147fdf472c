"""Cited summaries: of one article, or of what the articles say about a topic.

document -> its chunks in article order, overlap cut -> numbered passages
topic    -> hybrid search -> relevance gate -> the best passages
passages -> fit one prompt?  summarise them: streamed, checked sentence by sentence like an answer
         -> else map:    each part that fits the prompt budget -> a part summary, checked (only backed
                         sentences stay, each with the passage numbers it cites)
                 reduce: the part summaries as notes, still carrying those passage numbers -> the final
                         summary cites them: streamed, checked against the original passages

Passages are numbered once for the whole text, so a part summary's ``[7]`` already names the
article's passage 7: the final summary's citations resolve to the article, the character span and
the quoted sentence, however many parts there were. Notes that do not fit one reduce prompt are
first condensed in groups the same way; what still does not fit is cut, each note keeping a run of its
first sentences (`_Run.fit`), and the sentences cut or shortened are named (`Summary.left_out`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.answer.pipeline import AnswerSettings, checked_text, is_relevant
from rag.answer.prompt import Message, PromptTemplate, format_passages, load_template
from rag.config import Settings, default
from rag.errors import ConfigError, InputError
from rag.ground.citations import (
    Grounding,
    SentenceChecker,
    ground,
    parse_citations,
    remove_markers,
    split_answer_sentences,
)
from rag.ground.quantities import extract_quantities
from rag.ground.topics import Articles, unnamed
from rag.language import LANGUAGES, detect_language, refusal_sentence
from rag.models.generate import GenerationSettings, Generator, Usage
from rag.retrieval.retrieve import Retriever, select_passages
from rag.retrieval.store import LoadedIndex
from rag.serialize import answer_to_dict
from rag.types import Answer, Hit, Passage

MAX_TOPIC_CHARS = 500
# A topic summary draws on more than an answer's few passages: the best hits of several articles,
# cut to what fits one prompt.
TOPIC_PASSAGES = 8
# Budgets are counted with the embedding model's tokenizer (`count_tokens`); Qwen2.5's tokenizer
# writes the German articles of corpus/ in 1.16-1.22 times as many tokens, hence the factor.
LLM_TOKENS_PER_COUNTED = 1.25
CHAT_TOKENS = 32  # the chat template's role markers around the messages, with room to spare


class UnknownDocument(InputError):
    """A summary was asked for a document id the index does not hold (exit code 2, HTTP 404)."""

    http_status = 404


@dataclass(frozen=True)
class SummaryTemplates:
    """The prompt files, by language: a whole article, a topic, and the reduce step over part summaries."""

    document: dict[str, PromptTemplate]  # variables: passages
    topic: dict[str, PromptTemplate]  # variables: passages, topic
    reduce: dict[str, PromptTemplate]  # variables: notes

    @classmethod
    def load(cls, prompts_dir: Path) -> SummaryTemplates:
        def each(name: str) -> dict[str, PromptTemplate]:
            return {lang: load_template(prompts_dir, f"{name}.{lang}") for lang in LANGUAGES}

        return cls(document=each("summarize"), topic=each("summarize-topic"), reduce=each("summarize-reduce"))


@dataclass(frozen=True)
class SummarySettings:
    """The summary knobs, all from `Settings` (defaults and meaning there).

    A part is as many passages as fit ``n_ctx`` beside the instructions and ``max_tokens`` of reply;
    ``part_tokens`` caps it lower (tests use it to force several parts).
    """

    n_ctx: int = default("n_ctx")
    max_tokens: int = default("max_tokens")
    strict: bool = default("strict")
    min_dense_score: float = default("min_dense_score")
    topic_check: bool = default("topic_check")  # a topic naming what no article names is refused (`unnamed`)
    topic_passages: int = TOPIC_PASSAGES
    part_tokens: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SummarySettings:
        return cls(
            n_ctx=settings.n_ctx,
            max_tokens=settings.max_tokens,
            strict=settings.strict,
            min_dense_score=settings.min_dense_score,
            topic_check=settings.topic_check,
        )

    @property
    def generation(self) -> GenerationSettings:
        return GenerationSettings(max_tokens=self.max_tokens)


@dataclass(frozen=True)
class Part:
    """One map step: the passages ``first``..``last`` summarised, and what of that passed its check."""

    number: int
    of: int
    first: int
    last: int
    text: str  # checked sentences with their [n]; the refusal sentence when none passed
    refused: bool = False  # no sentence passed its check


@dataclass(frozen=True)
class Summary:
    """A summary checked like an answer: ``answer.text`` is the summary, ``answer.citations`` resolve
    to article spans, ``answer.passages`` are all passages it could cite. ``answer.question`` is the
    document id or the topic. ``parts`` are the map steps of a text too long for one prompt; ``left_out``
    their checked sentences (with their [n]) that did not fit the final prompt, so are not (or only shortened)
    in the summary."""

    answer: Answer
    doc_id: str | None = None
    topic: str | None = None
    parts: tuple[Part, ...] = ()
    left_out: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `rag summarize --json` and `POST /v1/summarize`: the Answer's, plus these."""
        parts = [asdict(p) for p in self.parts]
        return {
            "doc_id": self.doc_id, "topic": self.topic, "parts": parts, "left_out": list(self.left_out),
            **answer_to_dict(self.answer),
        }  # fmt: skip


def require_document(index: LoadedIndex, doc_id: str) -> None:
    """`UnknownDocument`, naming the id, unless the index holds ``doc_id``."""
    if doc_id not in index.documents:
        raise UnknownDocument(
            f"no document {doc_id!r} in the index; ids are file names (`rag index --stats`, GET /v1/documents)"
        )


def document_passages(index: LoadedIndex, doc_id: str) -> list[Passage]:
    """The document's chunks in article order as numbered passages, each starting where the one before
    ended (chunks repeat their neighbour's last sentences), so the article is given once."""
    require_document(index, doc_id)
    chunks = sorted((c for c in index.chunks if c.doc_id == doc_id), key=lambda c: (c.start, c.end))
    passages: list[Passage] = []
    covered = 0
    for chunk in chunks:
        text = chunk.text[max(0, covered - chunk.start) :]
        start = chunk.end - len(text)
        stripped = text.lstrip()
        if stripped.strip():
            start += len(text) - len(stripped)
            hit = Hit(chunk=chunk, score=1.0, rank=len(passages) + 1)
            passages.append(Passage(len(passages) + 1, hit, stripped, start, chunk.end))
        covered = max(covered, chunk.end)
    return passages


def summarize_document(
    doc_id: str,
    *,
    index: LoadedIndex,
    generator: Generator,
    templates: SummaryTemplates,
    count_tokens: Callable[[str], int],
    settings: SummarySettings = SummarySettings(),
    lang: str | None = None,
    on_token: Callable[[str], None] | None = None,
    on_part: Callable[[Part], None] | None = None,
) -> Summary:
    """Summarise one indexed article in ``lang`` (default: the article's language), every sentence cited."""
    started = time.perf_counter()
    passages = document_passages(index, doc_id)
    lang = _language(lang) or index.langs.get(doc_id) or detect_language(index.documents[doc_id].text)
    run = _Run(doc_id, lang if lang in LANGUAGES else "en", started, generator, settings, on_token, on_part)
    run.timings["passages"] = time.perf_counter() - started
    answer, parts = run.summarize(passages, templates.document[run.lang], {}, templates.reduce[run.lang], count_tokens)
    return Summary(answer, doc_id=doc_id, parts=parts, left_out=tuple(run.left_out))


def checked_topic(topic: str) -> str:
    """``topic`` stripped; `InputError` unless it has 1 to MAX_TOPIC_CHARS characters (`/v1/summarize`
    checks it before waiting for the model, so a blank topic is a 400 however busy the model is)."""
    return checked_text(topic, MAX_TOPIC_CHARS, "topic")


def summarize_topic(
    topic: str,
    *,
    retriever: Retriever,
    generator: Generator,
    templates: SummaryTemplates,
    count_tokens: Callable[[str], int],
    settings: SummarySettings = SummarySettings(),
    lang: str | None = None,
    on_token: Callable[[str], None] | None = None,
    on_part: Callable[[Part], None] | None = None,
) -> Summary:
    """Summarise what the articles say about ``topic`` in ``lang`` (default: the topic's language).

    A topic naming what no indexed article names ("Tesla Aktie", `rag.ground.topics.unnamed`) is the refusal sentence
    before anything is searched: the articles cannot say anything about it, and a summary of the passages
    nearest to it would lend it their facts ("Die Tesla Aktien stürzten ab ... [1]"). Otherwise the topic
    is searched like a question; with no passage about it the summary is the refusal sentence too.
    """
    started = time.perf_counter()
    topic = checked_topic(topic)
    lang = _language(lang) or detect_language(topic)
    run = _Run(topic, lang, started, generator, settings, on_token, on_part, question=without_numbers(topic))
    if settings.topic_check and unnamed(topic, _articles(retriever.index)):
        return Summary(run.refusal(), topic=topic)
    hits = retriever.search(topic, settings.topic_passages)
    run.timings["retrieve"] = time.perf_counter() - started
    if not is_relevant(hits, AnswerSettings(min_dense_score=settings.min_dense_score)):
        return Summary(run.refusal(), topic=topic)
    template = templates.topic[run.lang]
    budget = run.budget(template, {"topic": topic}, count_tokens)
    passages = select_passages(
        hits, budget_tokens=budget, max_passages=settings.topic_passages, count_tokens=count_tokens
    )
    answer, parts = run.summarize(passages, template, {"topic": topic}, templates.reduce[run.lang], count_tokens)
    return Summary(answer, topic=topic, parts=parts, left_out=tuple(run.left_out))


def _articles(index: LoadedIndex) -> Articles:
    """The indexed articles' text for `unnamed`, kept once per index version (`LoadedIndex.derived`)."""
    articles: Articles | None = index.derived.get("topic_articles")
    if articles is None:
        articles = index.derived["topic_articles"] = Articles.of(d.text for d in index.documents.values())
    return articles


def without_numbers(topic: str) -> str:
    """``topic`` without its numbers, amounts and dates: what the sentence checks take as given.

    A topic's names need no passage ("Sam Altman": a passage may say "er"), but a number it states is a claim
    like any other: "Nvidia verlor 900 Milliarden Dollar" as a topic must not let "Nvidia verlor 900 Milliarden
    Dollar [1]" pass where passage 1 says 600.

    >>> without_numbers("Nvidia verlor 900 Milliarden Dollar am 27.01.2025, R1 und H800")
    'Nvidia verlor   am  , R1 und H800'
    """
    for quantity in reversed(extract_quantities(topic)):
        topic = topic[: quantity.start] + " " + topic[max(quantity.end, quantity.unit_end) :]
    return topic


def _language(lang: str | None) -> str | None:
    if lang is not None and lang not in LANGUAGES:
        raise InputError(f"lang {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def pack(costs: Sequence[int], budget: int) -> list[range]:
    """Consecutive groups of items whose costs fit ``budget``: as few groups as possible, and among
    those the most even (the smallest largest group), so no part is a short remainder.

    An item over the budget forms a group of its own.

    >>> pack([5, 5, 5, 5, 5, 5, 5], 30)  # greedy filling would give 6 items and 1
    [range(0, 4), range(4, 7)]
    >>> pack([4, 4, 4], 20), pack([], 5), pack([30, 1], 10)
    ([range(0, 3)], [], [range(0, 1), range(1, 2)])
    """

    def greedy(limit: int) -> list[range]:
        groups: list[range] = []
        start, used = 0, 0
        for i, cost in enumerate(costs):
            if i > start and used + cost > limit:
                groups.append(range(start, i))
                start, used = i, 0
            used += cost
        if start < len(costs):
            groups.append(range(start, len(costs)))
        return groups

    fewest = greedy(budget)
    if len(fewest) <= 1 or max(costs) > budget:
        return fewest
    low, high = max(max(costs), math.ceil(sum(costs) / len(fewest))), budget
    while low < high:  # the smallest group limit that still needs no more groups
        middle = (low + high) // 2
        low, high = (low, middle) if len(greedy(middle)) <= len(fewest) else (middle + 1, high)
    return greedy(low)


@dataclass
class _Run:
    """One summary being made: its timings, token counts and the callbacks it reports to."""

    target: str  # the document id or the topic (the Answer's `question`)
    lang: str
    started: float
    generator: Generator
    settings: SummarySettings
    on_token: Callable[[str], None] | None = None
    on_part: Callable[[Part], None] | None = None
    question: str = ""  # a topic's own names and numbers are not claims the passages must back
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    headings: frozenset[str] = frozenset()  # the passages' heading lines, never a summary sentence
    left_out: list[str] = field(default_factory=list)  # note sentences cut to fit the final prompt (`fit`)

    def copied_heading(self, claim: str) -> bool:
        return _plain(claim) in self.headings

    def emit(self, piece: str) -> None:
        if self.on_token is not None:
            self.on_token(piece)

    def between(self) -> None:
        """Called while the model reads a prompt: a client that went away stops the work there too."""
        self.emit("")

    def budget(self, template: PromptTemplate, values: dict[str, str], count_tokens: Callable[[str], int]) -> int:
        """Counted tokens of passages (or notes) that fit one prompt of ``template`` beside its reply."""
        empty = {name: values.get(name, "") for name in template.variables}
        fixed = sum(count_tokens(m["content"]) for m in template.render(**empty))
        room = self.settings.n_ctx - self.settings.max_tokens - CHAT_TOKENS
        budget = int((room - fixed * LLM_TOKENS_PER_COUNTED) / LLM_TOKENS_PER_COUNTED)
        if budget < 50:
            raise ConfigError(
                f"RAG_N_CTX={self.settings.n_ctx} leaves {max(budget, 0)} tokens for article text beside the "
                f"instructions and RAG_MAX_TOKENS={self.settings.max_tokens}; raise RAG_N_CTX or lower RAG_MAX_TOKENS"
            )
        return min(budget, self.settings.part_tokens) if self.settings.part_tokens else budget

    def summarize(
        self,
        passages: Sequence[Passage],
        template: PromptTemplate,
        values: dict[str, str],
        reduce: PromptTemplate,
        count_tokens: Callable[[str], int],
    ) -> tuple[Answer, tuple[Part, ...]]:
        if not passages:
            return self.refusal(), ()
        self.headings = heading_lines(passages)
        budget = self.budget(template, values, count_tokens)
        groups = pack([count_tokens(block) for block in _blocks(passages)], budget)
        if len(groups) == 1:
            prompt = template.render(passages=format_passages(passages, headers=False), **values)
            return self.final(prompt, passages), ()
        t = time.perf_counter()
        parts: list[Part] = []
        for group in groups:
            part = [passages[i] for i in group]
            g = self.checked(template.render(passages=format_passages(part, headers=False), **values), part)
            parts.append(Part(len(parts) + 1, len(groups), part[0].number, part[-1].number, g.text, g.refused))
            if self.on_part is not None:
                self.on_part(parts[-1])
        notes = self.condense([p.text for p in parts if not p.refused], reduce, passages, count_tokens)
        self.timings["map"] = time.perf_counter() - t
        if not notes:
            return self.refusal(passages), tuple(parts)
        return self.final(reduce.render(notes="\n\n".join(notes)), passages), tuple(parts)

    def condense(
        self, notes: list[str], reduce: PromptTemplate, passages: Sequence[Passage], count_tokens: Callable[[str], int]
    ) -> list[str]:
        """Notes that fit one reduce prompt: groups of them reduced (and checked) while that shortens them,
        then cut to whole sentences if they still do not fit (`fit`)."""
        budget = self.budget(reduce, {}, count_tokens)
        while len(notes) > 1:
            groups = pack([count_tokens(n) + 1 for n in notes], budget)
            if len(groups) == 1 or len(groups) == len(notes):
                break
            condensed = []
            for group in groups:  # a note alone stays as it is
                if len(group) == 1:
                    condensed.append(notes[group[0]])
                    continue
                g = self.checked(reduce.render(notes="\n\n".join(notes[i] for i in group)), passages)
                condensed += [notes[i] for i in group] if g.refused else [g.text]
            if len(condensed) >= len(notes):
                break
            notes = condensed
        return self.fit(notes, budget, count_tokens)

    def fit(self, notes: list[str], budget: int, count_tokens: Callable[[str], int]) -> list[str]:
        """``notes`` cut to their first sentences that fit ``budget`` together (the prompts ask for the most
        important first). Each note's first sentence comes first, from an equal share of the room (what a
        shorter one leaves goes to the rest); one longer than its share keeps its first words, with its
        markers (`_shortened`). Then every second sentence, and so on, each note ending at its first sentence
        that does not fit, so a part never keeps a later point without the ones before it. Sentences cut or
        shortened go to ``left_out``."""
        if sum(count_tokens(n) + 1 for n in notes) <= budget:
            return notes
        sentences = [[note[a:b] for a, b in split_answer_sentences(note)] or [note] for note in notes]
        room = budget - len(notes)  # the blank line after each note
        kept = [0] * len(notes)  # each note keeps its first kept[i] sentences whole
        firsts: dict[int, str] = {}  # or its first sentence shortened
        by_cost = sorted(range(len(notes)), key=lambda i: count_tokens(sentences[i][0]))
        for n, i in enumerate(by_cost):
            share = room // (len(notes) - n)
            if count_tokens(sentences[i][0]) <= share:
                kept[i] = 1
            elif shortened := _shortened(sentences[i][0], share, count_tokens):
                firsts[i] = shortened
            room -= count_tokens(firsts.get(i, sentences[i][0] if kept[i] else ""))
        growing = {i for i in range(len(notes)) if kept[i]}
        while growing:
            for i in sorted(growing):
                if kept[i] < len(sentences[i]) and (cost := count_tokens(sentences[i][kept[i]])) <= room:
                    kept[i] += 1
                    room -= cost
                else:
                    growing.discard(i)
        self.left_out += [s for i, note in enumerate(sentences) for s in note[kept[i] :]]
        cut = (firsts.get(i) or " ".join(note[: kept[i]]) for i, note in enumerate(sentences))
        return [note for note in cut if note]

    def checked(self, messages: list[Message], passages: Sequence[Passage]) -> Grounding:
        """A part summary, generated whole and checked: only sentences a cited passage backs stay."""
        pieces = []
        for piece in self.generator.stream(messages, self.settings.generation, between=self.between):
            pieces.append(piece)
            self.emit("")  # lets a client that went away stop generation
        usage = self.generator.last_usage
        self._count(usage)
        cut = self.settings.generation.reached_limit(usage)  # a part cut at the limit loses its fragment
        text = "".join(pieces)
        return ground(
            text, passages, self.lang, strict=self.settings.strict, question=self.question, cut=cut,
            skip=self.copied_heading,
        )  # fmt: skip

    def final(self, messages: list[Message], passages: Sequence[Passage]) -> Answer:
        """The summary the reader sees, streamed sentence by sentence once each passed its check."""
        checker = SentenceChecker(
            passages, self.lang, strict=self.settings.strict, question=self.question, skip=self.copied_heading
        )
        gen_started = time.perf_counter()
        for piece in self.generator.stream(messages, self.settings.generation, between=self.between):
            self.timings.setdefault("first_token", time.perf_counter() - self.started)
            self.show(checker.feed(piece))
            self.emit("")
        usage = self.generator.last_usage
        truncated = self.settings.generation.reached_limit(usage)
        self.show(checker.close(cut=truncated))
        done = time.perf_counter()
        self._count(usage)
        self.timings["generation"] = done - gen_started
        decode = self.timings["decode"] = done - self.started - self.timings.get("first_token", done - self.started)
        self.timings["total"] = done - self.started
        return self.answer(checker.grounding(), passages, usage, decode, truncated)

    def show(self, pieces: Sequence[str]) -> None:
        for piece in pieces:
            self.timings.setdefault("first_shown", time.perf_counter() - self.started)
            self.emit(piece)

    def refusal(self, passages: Sequence[Passage] = ()) -> Answer:
        text = refusal_sentence(self.lang)
        self.show([text])
        self.timings["first_token"] = self.timings["first_shown"]
        self.timings["total"] = time.perf_counter() - self.started
        return Answer(self.target, text, self.lang, refused=True, passages=tuple(passages), timings=self.timings)

    def answer(self, g: Grounding, passages: Sequence[Passage], last: Usage, decode: float, truncated: bool) -> Answer:
        return Answer(
            question=self.target,
            text=g.text,
            lang=self.lang,
            refused=g.refused,
            grounded=g.grounded,
            citations=g.citations,
            passages=tuple(passages),
            conflicts=g.conflicts,
            unsupported=g.unsupported,
            timings=self.timings,
            prompt_tokens=self.usage.prompt_tokens,  # all generations: the parts and the final one
            completion_tokens=self.usage.completion_tokens,
            tokens_per_second=(last.completion_tokens - 1) / decode if decode > 0 else 0.0,  # the final one
            truncated=truncated,
        )

    def _count(self, usage: Usage) -> None:
        self.usage = Usage(
            self.usage.prompt_tokens + usage.prompt_tokens, self.usage.completion_tokens + usage.completion_tokens
        )


_CLOSES_SENTENCE = re.compile(r"""[.!?…:;"'“”„»«)\]]$""")


def heading_lines(passages: Sequence[Passage]) -> frozenset[str]:
    r"""The passages' lines that are headings, not sentences: at most 15 words and no closing punctuation
    ("Effizienz: Der Gamechanger im KI-Wettbewerb"). A summary sentence that only copies one (the
    model's favourite shortcut) says nothing about what the article reports, so it is left out.

    >>> from rag.types import Chunk, Hit
    >>> text = "Neue Chips\nNvidia verlor 600 Milliarden Dollar.\nFolgen für die Börse"
    >>> p = Passage(1, Hit(Chunk("a#0", "a.txt", "T", 0, len(text), text, 9), 1.0, 1), text, 0, len(text))
    >>> sorted(heading_lines([p]))
    ['folgen für die börse', 'neue chips']
    """
    lines = (line.strip() for p in passages for line in p.text.splitlines())
    return frozenset(
        _plain(line) for line in lines if line and len(line.split()) <= 15 and not _CLOSES_SENTENCE.search(line)
    )


def _plain(text: str) -> str:
    """Case, spacing and closing punctuation set aside: a heading copied with a period is still the heading."""
    return " ".join(text.casefold().rstrip(" .!?…").split())


def _blocks(passages: Sequence[Passage]) -> list[str]:
    """Each passage as the prompt writes it (`format_passages`, a blank line between), to count its cost."""
    return [format_passages([p], headers=False) + "\n\n" for p in passages]


def _shortened(sentence: str, room: int, count_tokens: Callable[[str], int]) -> str:
    """The first words of ``sentence`` that fit ``room`` with its citation markers, ending "… [n]."; empty
    when not even one word fits.

    >>> _shortened("DeepSeek nutzte 2.048 GPUs für das Training [2].", 5, lambda t: len(t.split()))
    'DeepSeek nutzte 2.048 … [2].'
    """
    tail = "".join(sentence[m.start : m.end] for m in parse_citations(sentence))
    words = remove_markers(sentence).split()
    for n in range(len(words) - 1, 0, -1):
        text = f"{' '.join(words[:n])} … {tail}.".replace(" .", ".")
        if count_tokens(text) <= room:
            return text
    return ""
