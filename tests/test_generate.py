"""LlamaCppGenerator without a model (`StubLlama`): one warm context per system prompt, the answerability
check that reuses the answer's prefix, and the rendering both share."""

from __future__ import annotations

import pytest
from fakes import stub_generator

from rag.models.generate import GenerationSettings


def ask(gen, system: str, question: str = "q") -> str:  # type: ignore[no-untyped-def]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return "".join(gen.stream(messages, GenerationSettings()))


def test_each_system_prompt_keeps_its_own_context() -> None:
    gen, (first, second) = stub_generator(2)
    for system in ["de", "en", "de", "de", "en"]:
        assert ask(gen, system) == "ok"
    assert first.systems == ["de", "de", "de"] and second.systems == ["en", "en"]
    assert gen.last_usage.completion_tokens == 1 and gen.last_usage.prompt_tokens > 0


def test_a_third_prompt_takes_the_least_recently_used_context() -> None:
    gen, (first, second) = stub_generator(2)
    for system in ["de", "en", "rewrite", "en"]:
        ask(gen, system)
    assert first.systems == ["de", "rewrite"] and second.systems == ["en", "en"]


def test_a_repeated_prefix_is_not_evaluated_again() -> None:
    gen, (llm,) = stub_generator(1)
    ask(gen, "Long fixed instructions " * 20, "first question")
    ask(gen, "Long fixed instructions " * 20, "second question")
    assert llm.decoded[1] < llm.decoded[0] / 5


@pytest.mark.parametrize(("answer", "above"), [("Yes", True), ("No", False)])
def test_yes_probability_reads_the_first_token(answer: str, above: bool) -> None:
    gen, _ = stub_generator(1, answer=answer)
    messages = [{"role": "system", "content": "Rules " * 30}, {"role": "user", "content": "passages and question"}]
    p = gen.yes_probability([*messages, {"role": "user", "content": "Is the answer stated? Reply Yes or No."}])
    assert (p > 0.9) if above else (p < 0.1)


def test_the_check_costs_its_own_tokens_and_the_answer_reuses_the_prefix() -> None:
    gen, (llm,) = stub_generator(1)
    messages = [{"role": "system", "content": "Rules " * 50}, {"role": "user", "content": "passages " * 100}]
    check = {"role": "user", "content": "Is the answer stated? Reply Yes or No."}
    gen.yes_probability(messages)  # as if an earlier question had warmed the same instructions
    first = len(llm.decoded)
    gen.yes_probability([*messages, check])
    assert "".join(gen.stream(messages, GenerationSettings())) == "ok"
    check_cost, answer_cost = llm.decoded[first:]
    assert check_cost <= 12 and answer_cost <= 4  # the check turn; then only the assistant header


def test_a_check_that_begins_the_reply_costs_its_words_and_the_answer_one_token() -> None:
    """A last assistant message is the reply's beginning: evaluated after the opened turn, its own few tokens;
    the answer then reuses the whole prompt and evaluates only its last token again."""
    gen, (llm,) = stub_generator(1, answer="No")
    messages = [{"role": "system", "content": "Rules " * 50}, {"role": "user", "content": "passages " * 100}]
    gen.yes_probability(messages)  # warm
    first = len(llm.decoded)
    assert gen.yes_probability([*messages, {"role": "assistant", "content": "Stated (Yes/No):"}]) < 0.1
    assert "".join(gen.stream(messages, GenerationSettings())) == "ok"
    check_cost, answer_cost = llm.decoded[first:]
    assert 1 < check_cost <= 6 and answer_cost == 1
    assert llm.prompts[-1] == llm.prompts[-2]  # the check rendered the answer's prompt, its words after it


def test_a_decision_word_costs_only_its_own_token_after_the_check() -> None:
    """The answer prompt's own first token is the check; the answer then starts after the given yes-word."""
    gen, (llm,) = stub_generator(1, answer="Nein")
    messages = [{"role": "system", "content": "Rules " * 50}, {"role": "user", "content": "passages " * 100}]
    assert gen.yes_probability(messages, words=("Ja", "Nein")) < 0.1  # the declared words' logits are read
    assert gen.yes_probability(messages) == pytest.approx(0.5)  # Yes and No are equally unlikely here
    assert "".join(gen.stream(messages, GenerationSettings(), prefix="Ja")) == "ok"  # "Ja" itself is not yielded
    assert llm.decoded[-1] == 1 and llm.prompts[-1] == llm.prompts[-2]  # only the prefix token was new
    assert gen.last_usage.prompt_tokens == len(llm.cache)  # the prefix counts as prompt


