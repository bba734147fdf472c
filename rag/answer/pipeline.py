"""The answering pipeline as one plain function a debugger can step through.

question -> language -> (follow-up rewrite) -> hybrid search -> relevance gate
         -> passages within a token budget -> prompt -> P(answerable) -> stream tokens -> sentence checks
         -> (English: translate sentences with German words left in them)
         -> (no sentence passed: ask once more on the cached prompt) -> Answer
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from rag.answer.prompt import PromptTemplate, format_history, format_passages
from rag.config import Settings, default
from rag.errors import InputError
from rag.ground.citations import Grounding, SentenceChecker, Translate, split_answer_sentences
from rag.ground.claims import NameShares, Topic, question_topic, source_text, stems, unknown_names
from rag.ground.quantities import asks_for_amount, asks_for_time, could_answer
from rag.language import (
    ASK_AGAIN,
    DEFAULT_LANGUAGE,
    asked_in_another_language,
    cut_notice,
    detect_language,
    refusal_sentence,
)
from rag.models.generate import GenerationSettings, Generator, Message, Usage
from rag.retrieval.retrieve import Retriever, select_passages
from rag.retrieval.store import LoadedIndex
from rag.types import Answer, Filter, Hit, Passage

MAX_QUESTION_CHARS = 2000

# Words that make a question lean on what was said before ("Und wie viel hat das gekostet?").
_BACK_REFERENCE = re.compile(
    r"\b(das|dies\w*|es|er|sie|ihm|ihn|ihr\w*|dort|damals|dafür|davon|darüber|dabei|deren|dessen|"
    r"it|its|they|them|their|that|this|those|these|there|he|she|his|her)\b|^(und|and|what about|how about|"
    r"und was|auch|also)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AnswerSettings:
    """The answering knobs of `Settings` (defaults and meaning there).

    ``min_dense_score`` was set on eval/gold.jsonl below its lowest-scoring answerable question
    (see `is_relevant`); ``trim_passages`` is off because it cost correct answers (docs/experiments.md).
    """

    k: int = max(default("top_k"), default("max_passages"))  # hits considered before passage selection
    max_passages: int = default("max_passages")
    passage_budget_tokens: int = default("passage_budget_tokens")
    min_dense_score: float = default("min_dense_score")
    strict: bool = default("strict")
    topic_check: bool = default("topic_check")
    kind_gate: bool = default("kind_gate")
    answerable_check: bool = default("answerable_check")
    # P(answerable) below which a question is refused, per language, as pairs (hashable: part of the cache key).
    answerable_thresholds: tuple[tuple[str, float], ...] = tuple(default("answerable_thresholds").items())
    retry_empty: bool = default("retry_empty")
    # P(answerable) a second try needs, per language, as pairs (hashable).
    retry_min_p: tuple[tuple[str, float], ...] = tuple(default("retry_min_p").items())
    trim_passages: bool = default("trim_passages")
    passage_order: str = default("passage_order")
    translate_answers: bool = default("translate_answers")
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerSettings:
        return cls(
            k=max(settings.top_k, settings.max_passages),
            max_passages=settings.max_passages,
            passage_budget_tokens=settings.passage_budget_tokens,
            min_dense_score=settings.min_dense_score,
            strict=settings.strict,
            topic_check=settings.topic_check,
            kind_gate=settings.kind_gate,
            answerable_check=settings.answerable_check,
            answerable_thresholds=tuple(settings.answerable_thresholds.items()),
            retry_empty=settings.retry_empty,
            retry_min_p=tuple(settings.retry_min_p.items()),
            trim_passages=settings.trim_passages,
            passage_order=settings.passage_order,
            translate_answers=settings.translate_answers,
            generation=GenerationSettings(max_tokens=settings.max_tokens),
        )

    def threshold(self, lang: str) -> float:
        """The P(answerable) threshold for questions in ``lang`` (the strictest one for another language)."""
        return _for_language(self.answerable_thresholds, lang)

    def may_retry(self, lang: str, answerable_p: float | None) -> bool:
        """Whether a second try is allowed: on, and P(answerable) (when known) at the language's floor."""
        floor = _for_language(self.retry_min_p, lang)
        return self.retry_empty and (answerable_p is None or answerable_p >= floor)

    def with_passages(self, n: int) -> AnswerSettings:
        """These settings with ``n`` passages given to the model (at least ``n`` hits considered)."""
        return replace(self, max_passages=n, k=max(n, self.k))


