"""What OpenAI clients rely on beyond the basics: content parts, roles, model names, finish reasons,
`created`, the retrieval-only `/v1/search`, and the upload response's own chunk count."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fakes import fake_answerer, wait_ready
from fastapi.testclient import TestClient

from rag.serve.app import create_app
from rag.wiring import Answerer

QUESTION = "How many GPUs did DeepSeek use?"


def _chat(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}], **body})


def _streamed(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    messages = [{"role": "user", "content": QUESTION}]
    with client.stream("POST", "/v1/chat/completions", json={"messages": messages, "stream": True, **body}) as r:
        assert r.status_code == 200
        lines = [ln[6:] for ln in r.read().decode().splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(ln) for ln in lines[:-1]]


def test_content_as_a_list_of_text_parts_is_the_same_question(client) -> None:
    parts = [{"type": "text", "text": "How many GPUs"}, {"type": "text", "text": "did DeepSeek use?"}]
    as_parts = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": parts}]})
    assert as_parts.status_code == 200, as_parts.text
    assert (
        as_parts.json()["choices"][0]["message"]["content"] == _chat(client).json()["choices"][0]["message"]["content"]
    )


def test_a_part_that_is_not_text_is_refused_by_name(client) -> None:
    image = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": [image]}]})
    assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError"
    assert "content" in r.json()["error"]["message"]


def test_the_developer_role_is_accepted_and_not_history(app_settings) -> None:
    calls: list[dict[str, Any]] = []

    @dataclass
    class Recording(Answerer):
        def __call__(self, question: str, **kwargs: Any) -> Any:
            calls.append({"question": question, "history": kwargs.get("history")})
            return super().__call__(question, **kwargs)

    def build(settings: Any) -> Answerer:
        base = fake_answerer(settings)
        return Recording(**{f: getattr(base, f) for f in base.__dataclass_fields__})

    messages = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": "Wer gründete DeepSeek?"},
        {"role": "assistant", "content": "Liang Wenfeng [1]."},
        {"role": "user", "content": QUESTION},
    ]
    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        assert c.post("/v1/chat/completions", json={"messages": messages}).status_code == 200
    assert calls[-1]["question"] == QUESTION
    assert [t["role"] for t in calls[-1]["history"]] == ["user", "assistant"]


def test_an_unknown_model_is_an_error_naming_the_served_one(client, app_settings) -> None:
    r = _chat(client, model="gpt-4o")
    assert r.status_code == 404 and r.json()["error"]["type"] == "UnknownModel"
    assert "gpt-4o" in r.json()["error"]["message"] and app_settings.answer_model in r.json()["error"]["message"]
    assert _chat(client, model=app_settings.answer_model).status_code == 200
    assert _chat(client).status_code == 200  # no model: the served one


def test_the_remote_model_name_is_served_too(app_settings) -> None:
    remote = app_settings.model_copy(update={"llm_url": "http://127.0.0.1:9/v1", "llm_model": "my-alias"})
    with TestClient(create_app(remote, build=fake_answerer)) as c:
        wait_ready(c)
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["my-alias"]
        for name in ("my-alias", app_settings.answer_model):
            r = _chat(c, model=name)
            assert r.status_code == 200 and r.json()["model"] == "my-alias"
        assert _chat(c, model="other").status_code == 404


def test_models_have_created(client) -> None:
    import time

    (model,) = client.get("/v1/models").json()["data"]
    assert model["object"] == "model" and isinstance(model["created"], int)
    assert time.time() - 3600 < model["created"] <= time.time()


@pytest.mark.parametrize("truncated", [False, True])
def test_finish_reason_is_length_when_max_tokens_cut_the_answer(app_settings, truncated: bool) -> None:
    @dataclass
    class Cut(Answerer):
        def __call__(self, question: str, **kwargs: Any) -> Any:
            return replace(super().__call__(question, **kwargs), truncated=truncated)

    def build(settings: Any) -> Answerer:
        base = fake_answerer(settings)
        return Cut(**{f: getattr(base, f) for f in base.__dataclass_fields__})

    expected = "length" if truncated else "stop"
    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        assert _chat(c, max_tokens=1).json()["choices"][0]["finish_reason"] == expected
        finishes = [chunk["choices"][0]["finish_reason"] for chunk in _streamed(c, max_tokens=1)]
    assert finishes[-1] == expected and set(finishes[:-1]) == {None}


def test_search_is_retrieval_only_in_the_cli_shape(client) -> None:
    r = client.post("/v1/search", json={"question": "Wie viele GPUs nutzte DeepSeek?", "k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"question", "hits", "timings"} and len(body["hits"]) <= 2
    top = body["hits"][0]
    assert top["doc_id"] == "a.txt" and top["rank"] == 1 and "2.048" in top["text"]
    assert {"start", "end", "dense_rank", "keyword_rank", "score"} <= set(top)
    keyword_only = client.post("/v1/search", json={"question": "GPUs", "dense": False}).json()
    assert all(h["dense_rank"] is None for h in keyword_only["hits"]) and "embed_query" not in keyword_only["timings"]
    neither = client.post("/v1/search", json={"question": "GPUs", "dense": False, "keyword": False})
    assert neither.status_code == 400 and neither.json()["error"]["type"] == "InputError"


def test_search_refuses_a_blank_question_as_ask_does(client) -> None:
    """One check and one message for every entry point (`checked_question`), not a second wording."""
    search = client.post("/v1/search", json={"question": "   "})
    ask = client.post("/v1/ask", json={"question": "   "})
    assert search.status_code == ask.status_code == 400
    assert search.json()["error"] == ask.json()["error"] and "must have 1 to" in search.json()["error"]["message"]
    padded = client.post("/v1/search", json={"question": "  GPUs  ", "k": 1}).json()
    assert padded["question"] == "GPUs" and padded["hits"]


def test_search_matches_rag_search_json(client, app_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same keys as `rag search --json` prints (rag/serialize.py for both)."""
    from fakes import FakeEmbedder
    from typer.testing import CliRunner

    from rag import wiring
    from rag.cli.main import app

    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))
    monkeypatch.setenv("RAG_INDEX_DIR", str(app_settings.index_dir))
    cli = CliRunner().invoke(app, ["search", "--json", "  Wie viele GPUs nutzte DeepSeek?  "])
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.output)
    served = client.post("/v1/search", json={"question": "  Wie viele GPUs nutzte DeepSeek?  "}).json()
    assert set(printed) == set(served) and set(printed["hits"][0]) == set(served["hits"][0])
    assert printed["question"] == served["question"] == "Wie viele GPUs nutzte DeepSeek?"  # stripped by both


