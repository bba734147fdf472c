"""Answer generation behind a one-method interface: ``Generator.stream(messages)``.

Two backends send the same chat messages:
  * `LlamaCppGenerator`: a local GGUF model in llama-cpp-python (imported only here);
  * `OpenAIServerGenerator`: any OpenAI-compatible server (``python -m llama_cpp.server``,
    vLLM, ...), so generation can move to another machine.
Both stream text pieces as they are produced and leave token counts in ``last_usage``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import default
from rag.errors import BackendError, InputError, ModelError
from rag.models.sanitize import neutralize_messages

Message = dict[str, str]
Between = Callable[[], None]
log = logging.getLogger("rag.generate")

# Prompt tokens evaluated between two calls of `between`: a client that left stops the work within a second or
# two, not after the whole prompt (a summary's held the model 25 s). Batches of 128 cost the first token
# nothing measurable against batches of 512, llama.cpp's own (docs/experiments.md, "Performance").
PROMPT_BATCH = 128


def spellings(word: str) -> tuple[str, ...]:
    """How a reply may begin with ``word``: "Ja", "ja", "JA", " Ja", " ja"."""
    return tuple(dict.fromkeys((word, word.lower(), word.upper(), f" {word}", f" {word.lower()}")))


def _reply_start(messages: list[Message]) -> tuple[list[Message], str]:
    """The messages before a last assistant message, and its text: the beginning of the reply (else "")."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, ""


def _logsumexp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.sum(np.exp(values - top))))


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class GenerationSettings:
    max_tokens: int = default("max_tokens")
    temperature: float = 0.0  # greedy: the same question gets the same answer (and the eval is repeatable)
    stop: tuple[str, ...] = ()

    def reached_limit(self, usage: Usage) -> bool:
        """Did the generation that used ``usage`` stop at ``max_tokens`` (its last sentence maybe unfinished)?"""
        return usage.completion_tokens >= self.max_tokens