def _for_language(values: tuple[tuple[str, float], ...], lang: str) -> float:
    """The value for ``lang`` among per-language pairs; for another language the highest (strictest) one."""
    by_lang = dict(values)
    return by_lang.get(lang, max(by_lang.values(), default=0.0))


@dataclass(frozen=True)
class Templates:
    answer: dict[str, PromptTemplate]  # by language
    rewrite: PromptTemplate | None = None
    # Appended to the answer prompt as a user turn: "Is the answer stated in the passages? Yes or No".
    check: PromptTemplate | None = None
    # Appended to the answer prompt as a user turn when no sentence of the first answer passed its check.
    retry: PromptTemplate | None = None
    # Its own prompt: an English answer sentence with German words left in it, to translate.
    translate: PromptTemplate | None = None

    def for_language(self, lang: str) -> PromptTemplate:
        return self.answer[lang] if lang in self.answer else self.answer["en"]


def checked_question(question: str) -> str:
    """``question`` stripped; `InputError` unless it has 1 to MAX_QUESTION_CHARS characters (a pasted article is
    no question: `rag ask`, `rag search` and the HTTP API take the same)."""
    return checked_text(question, MAX_QUESTION_CHARS, "question")


def checked_text(text: str, limit: int, what: str) -> str:
    """``text`` stripped; `InputError` naming ``what`` unless it has 1 to ``limit`` characters."""
    text = text.strip()
    if not text or len(text) > limit:
        raise InputError(f"the {what} must have 1 to {limit} characters, got {len(text)}")
    return text


def refers_back(question: str, history: Sequence[Message]) -> bool:
    """Does a chat question need its history to be understood? Only then is it rewritten."""
    return bool(history) and (len(question.split()) <= 3 or _BACK_REFERENCE.search(question.strip()) is not None)


HISTORY_TURNS = 4
HISTORY_TURN_CHARS = 400  # 4 turns of at most ~130 tokens each keep the rewrite prompt far inside n_ctx


def rewrite_question(
    question: str, history: Sequence[Message], generator: Generator, template: PromptTemplate,
    between: Callable[[], None] | None = None,
) -> str:  # fmt: skip
    """A standalone version of a follow-up question, written by the answer model from the last turns.

    The 1.5B model often writes the question before again ("Und wann?" -> "Wer gründete DeepSeek?"), which
    would answer that one again; so does a rewrite that lost every word the follow-up added ("Und die
    Chips?"), one in another language ("Und wo?" -> "Where did ...?": the answer followed it), and one that
    repeats the follow-up ("What about Meta?") rewrote nothing. Then the standalone
    question is the one before with the follow-up after it ("Wer gründete DeepSeek? Und wann?"): its words
    find the passages, and the answer sees both.
    """
    recent = [{**t, "content": _clip(t.get("content", ""), HISTORY_TURN_CHARS)} for t in history[-HISTORY_TURNS:]]
    messages = template.render(history=format_history(recent), question=question)
    text = "".join(generator.stream(messages, GenerationSettings(max_tokens=60, stop=("\n",)), between=between))
    rewritten = text.strip().strip('"„“”').strip()
    before = next((t.get("content", "") for t in reversed(recent) if t.get("role") == "user"), "")
    own = stems(question)
    kept_words = not own or bool(own & stems(rewritten))
    asked_in = detect_language(question)
    same_language = detect_language(rewritten, default=asked_in) == asked_in
    if rewritten and kept_words and same_language and _words(rewritten) not in (_words(before), _words(question)):
        return rewritten
    return f"{before} {question}" if before else question


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def trim_passage(passage: Passage, question: str) -> Passage:
    """The passage cut to its sentences from the first to the last that share a content word or a
    number with ``question``; unchanged when none does. The cut stays one span of the article, so
    citations still resolve to exact offsets."""

    def words(text: str) -> set[str]:
        return set(stems(text)) | set(re.findall(r"\d+", text))

    wanted = words(question)
    spans = split_answer_sentences(passage.text)
    hits = [i for i, (a, b) in enumerate(spans) if wanted & words(passage.text[a:b])]
    if not hits or (hits[0] == 0 and hits[-1] == len(spans) - 1):
        return passage
    a, b = spans[hits[0]][0], spans[hits[-1]][1]
    return replace(passage, text=passage.text[a:b], start=passage.start + a, end=passage.start + b)


