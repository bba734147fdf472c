"""LlamaCppGenerator's context pool: one warm llama.cpp context per system prompt (stubs, no model)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from rag.models.generate import GenerationSettings, LlamaCppGenerator


class StubLlama:
    def __init__(self, name: str) -> None:
        self.name, self.n_tokens, self.prompts = name, 0, []

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        self.prompts.append(messages[0]["content"])
        self.n_tokens = 10
        return iter([{"choices": [{"delta": {"content": "ok"}}]}])


def generator(n: int) -> tuple[LlamaCppGenerator, list[StubLlama]]:
    stubs = [StubLlama(f"ctx{i}") for i in range(n)]
    gen = object.__new__(LlamaCppGenerator)
    gen._llm, gen._spare, gen._contexts = stubs[0], list(stubs), OrderedDict()  # type: ignore[attr-defined]
    gen.model_id = "stub"
    return gen, stubs


def ask(gen: LlamaCppGenerator, system: str) -> None:
    assert "".join(gen.stream([{"role": "system", "content": system}, {"role": "user", "content": "q"}],
                              GenerationSettings())) == "ok"  # fmt: skip


def test_each_system_prompt_keeps_its_own_context() -> None:
    gen, (first, second) = generator(2)
    for system in ["de", "en", "de", "de", "en"]:
        ask(gen, system)
    assert first.prompts == ["de", "de", "de"] and second.prompts == ["en", "en"]
    assert gen.last_usage.completion_tokens == 1 and gen.last_usage.prompt_tokens == 9


def test_a_third_prompt_takes_the_least_recently_used_context() -> None:
    gen, (first, second) = generator(2)
    for system in ["de", "en", "rewrite", "en"]:
        ask(gen, system)
    assert first.prompts == ["de", "rewrite"] and second.prompts == ["en", "en"]