class Generator(Protocol):
    """Writes the reply to chat messages as it is produced; `yes_probability` judges a Yes/No question."""

    model_id: str

    @property
    def last_usage(self) -> Usage:
        """The tokens of the last `stream` call (zero before the first)."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        *,
        prefix: str = "",
        between: Between | None = None,
    ) -> Iterator[str]:
        """The reply's pieces; ``prefix`` is the reply's beginning, written for the model where the backend can.
        ``between`` is called between batches of the prompt's evaluation where the backend evaluates it: an
        exception raised there (the client left) stops the work before the first piece."""
        ...

    def yes_probability(
        self, messages: Sequence[Message], *, words: tuple[str, str] = ("Yes", "No"), between: Between | None = None
    ) -> float | None:
        """P(the reply starts with ``words[0]``) against ``words[1]``; None where the backend cannot tell.
        ``between`` as for `stream`."""
        ...


class LlamaCppGenerator:
    """A GGUF chat model on the CPU (or GPU layers when a GPU build is installed).

    llama.cpp reuses the evaluated prompt prefix of its previous call, which saves the fixed
    instructions only while consecutive prompts share them. German and English questions use
    different instructions, so up to ``contexts`` llama.cpp contexts are kept, one per system
    message (least recently used is reused): the weights are memory-mapped once and shared, each
    context adds its own KV cache (~60 MB at n_ctx 2048).
    """

    def __init__(
        self,
        path: Path,
        *,
        model_id: str,
        n_ctx: int = default("n_ctx"),
        threads: int = default("threads"),
        n_gpu_layers: int = default("n_gpu_layers"),
        flash_attn: bool = default("flash_attn"),
        prompt_lookup: int = default("prompt_lookup"),
        contexts: int = default("llm_contexts"),
    ) -> None:
        if not path.is_file():
            raise ModelError(f"answer model not found at {path}; run `rag models fetch`")
        from llama_cpp import Llama

        extra: dict[str, Any] = {}
        if prompt_lookup:
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            # llama-cpp-python 0.3.36's draft models need every position's logits (logits_all; bench/README.md).
            extra = {"draft_model": LlamaPromptLookupDecoding(num_pred_tokens=prompt_lookup), "logits_all": True}
        self._load = functools.partial(
            Llama,
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=n_gpu_layers,
            flash_attn=flash_attn,
            verbose=False,
            **extra,
        )
        try:
            self._llm = self._load()
        except ValueError as exc:  # llama.cpp could not read the file (damaged but same size and date)
            raise ModelError(
                f"cannot load the answer model {path} ({exc}); run `rag models verify`, "
                f"then `rag models fetch --force {model_id}`"
            ) from exc
        self._contexts: OrderedDict[str, Any] = OrderedDict()
        # Created now (the weights are mapped already: well under a second each), not on a first request.
        self._spare = [self._llm] + [self._load() for _ in range(max(1, contexts) - 1)]
        self._formatters: dict[int, Any] = {}
        self.model_id = model_id
        self.last_usage = Usage()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        *,
        prefix: str = "",
        between: Between | None = None,
    ) -> Iterator[str]:
        """The reply's pieces; a ``prefix`` ("Ja") is put in the model's mouth: it is not generated nor yielded."""
        # The chat template is tokenized with special tokens on: article text must not open turns.
        messages = neutralize_messages(messages)
        self.last_usage = Usage()
        llm = self._context_for(messages)
        prompt = self._prompt(llm, messages)
        if prefix:
            prompt += llm.tokenize(prefix.encode("utf-8"), add_bos=False, special=False)
        if between is not None and len(prompt) < llm.n_ctx():
            # All but the last token, in batches that can be stopped; the completion finds them cached and
            # evaluates only the last one, as it would after any cached prefix. (A prompt that does not fit
            # is left to the completion, which refuses it at once, naming the context window.)
            _evaluate(llm, prompt[:-1], between)
        chunks = llm.create_completion(
            prompt=prompt,
            stream=True,
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            stop=list(settings.stop) or None,
        )
        produced = 0
        try:
            for chunk in chunks:
                piece: str = chunk["choices"][0]["text"]
                if piece:
                    produced += 1
                    yield piece
        except ValueError as exc:  # "Requested tokens (n) exceed context window of m"
            raise InputError(
                f"the prompt does not fit the model's context ({exc}); shorten the input, or raise RAG_N_CTX"
            ) from exc
        self.last_usage = Usage(len(prompt), produced)

    def yes_probability(
        self, messages: Sequence[Message], *, words: tuple[str, str] = ("Yes", "No"), between: Between | None = None
    ) -> float:
        """P(the model's reply to ``messages`` starts with "Yes") against "No" (or ``words``), from one token's logits.

        The prompt's beginning is usually in the context already (the same system prompt and
        passages as the answer that follows), so only its new tokens are evaluated, and the answer
        then reuses everything up to its own turn. llama-cpp-python keeps logits only with
        ``logits_all`` (n_ctx x vocabulary floats); the last evaluated token's logits are read from
        the context instead. A last message of the assistant is the reply's own beginning ("Stated in
        the passages (Yes/No):"), written after the opened turn: the answer that follows reuses the
        whole prompt and evaluates only the turn's last token again.
        """
        messages, reply_start = _reply_start(neutralize_messages(messages))
        llm = self._context_for(messages)
        tokens = self._prompt(llm, messages)
        if reply_start:
            tokens += llm.tokenize(reply_start.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) > llm.n_ctx():
            raise InputError(
                f"the prompt has {len(tokens)} tokens, over the model's context of {llm.n_ctx()} (RAG_N_CTX); shorten "
                "the input, or raise RAG_N_CTX (the passages alone take up to RAG_PASSAGE_BUDGET_TOKENS)"
            )
        _evaluate(llm, tokens, between, keep_last=False)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
        yes, no = (_logsumexp(logits[self._word_tokens(llm, spelled)]) for spelled in map(spellings, words))
        return float(1.0 / (1.0 + math.exp(no - yes)))

    def _prompt(self, llm: Any, messages: Sequence[Message]) -> list[int]:
        """The chat template applied to ``messages`` with the assistant's turn opened, as token ids.

        Rendered here (the model's own Jinja template, as llama-cpp-python renders it) rather than
        inside ``create_chat_completion``, so the answerability check and the answer share one
        rendering and so one cached prefix.
        """
        formatter: Any = self._formatters.get(id(llm))
        if formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError(f"{self.model_id} has no chat template in its GGUF metadata; use an instruct model")
            eos, bos = llm.token_eos(), llm.token_bos()
            formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )
            self._formatters[id(llm)] = formatter
        rendered = formatter(messages=list(messages))
        return list(llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True))

    def _word_tokens(self, llm: Any, words: Sequence[str]) -> list[int]:
        """The first token of each spelling of a word ("Yes", "yes", "YES"), without repeats."""
        ids = {llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}
        return sorted(ids)

    def _context_for(self, messages: Sequence[Message]) -> Any:
        """The context that last saw this system message (its prefix is cached), or the LRU one."""
        contexts = self._contexts
        key = messages[0]["content"] if messages and messages[0].get("role") == "system" else ""
        if key in contexts:
            contexts.move_to_end(key)
            return contexts[key]
        llm = self._spare.pop(0) if self._spare else contexts.popitem(last=False)[1]
        contexts[key] = llm
        return llm


class DeferredGenerator:
    """A generator loaded on its first use: a question refused before the model writes never waits for the load.

    For one-shot commands (`rag ask`); a server loads its model at start instead, so that the first
    request is as fast as the others.
    """

    def __init__(self, load: Callable[[], Generator], *, model_id: str) -> None:
        self._load = load
        self._loaded: Generator | None = None
        self.model_id = model_id

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def last_usage(self) -> Usage:
        return self._loaded.last_usage if self._loaded is not None else Usage()

    def _generator(self) -> Generator:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        *,
        prefix: str = "",
        between: Between | None = None,
    ) -> Iterator[str]:
        return self._generator().stream(messages, settings, prefix=prefix, between=between)

    def yes_probability(
        self, messages: Sequence[Message], *, words: tuple[str, str] = ("Yes", "No"), between: Between | None = None
    ) -> float | None:
        return self._generator().yes_probability(messages, words=words, between=between)


class OpenAIServerGenerator:
    """Sends the messages to an OpenAI-compatible ``/v1/chat/completions`` and streams the reply.

    Uses the official ``openai`` client (imported only here), so any server that speaks the API works
    (llama.cpp server, vLLM, Ollama, OpenAI, a gateway), with its retries and backoff on connection
    errors, 408, 429 and 5xx. Every failure leaves as a one-line `BackendError` naming the setting to fix.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model_id: str,
        api_key: str | None = None,
        timeout: float = default("llm_timeout"),
        max_retries: int = default("llm_max_retries"),
    ) -> None:
        from openai import OpenAI

        # Both spellings users copy from other tools work: http://host:port and http://host:port/v1.
        self.base_url = base_url.rstrip("/").removesuffix("/v1") + "/v1"
        # A placeholder when no key is set: the client would otherwise read OPENAI_API_KEY or refuse to start,
        # and servers without a key ignore the header.
        self._client = OpenAI(
            base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=max_retries
        )
        self._timeout = timeout
        self._logprobs = True  # until the server refuses them
        self.model_id = model_id
        self.last_usage = Usage()

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        *,
        prefix: str = "",
        between: Between | None = None,
    ) -> Iterator[str]:
        """The reply's pieces. The chat API cannot start the reply for the model, so ``prefix`` is not sent:
        the model writes its own first word (the pipeline drops a decision word it is told to write). The
        server evaluates the prompt: ``between`` is not called (a consumer that stops closes the connection)."""
        import openai

        messages = neutralize_messages(messages)  # llama_cpp.server and others tokenize specials too
        self.last_usage = Usage()
        produced = 0
        chat: Any = list(messages)  # plain role/content dicts, as the API takes them
        usage: Any = {"include_usage": True}
        try:
            events = self._client.chat.completions.create(
                model=self.model_id,
                messages=chat,
                stream=True,
                max_tokens=settings.max_tokens,
                temperature=settings.temperature,
                stop=list(settings.stop) or None,
                stream_options=usage,
            )
            with events:  # closing it (the consumer stopped) drops the connection: the server stops generating
                for event in events:
                    if event.usage:
                        self.last_usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                    for choice in event.choices:
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            produced += 1
                            yield piece
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not self.last_usage.completion_tokens:
            self.last_usage.completion_tokens = produced

    def yes_probability(
        self, messages: Sequence[Message], *, words: tuple[str, str] = ("Yes", "No"), between: Between | None = None
    ) -> float | None:
        """P("Yes") against P("No") (or ``words``) from the server's top log-probabilities of one generated token.

        None when the server returns no log-probabilities (not every OpenAI-compatible server does), or
        neither word is among them: the pipeline then answers without the check. A server that refuses
        the request (``python -m llama_cpp.server`` without ``--logits_all`` answers 500) is not asked
        again; one that is only overloaded (408, 409, 429, 503 after the retries) is asked next time.
        A wrong key, a wrong model name or an unreachable server is an error as it is for the answer.
        """
        import openai

        if not self._logprobs:
            return None
        chat: Any
        chat, reply_start = _reply_start(neutralize_messages(messages))
        if reply_start:  # a reply's beginning cannot be given to a server: ask it as a question
            chat = [*chat, {"role": "user", "content": reply_start}]
        try:
            response = self._client.chat.completions.create(
                model=self.model_id,
                messages=chat,
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=20,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            raise self._error(exc) from exc
        except openai.APIStatusError as exc:
            if exc.status_code not in (408, 409, 429, 503):
                self._logprobs = False
                log.warning(
                    "generation server %s refused log-probabilities (%s); answering without the answerability check",
                    self.base_url,
                    exc.status_code,
                )
            return None
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        try:
            top = response.choices[0].logprobs.content[0].top_logprobs  # type: ignore[union-attr,index]
            scores = {entry.token: float(entry.logprob) for entry in top}
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
        yes_words, no_words = map(spellings, words)
        yes = [scores[w] for w in yes_words if w in scores]
        no = [scores[w] for w in no_words if w in scores]
        if not yes and not no:
            return None
        # A word missing from the top list is less likely than every listed token.
        floor = min(scores.values()) - math.log(2.0)
        lse_yes = _logsumexp(np.array(yes or [floor]))
        lse_no = _logsumexp(np.array(no or [floor]))
        return float(1.0 / (1.0 + math.exp(lse_no - lse_yes)))

    def _error(self, exc: Exception) -> BackendError:
        """One line that names the server and the setting to change."""
        import openai

        server = f"generation server {self.base_url}"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return BackendError(
                f"{server} refused the API key ({exc.status_code}); set RAG_LLM_API_KEY to the key it expects"
            )
        if isinstance(exc, openai.NotFoundError):
            return BackendError(
                f"{server} does not serve model {self.model_id!r} (404); set RAG_LLM_MODEL to a name its "
                "/v1/models lists"
            )
        if isinstance(exc, openai.APITimeoutError):
            return BackendError(
                f"{server} did not answer within {self._timeout:g} s; check it or raise RAG_LLM_TIMEOUT"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return BackendError(f"{server} unreachable ({_one_line(str(cause))}); check RAG_LLM_URL")
        if isinstance(exc, openai.APIStatusError):
            return BackendError(f"{server} answered {exc.status_code}: {_one_line(exc.message)}")
        return BackendError(f"{server} failed ({type(exc).__name__}: {_one_line(str(exc))}); check RAG_LLM_URL")


def _evaluate(llm: Any, tokens: list[int], between: Between | None, *, keep_last: bool = True) -> None:
    """Bring ``llm``'s context to ``tokens``: reuse its cached prefix, evaluate the rest in batches of
    `PROMPT_BATCH`, calling ``between`` before each. Stopped there, the context keeps the batches evaluated so
    far, a valid prefix for the next call. ``keep_last`` False evaluates the last token again even when cached,
    so that its logits are the context's last."""
    cached = llm.longest_token_prefix(llm._input_ids.tolist(), tokens)
    reuse = cached if keep_last else min(cached, len(tokens) - 1)
    starts = range(reuse, len(tokens), PROMPT_BATCH)
    if not starts:
        llm.n_tokens = reuse
    for start in starts:
        if between is not None:
            between()  # before the cache is touched: stopped here, the context is as the last batch left it
        llm.n_tokens = start  # `eval` drops the cache after this position and decodes the batch
        llm.eval(tokens[start : start + PROMPT_BATCH])


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]