def topic_of(question: str, lang: str, passages: Sequence[Passage], index: LoadedIndex) -> Topic:
    """What ``question`` singles out (`question_topic`); a passage is about a name when its article (or the article
    of one of its near-duplicates) names it: a later passage of the article may say "er" or "der Nvidia-Chef"."""
    documents = index.documents
    contexts = {
        p.number: "\n".join(
            documents[c.doc_id].text if c.doc_id in documents else c.text for c in (p.hit.chunk, *p.hit.duplicates)
        )
        for p in passages
    }
    return question_topic(question, lang, contexts, name_shares(index))


def name_shares(index: LoadedIndex) -> NameShares:
    """The share of the index's articles naming each name, kept once per index version (`LoadedIndex.derived`):
    every article is read once per name, not once a question."""
    shares = index.derived.get("name_shares")
    if shares is None:
        shares = index.derived["name_shares"] = NameShares([d.text for d in index.documents.values()])
    return shares


def is_relevant(hits: Sequence[Hit], settings: AnswerSettings) -> bool:
    """The relevance gate: the best dense hit clears the floor (keyword hits count only without dense).

    On eval/gold.jsonl the least similar answerable question scores 0.203 and off-topic questions
    ("Wie wird das Wetter morgen in Berlin?") at most 0.153, hence the default floor of 0.18.
    """
    dense = [h.dense_score for h in hits if h.dense_score is not None]
    if dense:
        return max(dense) >= settings.min_dense_score
    return any(h.keyword_rank is not None for h in hits)