def test_a_model_without_a_chat_template_is_a_clear_error() -> None:
    from rag.errors import ModelError

    gen, (llm,) = stub_generator(1)
    llm.metadata = {}
    with pytest.raises(ModelError, match="no chat template"):
        ask(gen, "rules")


def test_a_long_prompt_is_read_in_batches_and_a_stop_keeps_what_was_read() -> None:
    """`between` runs before each batch of `PROMPT_BATCH` tokens; an exception there stops the reading, the
    batches read stay cached, and the next call reads only the rest."""
    from rag.models.generate import PROMPT_BATCH

    gen, (llm,) = stub_generator(1)
    messages = [{"role": "system", "content": "Rules"}, {"role": "user", "content": "passages " * 400}]
    calls: list[int] = []

    def leave_at_third() -> None:
        calls.append(llm.n_tokens)
        if len(calls) == 3:
            raise InterruptedError

    with pytest.raises(InterruptedError):
        gen.yes_probability(messages, between=leave_at_third)
    assert llm.decoded == [PROMPT_BATCH, PROMPT_BATCH] and llm.n_tokens == 2 * PROMPT_BATCH
    assert calls == [0, PROMPT_BATCH, 2 * PROMPT_BATCH]  # before each batch
    gen.yes_probability(messages, between=lambda: None)
    total = len(llm.cache)
    assert sum(llm.decoded) == total and all(n <= PROMPT_BATCH for n in llm.decoded)

    llm.n_tokens, llm.decoded = 0, []
    with pytest.raises(InterruptedError):
        next(gen.stream(messages, GenerationSettings(), between=_raise))
    assert llm.decoded == [] and llm.n_tokens == 0  # stopped before the first batch: nothing generated
    assert "".join(gen.stream(messages, GenerationSettings(), between=lambda: None)) == "ok"
    assert all(n <= PROMPT_BATCH for n in llm.decoded[:-1]) and llm.decoded[-1] == 1  # the completion: last token


def _raise() -> None:
    raise InterruptedError


def test_a_stop_before_the_first_batch_leaves_the_cache_as_it_was() -> None:
    gen, (llm,) = stub_generator(1)
    first = [{"role": "system", "content": "Rules"}, {"role": "user", "content": "passages " * 300}]
    gen.yes_probability(first)
    cached = llm.n_tokens
    with pytest.raises(InterruptedError):
        gen.yes_probability([first[0], {"role": "user", "content": "other " * 300}], between=_raise)
    assert llm.n_tokens == cached  # the first prompt is still whole in the cache, for a question asked again
    decoded = len(llm.decoded)
    gen.yes_probability(first, between=lambda: None)
    assert llm.decoded[decoded:] == [1]  # only its last token read again


def test_a_prompt_that_fills_the_context_is_not_read_before_the_completion_refuses_it() -> None:
    """llama.cpp refuses a prompt of n_ctx tokens or more at once; reading it first would hold the model for it."""
    gen, (llm,) = stub_generator(1)
    messages = [{"role": "user", "content": "word " * 200}]
    llm._n_ctx = len(gen._prompt(llm, messages))  # exactly full
    calls: list[int] = []
    list(gen.stream(messages, GenerationSettings(), between=lambda: calls.append(1)))
    assert calls == [] and llm.decoded == [len(llm.cache)]  # one read, by the completion (the stub does not refuse)


def test_a_prompt_over_the_context_names_the_settings_to_change() -> None:
    from rag.errors import InputError

    gen, _ = stub_generator(1, n_ctx=64)
    with pytest.raises(InputError, match=r"over the model's context of 64 \(RAG_N_CTX\); .*RAG_PASSAGE_BUDGET_TOKENS"):
        gen.yes_probability([{"role": "user", "content": "word " * 200}])