def test_upload_reports_the_new_documents_chunks(client) -> None:
    text = "Zhipu trainierte GLM.\nMit 777 Beschleunigern.\nIn Peking."
    r = client.post("/v1/documents", files={"file": ("zhipu.txt", text.encode(), "text/plain")})
    assert r.status_code == 201
    listed = {d["doc_id"]: d["chunks"] for d in client.get("/v1/documents").json()["documents"]}
    assert r.json()["chunks"] == listed["zhipu.txt"] < sum(listed.values())


def test_uptime_probes_may_send_head(client) -> None:
    for path in ("/health", "/"):
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("field", "value", "says", "fine"),
    [("n", 2, "n", 1), ("temperature", "NaN", "temperature", 1), ("stream", "often", "stream", False)],
)
def test_several_choices_or_a_temperature_that_is_no_number_are_refused(
    client, field: str, value: object, says: str, fine: object
) -> None:
    """One checked answer per question: ``n`` > 1 is an error, not one choice silently; NaN is no temperature."""
    body = {"messages": [{"role": "user", "content": "Wer gründete DeepSeek?"}], field: value}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 422 and f"body.{says}" in r.json()["error"]["message"]
    for value in (fine, None):  # OpenAI's clients send unset fields as null
        r = client.post("/v1/chat/completions", json={**body, field: value})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), (value, r.text)