def answer(
    question: str,
    *,
    retriever: Retriever,
    generator: Generator,
    templates: Templates,
    count_tokens: Callable[[str], int],
    settings: AnswerSettings = AnswerSettings(),
    history: Sequence[Message] = (),
    lang: str | None = None,
    where: Filter | None = None,
    on_token: Callable[[str], None] | None = None,
    on_rewrite: Callable[[str], None] | None = None,
) -> Answer:
    """Answer one question from the indexed articles, citing the passages used.

    The decision comes first: no passage about the question, or a model's P(answerable) below the
    threshold, is the refusal without generating. Then the answer is generated and checked sentence
    by sentence: ``on_token`` receives each sentence once it passed its check (and ``""`` after every
    generated token and before every batch of a prompt the model reads, so a consumer can stop the work
    by raising), never an unchecked claim. When no sentence passed, the model is asked once more
    (``settings.retry_empty``) before the refusal. The pieces joined are the returned Answer's text.
    ``where`` limits the passages to some articles. A question in a third language is asked again.
    """
    started = time.perf_counter()
    question = checked_question(question)
    asked_in = detect_language(question, default=lang or DEFAULT_LANGUAGE)  # the caller's choice when undecided
    lang = lang or asked_in
    emit = on_token or (lambda piece: None)
    between = partial(emit, "")  # also while the model reads a prompt: a consumer can stop it there
    run = _Run(question, lang, started)
    if asked_in_another_language(question) is not None:
        return run.refusal(emit, ASK_AGAIN)  # in French: the model echoed it into a garbled answer
    standalone = question
    if templates.rewrite is not None and refers_back(question, history):
        standalone = rewrite_question(question, history, generator, templates.rewrite, between)
        run.timings["rewrite"] = time.perf_counter() - started
        if on_rewrite is not None and standalone != question:
            on_rewrite(standalone)
    run.rewritten = standalone if standalone != question else None
    if not re.search(r"[^\W_]", standalone):
        return run.refusal(emit)  # no letter or digit ("🤖🚀", "???"): nothing to look up, and no passage answers it
    t = time.perf_counter()
    hits = retriever.search(standalone, settings.k, where=where)
    run.timings["retrieve"] = time.perf_counter() - t
    if not is_relevant(hits, settings):
        return run.refusal(emit)
    if settings.topic_check and unknown_names(standalone, lang, name_shares(retriever.index)):
        return run.refusal(emit)  # it names a code or product no article names ("R2"): nothing can state it
    t = time.perf_counter()
    passages = select_passages(
        hits, budget_tokens=settings.passage_budget_tokens, max_passages=settings.max_passages,
        count_tokens=count_tokens,
    )  # fmt: skip
    if settings.trim_passages:
        passages = [trim_passage(p, standalone) for p in passages]
    if settings.passage_order == "best_last":
        passages = [replace(p, number=i) for i, p in enumerate(reversed(passages), start=1)]
    run.passages = tuple(passages)
    if settings.kind_gate and not could_answer(standalone, (source_text(p) for p in passages)):
        return run.refusal(emit)  # it asks how many or when, and no passage states an amount or a time
    template = templates.for_language(lang)
    messages = template.render(passages=format_passages(passages), question=standalone)
    run.timings["prompt"] = time.perf_counter() - t
    if settings.answerable_check and (template.decision is not None or templates.check is not None):
        t = time.perf_counter()
        if template.decision is not None:  # the reply's own first word is the decision: nothing more to evaluate
            run.answerable_p = generator.yes_probability(messages, words=template.decision, between=between)
        elif templates.check is not None:  # the check as one more user turn, rolled back for the answer
            given = {"question": standalone} if "question" in templates.check.variables else {}
            run.answerable_p = generator.yes_probability([*messages, *templates.check.render(**given)], between=between)
        run.timings["check"] = time.perf_counter() - t
        if run.answerable_p is not None and run.answerable_p < settings.threshold(lang):
            return run.refusal(emit)
    gen_started = time.perf_counter()
    if settings.topic_check:
        run.topic = topic_of(standalone, lang, passages, retriever.index)
    translate = None
    # A German question answered in English on request (`--lang en`) is answered in German all the more: its
    # sentences with German words are translated then, as with RAG_TRANSLATE_ANSWERS for every English answer.
    if lang == "en" and (settings.translate_answers or asked_in != lang) and templates.translate is not None:
        translate = translator(generator, templates.translate, run.timings)
    checker, usage, truncated, last = _generate(
        generator, messages, template, standalone, run, emit, settings, translate
    )  # fmt: skip
    model_refused = any(s.check.refusal for s in checker.sentences)
    may_retry = settings.may_retry(lang, run.answerable_p)
    if checker.grounding().refused and not model_refused and templates.retry is not None and may_retry:
        # No sentence passed (the question echoed, bare markers, a claim no passage states) and nothing was
        # shown: ask once more on the same prompt, which llama.cpp has cached, with a nudge to state the fact.
        # The model's own refusal stands, and so does a low P(answerable) (settings.retry_min_p). A first try
        # the token limit cut is tried again too: a draft that ran on (gold q052) was followed by a right answer.
        run.timings["first_attempt"] = time.perf_counter() - gen_started
        again = [*messages, *templates.retry.render()]
        first = usage
        checker, usage, truncated, last = _generate(
            generator, again, template, standalone, run, emit, settings, translate
        )  # fmt: skip
        usage = Usage(first.prompt_tokens + usage.prompt_tokens, first.completion_tokens + usage.completion_tokens)
        model_refused = any(s.check.refusal for s in checker.sentences)
    # The token limit stopped the reply before one sentence passed: the limit, not the articles, is why there
    # is no answer, and the reply says so (still no answer: `refused`, with finish reason "length").
    grounding = checker.grounding()
    cut = truncated and grounding.refused and not model_refused
    if cut:
        last = [cut_notice(lang, settings.generation.max_tokens)]
    run.show(last, emit)
    done = time.perf_counter()
    run.timings["generation"] = done - gen_started  # prompt processing, decoding and sentence checks
    run.timings["decode"] = done - started - run.timings.get("first_token", done - started)
    return run.cut(last[0], grounding, usage) if cut else run.answer(grounding, usage, truncated)


