"""OpenAI compatibility, both directions, over real sockets on loopback.

* The official `openai` client against our `/v1/chat/completions` (uvicorn, fake models): streaming
  and not, citations in the extra top-level field and in the last chunk, errors as `openai` exceptions.
* Our `OpenAIServerGenerator` against `python -m llama_cpp.server` running the real 0.5B model
  (marker real_models), started with an API key and a model alias that is no catalogue name, as a
  shared inference server is: the backend that lets generation move to another machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeGenerator, fake_answerer
from live import free_socket, serve, wait_healthy

QUESTION = "How many GPUs did DeepSeek use?"
MODEL = "qwen2.5-coder-1.5b"  # RAG_ANSWER_MODEL's default: the id GET /v1/models lists


@pytest.fixture
def openai_client(app_settings) -> Iterator:
    from openai import OpenAI

    with serve(app_settings, fake_answerer) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)


def test_openai_client_lists_the_model(openai_client, app_settings) -> None:
    assert [m.id for m in openai_client.models.list()] == [app_settings.answer_model]


def test_openai_client_non_streaming_gets_content_and_citations(openai_client) -> None:
    reply = openai_client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    message = reply.choices[0].message
    assert message.role == "assistant" and "[1]" in (message.content or "")
    assert reply.choices[0].finish_reason == "stop" and reply.usage and reply.usage.completion_tokens > 0
    extra = reply.model_extra or {}
    citations = extra["citations"]
    assert citations and {"number", "doc_id", "start", "end", "quote"} <= set(citations[0])
    assert extra["rag"]["refused"] is False


def test_openai_client_streaming_gets_the_answer_then_citations(openai_client) -> None:
    stream = openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    extra = last.model_extra or {}
    assert "[1]" in content and extra["citations"] and content == extra["rag"]["text"]


def test_openai_client_streaming_with_include_usage_gets_usage_last(openai_client) -> None:
    """stream_options={"include_usage": True}: the last chunk has no choices and the usage, as OpenAI sends it;
    the deltas still add up to the final text, and citations stay on the finish_reason chunk."""
    chunks = list(
        openai_client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *answer, last = chunks
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in answer)
    finish = answer[-1]
    assert finish.choices[0].finish_reason == "stop"
    extra = finish.model_extra or {}
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "[1]" in content and extra["citations"] and content == extra["rag"]["text"]


def test_openai_client_sees_stream_options_without_stream_as_a_400(openai_client) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream_options={"include_usage": True}
        )
    assert "stream_options is only allowed when stream is true" in str(caught.value)


# A draft with a sentence no passage backs ("10 Mitarbeiter"), one with nothing backed, an injected
# reply without citations, and a question the check judges unanswerable.
DRAFTS = {
    "answered": ("DeepSeek nutzte 2.048 GPUs [1]. DeepSeek hat 10 Mitarbeiter [1]. Der Sitz ist in Hangzhou [2].", 0.9),
    "unsupported": ("DeepSeek hat 10 Mitarbeiter [1].", 0.9),
    "injected": ("HACKED", 0.9),
    "judged unanswerable": ("DeepSeek nutzte 2.048 GPUs [1].", 0.1),
}


@pytest.mark.parametrize("case", list(DRAFTS))
def test_the_stream_an_openai_client_sees_is_the_checked_answer(app_settings, case: str) -> None:
    """Concatenated ``delta.content`` is exactly the final checked text: no draft claim is ever shown."""
    from openai import OpenAI

    from rag.language import REFUSAL

    draft, answerable = DRAFTS[case]
    question = "Wie viele GPUs nutzte DeepSeek und wo ist der Sitz?"

    def build(settings):  # type: ignore[no-untyped-def]
        return fake_answerer(settings, FakeGenerator(script=[draft, draft], answerable=answerable))

    with serve(app_settings, build) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)
        messages = [{"role": "user", "content": question}]
        chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
        plain = client.chat.completions.create(model=MODEL, messages=messages)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = (chunks[-1].model_extra or {})["rag"]
    assert streamed == final["text"] == plain.choices[0].message.content
    assert "10 Mitarbeiter" not in streamed and "HACKED" not in streamed
    if case == "answered":
        assert not final["refused"] and "2.048 GPUs [1]" in streamed and "Hangzhou" in streamed
    else:
        assert final["refused"] and streamed == REFUSAL["de"]


def test_openai_client_sees_bad_input_as_a_4xx_exception(openai_client) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "hi"}])
    assert caught.value.status_code == 400 and "user message" in str(caught.value)


# ----------------------------------------------------------------------------- our backend vs llama_cpp.server

SERVER_KEY = "sk-local-" + "5" * 16
SERVER_ALIAS = "house-llm"  # not a catalogue name: what a shared server calls its model


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    from rag.config import Settings
    from rag.models import fetch

    try:
        gguf = fetch.require(Settings().models_path, "qwen2.5-coder-0.5b")
    except Exception as exc:
        pytest.fail(f"the 0.5B model is missing ({exc}); run `rag models fetch`")
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
           "--model_alias", SERVER_ALIAS, "--api_key", SERVER_KEY]  # fmt: skip
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            auth = {"Authorization": f"Bearer {SERVER_KEY}"}
            wait_healthy(url, lambda: proc.poll() is None, wait_s=120, path="/v1/models", headers=auth)
        except AssertionError:
            raise AssertionError(f"llama_cpp.server did not start:\n{log.read_text()[-2000:]}") from None
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.real_models
def test_openai_backend_streams_from_a_llama_cpp_server(llama_server) -> None:
    from rag.models.generate import GenerationSettings, OpenAIServerGenerator

    gen = OpenAIServerGenerator(f"{llama_server}/v1", model_id=SERVER_ALIAS, api_key=SERVER_KEY)  # /v1 works too
    messages = [
        {"role": "system", "content": "Answer with the number only."},
        {"role": "user", "content": "DeepSeek trained R1 on 2048 GPUs. How many GPUs did DeepSeek use?"},
    ]
    pieces = list(gen.stream(messages, GenerationSettings(max_tokens=12)))
    assert len(pieces) >= 1 and "2048" in "".join(pieces).replace(".", "").replace(",", "")
    # llama_cpp.server 0.3.36 ignores stream_options.include_usage, so the prompt count stays unknown (0)
    # and the completion count is the number of streamed pieces.
    assert 1 <= gen.last_usage.completion_tokens <= 12


@pytest.mark.real_models
def test_openai_backend_with_a_wrong_key_is_one_line_naming_the_setting(llama_server) -> None:
    from rag.errors import BackendError
    from rag.models.generate import GenerationSettings, OpenAIServerGenerator

    gen = OpenAIServerGenerator(llama_server, model_id=SERVER_ALIAS, api_key="wrong", max_retries=0)
    with pytest.raises(BackendError) as caught:
        list(gen.stream([{"role": "user", "content": "hi"}], GenerationSettings(max_tokens=2)))
    assert "RAG_LLM_API_KEY" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.real_models
@pytest.mark.parametrize("stream", [False, True])
def test_the_service_answers_through_a_llama_cpp_server(llama_server, app_settings, stream: bool) -> None:
    """RAG_LLM_URL, RAG_LLM_MODEL and RAG_LLM_API_KEY as a user sets them; fake retrieval, real generation."""
    from openai import OpenAI

    from rag import wiring

    remote = app_settings.model_copy(
        update={"llm_url": llama_server, "llm_model": SERVER_ALIAS, "llm_api_key": SERVER_KEY, "max_tokens": 24}
    )

    def build(settings):  # type: ignore[no-untyped-def]
        return fake_answerer(settings, generator=wiring.generator(remote))

    with serve(remote, build, wait_s=30) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list()] == [SERVER_ALIAS]
        messages = [{"role": "user", "content": "Wie viele GPUs nutzte DeepSeek?"}]
        if stream:
            chunks = list(client.chat.completions.create(model=SERVER_ALIAS, messages=messages, stream=True,
                                                         max_tokens=24))  # fmt: skip
            final = chunks[-1]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            final = client.chat.completions.create(model=SERVER_ALIAS, messages=messages, max_tokens=24)
            text = final.choices[0].message.content or ""
    rag = (final.model_extra or {})["rag"]
    assert final.model == SERVER_ALIAS and text == rag["text"] and text
    assert final.choices[0].finish_reason in ("stop", "length")


def test_openai_backend_names_an_unreachable_server() -> None:
    from rag.errors import ModelError
    from rag.models.generate import GenerationSettings, OpenAIServerGenerator

    sock = free_socket()  # bound, never listening: connection refused
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        gen = OpenAIServerGenerator(url, model_id="x", timeout=2, max_retries=0)
        with pytest.raises(ModelError, match="RAG_LLM_URL"):
            list(gen.stream([{"role": "user", "content": "hi"}], GenerationSettings(max_tokens=4)))
    finally:
        sock.close()
