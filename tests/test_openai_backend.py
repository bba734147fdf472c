"""`OpenAIServerGenerator` (RAG_LLM_URL) against a small fake OpenAI-compatible server on loopback.

The fake checks the API key and the model name as vLLM, Ollama, OpenAI and gateways do, streams
deltas, returns top log-probabilities, and can fail or stall on request, so the client's retries
and every one-line error can be seen without a model. `test_openai_client.py` runs the same
backend against the real `python -m llama_cpp.server`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from live import serve_asgi

from rag.errors import BackendError, ModelError
from rag.models.generate import GenerationSettings, OpenAIServerGenerator

KEY = "sk-test-123"
ALIAS = "house-model"  # not a catalogue name: the server's own name for its model
MESSAGES = [{"role": "user", "content": "How many GPUs?"}]


class FakeServer:
    """State of the fake: requests seen, and failures to answer with first."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: list[int] = []
        self.stall_s = 0.0
        self.logprobs_status = 200  # what a logprobs request gets

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": ALIAS, "object": "model", "created": 0, "owned_by": "x"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append({"body": body, "auth": request.headers.get("authorization")})
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return _error(401, "Invalid API Key")
            if body.get("model") != ALIAS:
                return _error(404, f"model {body.get('model')} not found")
            if self.fail_with:
                status = self.fail_with.pop(0)
                return _error(status, "overloaded", headers={"retry-after-ms": "10"})
            if self.stall_s:
                time.sleep(self.stall_s)
            if body.get("logprobs") and self.logprobs_status != 200:
                return _error(self.logprobs_status, "logprobs is not supported")
            if body.get("stream"):
                return StreamingResponse(_chunks(body), media_type="text/event-stream")
            return JSONResponse(_completion(body))

        return app


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "error"}}, status_code=status, headers=headers)


def _chunks(body: dict[str, Any]) -> Iterator[str]:
    words = ["DeepSeek ", "nutzte ", "2.048 ", "GPUs ", "[1]."][: body["max_tokens"]]
    for word in words:
        yield "data: " + json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": ALIAS,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
        )
        yield "\n\n"  # fmt: skip
    usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7 + len(words)}
    yield "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": ALIAS,
                                 "choices": [], "usage": usage}) + "\n\n"  # fmt: skip
    yield "data: [DONE]\n\n"


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    top = [{"token": "Yes", "logprob": -0.1, "bytes": None}, {"token": "No", "logprob": -2.4, "bytes": None}]
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": "Yes"}, "finish_reason": "length"}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [{"token": "Yes", "logprob": -0.1, "bytes": None, "top_logprobs": top}]}
    usage = {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
    return {"id": "c", "object": "chat.completion", "created": 0, "model": ALIAS, "choices": [choice], "usage": usage}


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeServer, str]]:
    server = FakeServer()
    with serve_asgi(server.app(), path="/v1/models") as url:
        yield server, url


@pytest.fixture
def server(fake: tuple[FakeServer, str]) -> Iterator[tuple[FakeServer, str]]:
    state, url = fake
    state.requests.clear()
    state.fail_with.clear()
    state.stall_s = 0.0
    state.logprobs_status = 200
    yield state, url


def _generator(url: str, **kw: Any) -> OpenAIServerGenerator:
    return OpenAIServerGenerator(url, **{"model_id": ALIAS, "api_key": KEY, "timeout": 5, "max_retries": 0, **kw})


def test_streams_with_the_key_and_the_servers_model_name(server) -> None:
    state, url = server
    gen = _generator(url)
    text = "".join(gen.stream(MESSAGES, GenerationSettings(max_tokens=4)))
    assert text == "DeepSeek nutzte 2.048 GPUs "
    assert (gen.last_usage.prompt_tokens, gen.last_usage.completion_tokens) == (7, 4)
    sent = state.requests[-1]
    assert sent["auth"] == f"Bearer {KEY}" and sent["body"]["model"] == ALIAS and sent["body"]["max_tokens"] == 4


@pytest.mark.parametrize("spelling", ["", "/", "/v1", "/v1/"])
def test_the_url_with_or_without_v1(server, spelling: str) -> None:
    _, url = server
    assert "".join(_generator(url + spelling).stream(MESSAGES, GenerationSettings(max_tokens=1))) == "DeepSeek "


def test_yes_probability_from_top_logprobs(server) -> None:
    import math

    p = _generator(server[1]).yes_probability(MESSAGES)
    assert p == pytest.approx(1 / (1 + math.exp(-2.4 + 0.1)))
    # a check written as the reply's beginning is asked as a question: a server cannot be given the reply's start
    state, url = server
    _generator(url).yes_probability([*MESSAGES, {"role": "assistant", "content": "Stated (Yes/No):"}])
    sent = state.requests[-1]["body"]["messages"]
    assert sent[-1] == {"role": "user", "content": "Stated (Yes/No):"} and sent[:-1] == MESSAGES