def test_stop_sequences_and_max_completion_tokens_reach_the_generator(app_settings) -> None:
    """OpenAI's ``stop`` (a string or up to 4) and ``max_completion_tokens`` (max_tokens' newer name) are
    honoured, not silently dropped: the reply ends before the stop text; the limit cuts the answer."""
    from fakes import FakeGenerator

    seen: list[Any] = []

    class Recording(FakeGenerator):
        def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
            seen.append(settings)
            return super().stream(messages, settings, prefix=prefix)

    with TestClient(create_app(app_settings, build=lambda s: fake_answerer(s, Recording()))) as c:
        wait_ready(c)
        assert "[1]" in _chat(c).json()["choices"][0]["message"]["content"]
        for stop in ("GPUs", ["GPUs", "nie"]):
            r = _chat(c, stop=stop)
            assert r.status_code == 200 and "GPUs" not in r.json()["choices"][0]["message"]["content"], r.text
            assert "GPUs" in seen[-1].stop
        chunks = _streamed(c, stop="GPUs")
        assert "GPUs" not in "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
        assert _chat(c, max_completion_tokens=1).json()["choices"][0]["finish_reason"] == "length"
        assert seen[-1].max_tokens == 1
        assert _chat(c, max_completion_tokens=3, max_tokens=50).status_code == 200 and seen[-1].max_tokens == 3
        assert _chat(c, stop=None, max_completion_tokens=None).status_code == 200  # clients send unset fields as null
        for bad in ({"stop": ["a"] * 5}, {"stop": ""}, {"max_completion_tokens": 0}):
            r = _chat(c, **bad)
            assert r.status_code == 422 and r.json()["error"]["type"] == "ValidationError", (bad, r.text)


@pytest.mark.parametrize("options", [None, {}, {"include_usage": False}, {"include_usage": None}])
def test_without_include_usage_the_finish_chunk_keeps_the_usage(client, options: dict[str, Any] | None) -> None:
    """What this service always sent (and clients read): usage beside finish_reason, no chunk after it."""
    body = {} if options is None else {"stream_options": options}
    *content, last = _streamed(client, **body)
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"]["completion_tokens"] > 0
    assert last["citations"] and "usage" not in content[0] and "usage" not in content[-1]


def test_include_usage_sends_it_in_one_more_chunk_without_choices(client) -> None:
    """OpenAI's stream_options.include_usage: every chunk has "usage": null, then a last chunk holds no
    choices and the usage; finish_reason, citations and rag stay on the chunk before it."""
    chunks = _streamed(client, stream_options={"include_usage": True})
    *content, finish, usage = chunks
    assert usage["choices"] == [] and usage["object"] == "chat.completion.chunk" and usage["id"] == finish["id"]
    assert usage["usage"]["completion_tokens"] > 0
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["usage"] is None
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in content)
    assert finish["citations"] and streamed == finish["rag"]["text"]
    assert all(c["usage"] is None and c["choices"][0]["finish_reason"] is None for c in content)
    assert "citations" not in usage and "rag" not in usage
    plain = _chat(client).json()["usage"]
    assert usage["usage"]["completion_tokens"] == plain["completion_tokens"]


@pytest.mark.parametrize("stream", [False, None])
def test_stream_options_without_stream_is_refused_as_openai_does(client, stream: bool | None) -> None:
    r = _chat(client, stream=stream, stream_options={"include_usage": True})
    assert r.status_code == 400 and r.json()["error"] == {
        "type": "InputError",
        "message": "stream_options is only allowed when stream is true",
    }
    assert _chat(client, stream=stream, stream_options=None).status_code == 200  # clients send unset fields as null