def _generate(
    generator: Generator,
    messages: list[Message],
    template: PromptTemplate,
    question: str,
    run: _Run,
    emit: Callable[[str], None],
    settings: AnswerSettings,
    translate: Translate | None = None,
) -> tuple[SentenceChecker, Usage, bool, list[str]]:
    """Generate one answer, showing each sentence once it passed its check.

    Returns the checker, the usage, whether the token limit cut it, and what `SentenceChecker.close`
    released last (the refusal sentence when nothing passed), not yet shown: the caller may try again.
    ``translate`` (English answers) translates sentences with German words left in them, once
    generation is over (`SentenceChecker`).
    """
    checker = SentenceChecker(
        run.passages, run.lang, strict=settings.strict, question=question, require_amount=asks_for_amount(question),
        translate=translate, topic=run.topic, require_time=asks_for_time(question),
    )  # fmt: skip
    answer_part = AnswerPart(template.answer_after)
    # The decision was "answer": a reply told to begin with the yes-word starts with it, not part of the answer.
    yes_word = template.decision[0] if template.decision is not None else None
    start = ReplyStart(yes_word)
    for piece in generator.stream(messages, settings.generation, prefix=yes_word or "", between=partial(emit, "")):
        run.timings.setdefault("first_token", time.perf_counter() - run.started)
        run.show(checker.feed(answer_part.feed(start.feed(piece))), emit)
        emit("")
    run.show(checker.feed(answer_part.close()), emit)  # a reply that was only the word and punctuation: nothing
    usage = generator.last_usage
    truncated = settings.generation.reached_limit(usage)
    return checker, usage, truncated, checker.close(cut=truncated)


# A translation stops at a line break, at twice the sentence's length in tokens (~4 characters each) or here.
TRANSLATE_MAX_TOKENS = 160