@pytest.mark.parametrize(("status", "asked_again"), [(500, False), (400, False), (503, True)])
def test_a_server_without_logprobs_is_answered_without_the_check(server, status: int, asked_again: bool) -> None:
    """llama_cpp.server without --logits_all answers 500: not asked again; an overloaded one is."""
    state, url = server
    state.logprobs_status = status
    gen = _generator(url)
    assert gen.yes_probability(MESSAGES) is None
    seen = len(state.requests)
    assert gen.yes_probability(MESSAGES) is None
    assert (len(state.requests) > seen) is asked_again
    assert "".join(gen.stream(MESSAGES, GenerationSettings(max_tokens=1))) == "DeepSeek "


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400, text
    return text


@pytest.mark.parametrize("call", ["stream", "yes_probability"])
def test_a_wrong_key_is_one_line_naming_the_setting(server, call: str) -> None:
    gen = _generator(server[1], api_key="wrong")
    with pytest.raises(BackendError) as caught:
        if call == "stream":
            list(gen.stream(MESSAGES, GenerationSettings(max_tokens=2)))
        else:
            gen.yes_probability(MESSAGES)
    assert "RAG_LLM_API_KEY" in _one_line(caught.value) and "wrong" not in str(caught.value)
    assert isinstance(caught.value, ModelError) and caught.value.http_status == 502 and caught.value.exit_code == 3


def test_no_key_where_one_is_needed_names_the_setting(server) -> None:
    with pytest.raises(BackendError, match="RAG_LLM_API_KEY"):
        list(_generator(server[1], api_key=None).stream(MESSAGES, GenerationSettings(max_tokens=2)))


def test_a_wrong_model_name_names_the_setting(server) -> None:
    with pytest.raises(BackendError) as caught:
        list(_generator(server[1], model_id="qwen2.5-coder-1.5b").stream(MESSAGES, GenerationSettings(max_tokens=2)))
    assert "RAG_LLM_MODEL" in _one_line(caught.value) and "qwen2.5-coder-1.5b" in str(caught.value)


def test_a_failing_server_is_retried(server) -> None:
    state, url = server
    state.fail_with[:] = [503, 429]
    text = "".join(_generator(url, max_retries=2).stream(MESSAGES, GenerationSettings(max_tokens=1)))
    assert text == "DeepSeek " and len(state.requests) == 3


def test_without_retries_the_failure_is_one_line(server) -> None:
    state, url = server
    state.fail_with[:] = [503]
    with pytest.raises(BackendError, match="answered 503") as caught:
        list(_generator(url).stream(MESSAGES, GenerationSettings(max_tokens=1)))
    _one_line(caught.value)


def test_a_stalled_server_names_the_timeout_setting(server) -> None:
    state, url = server
    state.stall_s = 1.5
    with pytest.raises(BackendError, match="RAG_LLM_TIMEOUT"):
        list(_generator(url, timeout=0.5).stream(MESSAGES, GenerationSettings(max_tokens=1)))


def test_wiring_builds_the_backend_from_settings(settings) -> None:
    from rag import wiring

    remote = settings.model_copy(
        update={"llm_url": "http://127.0.0.1:9", "llm_model": ALIAS, "llm_api_key": KEY, "llm_timeout": 7.0}
    )
    gen = wiring.generator(remote)
    assert isinstance(gen, OpenAIServerGenerator) and gen.model_id == ALIAS == remote.answer_model_id
    assert gen.base_url == "http://127.0.0.1:9/v1"
    default_name = wiring.generator(remote.model_copy(update={"llm_model": None}))
    assert default_name.model_id == settings.answer_model  # no RAG_LLM_MODEL: the catalogue name is sent


def test_through_the_service_a_wrong_key_is_a_502_naming_the_setting(server, app_settings) -> None:
    from fakes import fake_answerer, wait_ready
    from fastapi.testclient import TestClient

    from rag.serve.app import create_app

    def build(settings: Any) -> Any:
        return fake_answerer(settings, generator=_generator(server[1], api_key="wrong"))  # type: ignore[arg-type]

    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        r = c.post("/v1/ask", json={"question": "Wie viele GPUs nutzte DeepSeek?"})
    assert r.status_code == 502 and r.json()["error"]["type"] == "BackendError"
    assert "RAG_LLM_API_KEY" in r.json()["error"]["message"]
