"""The answer cache: repeated questions skip the model; a changed index, history or setting does not."""

from __future__ import annotations

import json
from dataclasses import replace

from fakes import fake_answerer, wait_ready
from fastapi.testclient import TestClient

from rag.answer.cache import AnswerCache, cache_key
from rag.answer.pipeline import AnswerSettings
from rag.models.generate import GenerationSettings
from rag.serve.app import create_app
from rag.types import Answer

Q = "How many GPUs did DeepSeek use?"


def cached_answerer(settings, entries: int = 8):
    return replace(fake_answerer(settings), cache=AnswerCache(entries))


def test_a_repeated_question_is_answered_from_the_cache(app_settings) -> None:
    a = cached_answerer(app_settings)
    first = a(Q)
    seen: list[str] = []
    again = a("  How many GPUs   did DeepSeek use? ", on_token=seen.append)
    assert len(a.generator.calls) == 1, "the second answer must not reach the model"
    assert again.cached and not first.cached
    assert again.text == first.text and again.citations == first.citations and seen == [first.text]
    assert set(again.timings) == {"first_token", "total"}
    assert (a.cache.hits, a.cache.misses) == (1, 1)


def test_history_language_and_settings_are_part_of_the_key(app_settings) -> None:
    a = cached_answerer(app_settings)
    a(Q)
    a(Q, history=[{"role": "user", "content": "Was ist DeepSeek?"}, {"role": "assistant", "content": "Ein Labor."}])
    a(Q, lang="de")
    a(Q, settings=AnswerSettings(min_dense_score=0.1, max_passages=1))
    assert len(a.generator.calls) == 4 and a.cache.hits == 0


def test_an_index_change_invalidates_every_answer(app_settings) -> None:
    from rag import wiring
    from rag.ingest.load import load_documents

    a = cached_answerer(app_settings)
    a(Q)
    (app_settings.corpus_dir / "new.txt").write_text("Meta plant ein neues Rechenzentrum in Louisiana.\n")
    docs, _ = load_documents([app_settings.corpus_dir])
    wiring.index_documents(app_settings, docs)
    a.retriever.use_index(wiring.open_index(app_settings))
    assert not a(Q).cached and len(a.generator.calls) == 2


def test_least_recently_used_entries_go_first_and_zero_turns_it_off() -> None:
    cache = AnswerCache(2)
    keys = [cache_key(index_version="v1", model_id="m", question=q, history=(), lang=None, settings=AnswerSettings())
            for q in "abc"]  # fmt: skip
    for k in keys:
        cache.put(k, Answer(question="q", text="t", lang="en", refused=False))
    assert len(cache) == 2 and cache.get(keys[0]) is None and cache.get(keys[2]) is not None
    off = AnswerCache(0)
    off.put(keys[0], Answer(question="q", text="t", lang="en", refused=False))
    assert len(off) == 0 and off.get(keys[0]) is None


def test_a_sampled_answer_is_neither_served_from_nor_stored_in_the_cache(app_settings) -> None:
    """With temperature above 0 asking again must be able to give another answer (a chat page's "regenerate")."""
    a = cached_answerer(app_settings)
    sampled = replace(a.settings, generation=GenerationSettings(temperature=1.0))
    a(Q)  # the greedy answer is cached ...
    first, again = a(Q, settings=sampled), a(Q, settings=sampled)
    assert not first.cached and not again.cached and len(a.generator.calls) == 3, "... but a sampled one is not"
    assert len(a.cache) == 1 and a(Q).cached


def test_regenerating_a_chat_answer_with_temperature_reaches_the_model(app_settings) -> None:
    build = lambda s: replace(fake_answerer(s), cache=AnswerCache(8))  # noqa: E731
    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        body = {"messages": [{"role": "user", "content": Q}], "temperature": 1.0}
        for stream in (False, False, True):
            usage, cached = _usage_of(c, "/v1/chat/completions", {**body, "stream": stream})
            assert not cached and usage["completion_tokens"] > 0, stream
        assert len(c.app.state.answerer.generator.calls) == 3 and len(c.app.state.answerer.cache) == 0


def test_a_hit_reports_no_tokens_processed(app_settings) -> None:
    a = cached_answerer(app_settings)
    first = a(Q)
    again = a(Q)
    assert first.completion_tokens > 0 and first.prompt_tokens > 0
    assert again.cached and (again.prompt_tokens, again.completion_tokens, again.tokens_per_second) == (0, 0, 0.0)


def _usage_of(client: TestClient, path: str, body: dict) -> tuple[dict, bool]:
    """The usage a client is told, and whether the response says it came from the cache."""
    if path == "/v1/ask":
        r = client.post(path, json=body).json()
        return {"prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"]}, r["cached"]
    if not body.get("stream"):
        r = client.post(path, json=body).json()
        return r["usage"], r["rag"]["cached"]
    with client.stream("POST", path, json=body) as s:
        lines = [ln for ln in s.read().decode().splitlines() if ln.startswith("data: ")]
    last = json.loads(lines[-2][6:])
    return last["usage"], last["rag"]["cached"]


def test_a_cached_answer_costs_no_tokens_over_http(app_settings) -> None:
    """OpenAI's usage is what this request cost: a cache hit processed nothing, and says it was a hit."""
    messages = [{"role": "user", "content": Q}]
    requests = [
        ("/v1/ask", {"question": Q}),
        ("/v1/chat/completions", {"messages": messages}),
        ("/v1/chat/completions", {"messages": messages, "stream": True}),
    ]
    build = lambda s: replace(fake_answerer(s), cache=AnswerCache(8))  # noqa: E731
    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        first, cached = _usage_of(c, *requests[0])
        assert first["completion_tokens"] > 0 and not cached
        for path, body in requests:
            usage, cached = _usage_of(c, path, body)
            assert cached, (path, body)
            assert usage["prompt_tokens"] == usage["completion_tokens"] == usage.get("total_tokens", 0) == 0, usage