def translator(generator: Generator, template: PromptTemplate, timings: dict[str, float]) -> Translate:
    """Translation of an answer sentence with German words left in it, by the answer model (prompts/translate.md).

    Its own short prompt, not a turn on the answer prompt: on the passages the 1.5B model tends to
    answer again instead of translating. The seconds spent add up in ``timings["translate"]``.
    """

    def translate(sentence: str, words: Sequence[str]) -> str | None:
        started = time.perf_counter()
        messages = template.render(sentence=sentence, words=", ".join(words))
        limit = min(TRANSLATE_MAX_TOKENS, len(sentence) // 2 + 16)
        settings = GenerationSettings(max_tokens=limit, stop=("\n",))
        text = "".join(generator.stream(messages, settings)).strip()
        timings["translate"] = timings.get("translate", 0.0) + time.perf_counter() - started
        return text or None

    return translate


class ReplyStart:
    """A reply without the decision word it begins with ("Ja") and the punctuation after it, fed as it arrives.

    A local model is given the word (the stream starts after it); a server's model writes it itself.
    Nothing is withheld once a piece shows more than the word, spaces and punctuation; what is withheld
    until then is only those, so a reply that ends there has nothing to show.

    >>> start = ReplyStart("Ja")
    >>> [start.feed(p) for p in ("Ja", ",", " DeepSeek", " nutzte")]
    ['', '', 'DeepSeek', ' nutzte']
    >>> start = ReplyStart("Ja")
    >>> [start.feed(p) for p in (". Die", " Aktie")], ReplyStart("Ja").feed("Januar 2025 [1].")
    (['Die', ' Aktie'], 'Januar 2025 [1].')
    """

    _PUNCTUATION = r"[\s,.:;!\-–—]*"

    def __init__(self, word: str | None) -> None:
        self.head = ""
        self.done = word is None
        self.start = re.compile(rf"\s*(?:{re.escape(word or '')}\b)?{self._PUNCTUATION}", re.IGNORECASE)

    def feed(self, piece: str) -> str:
        if self.done:
            return piece
        self.head += piece
        end = self.start.match(self.head).end()  # type: ignore[union-attr]  # every part is optional
        if end == len(self.head):
            return ""  # only the word, spaces and punctuation so far
        self.done, rest, self.head = True, self.head[end:], ""
        return rest


class AnswerPart:
    """The part of a reply after ``marker`` ("Antwort:"), fed as it arrives; everything when no marker is set.

    A reply that never writes the marker is passed on whole at `close` (then it is all answer).

    >>> part = AnswerPart("Antwort:")
    >>> [part.feed(p) for p in ("Beleg: [1] nur 2.048 GPUs.\\nAnt", "wort: 2.048 GPUs [1].")], part.close()
    (['', ' 2.048 GPUs [1].'], '')
    """

    def __init__(self, marker: str | None) -> None:
        self.marker = marker or ""
        self.before = ""  # withheld text before the marker (the evidence)
        self.found = not marker

    def feed(self, piece: str) -> str:
        if self.found:
            return piece
        self.before += piece
        at = self.before.find(self.marker)
        if at < 0:
            return ""
        self.found = True
        rest = self.before[at + len(self.marker) :]
        self.before = self.before[:at]
        return rest

    def close(self) -> str:
        if self.found:
            return ""
        self.found, rest, self.before = True, self.before, ""
        return rest


class _Run:
    """What one call of `answer` has learned so far, and the Answer it becomes."""

    def __init__(self, question: str, lang: str, started: float) -> None:
        self.question, self.lang, self.started = question, lang, started
        self.timings: dict[str, float] = {}
        self.rewritten: str | None = None
        self.passages: tuple[Passage, ...] = ()
        self.answerable_p: float | None = None
        self.topic: Topic | None = None  # what the question singles out (`question_topic`), once answering

    def show(self, pieces: Sequence[str], emit: Callable[[str], None]) -> None:
        for piece in pieces:
            self.timings.setdefault("first_shown", time.perf_counter() - self.started)
            emit(piece)

    def refusal(self, emit: Callable[[str], None], text: str | None = None) -> Answer:
        """Refuse before generating: no passage is about the question, or it is judged unanswerable (or ``text``:
        it is asked in a language not answered in)."""
        text = text or refusal_sentence(self.lang)
        self.show([text], emit)
        self.timings["first_token"] = self.timings["first_shown"]
        self.timings["total"] = time.perf_counter() - self.started
        return Answer(
            question=self.question, text=text, lang=self.lang, refused=True, passages=self.passages,
            rewritten_question=self.rewritten, timings=self.timings, answerable_p=self.answerable_p,
        )  # fmt: skip

    def cut(self, notice: str, g: Grounding, usage: Usage) -> Answer:
        """No answer because the token limit stopped the reply before one sentence passed its check."""
        return replace(self.answer(g, usage, truncated=True), text=notice)

    def answer(self, g: Grounding, usage: Usage, truncated: bool) -> Answer:
        self.timings["total"] = time.perf_counter() - self.started
        decode = self.timings.get("decode", 0.0)
        return Answer(
            question=self.question,
            text=g.text,
            lang=self.lang,
            refused=g.refused,
            grounded=g.grounded,
            citations=g.citations,
            passages=self.passages,
            conflicts=g.conflicts,
            unsupported=g.unsupported,
            rewritten_question=self.rewritten,
            timings=self.timings,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            # Decode speed: tokens after the first over the time after the first token.
            tokens_per_second=(usage.completion_tokens - 1) / decode if decode > 0 else 0.0,
            answerable_p=self.answerable_p,
            truncated=truncated,
        )
