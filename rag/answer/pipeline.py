"""The answering pipeline as one plain function a debugger can step through.

question -> language -> (follow-up rewrite) -> hybrid search -> relevance gate
         -> passages within a token budget -> prompt -> stream tokens -> ground citations -> Answer
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from rag.answer.prompt import PromptTemplate, format_history, format_passages
from rag.config import Settings, default
from rag.errors import InputError
from rag.ground.citations import ground, split_answer_sentences
from rag.ground.claims import stems
from rag.language import detect_language, refusal_sentence
from rag.models.generate import GenerationSettings, Generator, Message
from rag.retrieval.retrieve import Retriever, select_passages
from rag.types import Answer, Hit, Passage

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
    trim_passages: bool = default("trim_passages")
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerSettings:
        return cls(
            k=max(settings.top_k, settings.max_passages),
            max_passages=settings.max_passages,
            passage_budget_tokens=settings.passage_budget_tokens,
            min_dense_score=settings.min_dense_score,
            strict=settings.strict,
            trim_passages=settings.trim_passages,
            generation=GenerationSettings(max_tokens=settings.max_tokens),
        )

    def with_passages(self, n: int) -> AnswerSettings:
        """These settings with ``n`` passages given to the model (at least ``n`` hits considered)."""
        return replace(self, max_passages=n, k=max(n, self.k))


@dataclass(frozen=True)
class Templates:
    answer: dict[str, PromptTemplate]  # by language
    rewrite: PromptTemplate | None = None


def refers_back(question: str, history: Sequence[Message]) -> bool:
    """Does a chat question need its history to be understood? Only then is it rewritten."""
    return bool(history) and (len(question.split()) <= 3 or _BACK_REFERENCE.search(question.strip()) is not None)


HISTORY_TURNS = 4
HISTORY_TURN_CHARS = 400  # 4 turns of at most ~130 tokens each keep the rewrite prompt far inside n_ctx


def rewrite_question(question: str, history: Sequence[Message], generator: Generator, template: PromptTemplate) -> str:
    """A standalone version of a follow-up question, written by the answer model from the last turns."""
    recent = [{**t, "content": _clip(t.get("content", ""), HISTORY_TURN_CHARS)} for t in history[-HISTORY_TURNS:]]
    messages = template.render(history=format_history(recent), question=question)
    text = "".join(generator.stream(messages, GenerationSettings(max_tokens=60, stop=("\n",))))
    rewritten = text.strip().strip('"„“”').strip()
    return rewritten or question


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
    on_token: Callable[[str], None] | None = None,
    on_rewrite: Callable[[str], None] | None = None,
) -> Answer:
    """Answer one question from the indexed articles, citing the passages used.

    ``on_token`` receives the draft answer as it streams; the returned Answer holds the
    checked text (citations normalised and repaired, or the refusal when nothing is backed).
    """
    started = time.perf_counter()
    question = question.strip()
    if not question or len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question must have 1 to {MAX_QUESTION_CHARS} characters, got {len(question)}")
    lang = lang or detect_language(question)
    timings: dict[str, float] = {}
    standalone = question
    if templates.rewrite is not None and refers_back(question, history):
        standalone = rewrite_question(question, history, generator, templates.rewrite)
        timings["rewrite"] = time.perf_counter() - started
        if on_rewrite is not None and standalone != question:
            on_rewrite(standalone)
    t = time.perf_counter()
    hits = retriever.search(standalone, settings.k)
    timings["retrieve"] = time.perf_counter() - t
    rewritten = standalone if standalone != question else None
    if not is_relevant(hits, settings):
        return _refusal(question, lang, rewritten, timings, started, on_token)
    t = time.perf_counter()
    passages = select_passages(
        hits, budget_tokens=settings.passage_budget_tokens, max_passages=settings.max_passages,
        count_tokens=count_tokens,
    )  # fmt: skip
    if settings.trim_passages:
        passages = [trim_passage(p, standalone) for p in passages]
    messages = templates.answer[lang if lang in templates.answer else "en"].render(
        passages=format_passages(passages), question=standalone
    )
    timings["prompt"] = time.perf_counter() - t
    text, first_token_at, gen_started = _generate(generator, messages, settings.generation, on_token)
    done = time.perf_counter()
    timings["first_token"] = (first_token_at or done) - started
    timings["generation"] = done - gen_started  # prompt processing + decoding
    timings["decode"] = done - (first_token_at or done)
    return _grounded_answer(question, lang, text, passages, rewritten, timings, started, generator, settings)


def _generate(
    generator: Generator, messages: list[Message], settings: GenerationSettings, on_token: Callable[[str], None] | None
) -> tuple[str, float | None, float]:
    pieces: list[str] = []
    first: float | None = None
    gen_started = time.perf_counter()
    for piece in generator.stream(messages, settings):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
        if on_token is not None:
            on_token(piece)
    return "".join(pieces), first, gen_started


def _grounded_answer(
    question: str,
    lang: str,
    text: str,
    passages: list[Passage],
    rewritten: str | None,
    timings: dict[str, float],
    started: float,
    generator: Generator,
    settings: AnswerSettings,
) -> Answer:
    t = time.perf_counter()
    g = ground(text, passages, lang)
    timings["ground"] = time.perf_counter() - t
    usage = generator.last_usage
    refused, final_text, citations = g.refused, g.text, g.citations
    if settings.strict and not refused and g.unsupported and len(g.unsupported) == g.claims:
        # No claim of the draft is backed by a passage: say so instead of showing a guess.
        refused, final_text, citations = True, refusal_sentence(lang), ()
    timings["total"] = time.perf_counter() - started
    return Answer(
        question=question,
        text=final_text.strip(),
        lang=lang,
        refused=refused,
        grounded=refused or g.grounded,
        citations=citations,
        passages=tuple(passages),
        conflicts=() if refused else g.conflicts,
        unsupported=g.unsupported,
        rewritten_question=rewritten,
        timings=timings,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        # Decode speed: tokens after the first over the time after the first token.
        tokens_per_second=(usage.completion_tokens - 1) / timings["decode"] if timings.get("decode") else 0.0,
    )


def _refusal(
    question: str,
    lang: str,
    rewritten: str | None,
    timings: dict[str, float],
    started: float,
    on_token: Callable[[str], None] | None,
) -> Answer:
    text = refusal_sentence(lang)
    if on_token is not None:
        on_token(text)
    timings["total"] = time.perf_counter() - started
    timings["first_token"] = timings["total"]
    return Answer(question=question, text=text, lang=lang, refused=True, rewritten_question=rewritten, timings=timings)
