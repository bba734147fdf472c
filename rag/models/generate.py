"""Answer generation behind a one-method interface: ``Generator.stream(messages)``.

Two backends send the same chat messages:
  * `LlamaCppGenerator`: a local GGUF model in llama-cpp-python (imported only here);
  * `OpenAIServerGenerator`: any OpenAI-compatible server (``python -m llama_cpp.server``,
    vLLM, ...), so generation can move to another machine.
Both stream text pieces as they are produced and leave token counts in ``last_usage``.
"""

from __future__ import annotations

import functools
import json
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import default
from rag.errors import InputError, ModelError
from rag.models.sanitize import neutralize_messages

Message = dict[str, str]
_YES = ("Yes", "yes", "YES", " Yes", " yes")
_NO = ("No", "no", "NO", " No", " no")


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


class Generator(Protocol):
    """Writes the reply to chat messages as it is produced; `yes_probability` judges a Yes/No question."""

    model_id: str
    last_usage: Usage

    def stream(self, messages: Sequence[Message], settings: GenerationSettings) -> Iterator[str]: ...

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        """P(the reply starts with "Yes") against "No"; None where the backend cannot tell."""
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

    def stream(self, messages: Sequence[Message], settings: GenerationSettings) -> Iterator[str]:
        # The chat template is tokenized with special tokens on: article text must not open turns.
        messages = neutralize_messages(messages)
        self.last_usage = Usage()
        llm = self._context_for(messages)
        prompt = self._prompt(llm, messages)
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
            raise InputError(f"the prompt does not fit the model's context ({exc}); shorten the input") from exc
        self.last_usage = Usage(len(prompt), produced)

    def yes_probability(self, messages: Sequence[Message]) -> float:
        """P(the model's reply to ``messages`` starts with "Yes") against "No", from one token's logits.

        The prompt's beginning is usually in the context already (the same system prompt and
        passages as the answer that follows), so only its new tokens are evaluated, and the answer
        then reuses everything up to its own turn. llama-cpp-python keeps logits only with
        ``logits_all`` (n_ctx x vocabulary floats); the last evaluated token's logits are read from
        the context instead.
        """
        messages = neutralize_messages(messages)
        llm = self._context_for(messages)
        tokens = self._prompt(llm, messages)
        if len(tokens) > llm.n_ctx():
            raise InputError(f"the prompt has {len(tokens)} tokens, over the model's context of {llm.n_ctx()}")
        reuse = min(llm.longest_token_prefix(llm._input_ids.tolist(), tokens), len(tokens) - 1)
        llm.n_tokens = reuse  # `eval` drops the cache after this position and decodes the rest
        llm.eval(tokens[reuse:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
        yes, no = (_logsumexp(logits[self._word_tokens(llm, words)]) for words in (_YES, _NO))
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


class OpenAIServerGenerator:
    """Sends the messages to an OpenAI-compatible ``/v1/chat/completions`` and streams the reply."""

    def __init__(self, base_url: str, *, model_id: str, api_key: str | None = None, timeout: float = 300.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Both spellings users copy from other tools work: http://host:port and http://host:port/v1.
        root = base_url.rstrip("/").removesuffix("/v1")
        self._client = httpx.Client(base_url=root, headers=headers, timeout=timeout)
        self.model_id = model_id
        self.last_usage = Usage()

    def stream(self, messages: Sequence[Message], settings: GenerationSettings) -> Iterator[str]:
        import httpx

        messages = neutralize_messages(messages)  # llama_cpp.server and others tokenize specials too
        self.last_usage = Usage()
        body = {
            "model": self.model_id,
            "messages": list(messages),
            "stream": True,
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "stream_options": {"include_usage": True},
        }
        if settings.stop:
            body["stop"] = list(settings.stop)
        produced = 0
        try:
            with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(
                        f"generation server {self._client.base_url} answered {response.status_code}: "
                        f"{response.text[:200]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if event.get("usage"):
                        self.last_usage = Usage(event["usage"]["prompt_tokens"], event["usage"]["completion_tokens"])
                    for choice in event.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            produced += 1
                            yield piece
        except httpx.HTTPError as exc:
            raise ModelError(
                f"generation server {self._client.base_url} unreachable ({exc}); check RAG_LLM_URL"
            ) from exc
        if not self.last_usage.completion_tokens:
            self.last_usage.completion_tokens = produced

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        """P("Yes") against P("No") from the server's top log-probabilities of one generated token.

        None when the server returns no log-probabilities (not every OpenAI-compatible server does), or
        neither word is among them: the pipeline then answers without the check.
        """
        import httpx

        body = {
            "model": self.model_id,
            "messages": neutralize_messages(messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        try:
            response = self._client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ModelError(
                f"generation server {self._client.base_url} unreachable ({exc}); check RAG_LLM_URL"
            ) from exc
        if response.status_code != 200:
            return None
        try:
            top = response.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            scores = {entry["token"]: float(entry["logprob"]) for entry in top}
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        yes = [scores[w] for w in _YES if w in scores]
        no = [scores[w] for w in _NO if w in scores]
        if not yes and not no:
            return None
        # A word missing from the top list is less likely than every listed token.
        floor = min(scores.values()) - math.log(2.0)
        lse_yes = _logsumexp(np.array(yes or [floor]))
        lse_no = _logsumexp(np.array(no or [floor]))
        return float(1.0 / (1.0 + math.exp(lse_no - lse_yes)))
