"""Logs: one line per request with its id (also in the X-Request-ID header), text or JSON; no question
or document text unless RAG_LOG_QUESTIONS=1."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fakes import FakeGenerator, fake_answerer, wait_ready
from fastapi.testclient import TestClient

from rag.serve.app import create_app
from rag.serve.logs import JsonFormatter, TextFormatter, configure_logging

QUESTION = "Wie viele GPUs nutzte DeepSeek?"
SECRET_QUESTION = "Wie viele GPUs nutzte Geheimprojekt Zebra?"  # words that must not reach the log


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="rag")
    yield caplog


def _requests(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [r.fields for r in records if r.name == "rag.request" and r.getMessage() == "request"]  # type: ignore[attr-defined]


def _everything_logged(records: list[logging.LogRecord]) -> str:
    out = []
    for formatter in (TextFormatter(), JsonFormatter()):
        out += [formatter.format(r) for r in records]
    return "\n".join(out)


def test_one_line_per_request_with_its_id_and_stage_timings(client, lines) -> None:
    r = client.post("/v1/ask", json={"question": QUESTION})
    assert r.status_code == 200
    (line,) = _requests(lines.records)
    assert line["request_id"] == r.headers["X-Request-ID"] and len(line["request_id"]) == 32
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/ask", 200)
    assert line["refused"] is False and line["cached"] is False and line["seconds"] > 0
    assert {"retrieve", "total"} <= set(line["timings"])


def test_streams_are_logged_when_they_end(client, lines) -> None:
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        body = r.read().decode()
    (line,) = _requests(lines.records)
    assert "event: answer" in body and line["status"] == 200 and "timings" in line
    assert line["request_id"] == r.headers["X-Request-ID"]


def test_every_response_carries_a_request_id(client, app_settings, lines) -> None:
    ids = {client.get(path).headers["X-Request-ID"] for path in ("/health", "/nope", "/v1/documents/none.txt")}
    assert len(ids) == 3
    logged = _requests(lines.records)
    assert [(x["route"], x["status"]) for x in logged] == [
        ("/health", 200),
        ("-", 404),
        ("/v1/documents/{doc_id}", 404),
    ]
    assert logged[1]["path"] == "/nope" and "path" not in logged[2]  # the document name is not logged
    secured = app_settings.model_copy(update={"api_key": "s3cret"})
    with TestClient(create_app(secured, build=fake_answerer)) as c:
        wait_ready(c)
        refused = c.get("/v1/documents")
    assert refused.status_code == 401 and refused.headers["X-Request-ID"]


def test_a_clients_request_id_is_kept_when_it_is_a_plain_token(client) -> None:
    assert client.get("/health", headers={"X-Request-ID": "trace-42.a:b"}).headers["X-Request-ID"] == "trace-42.a:b"
    for bad in (b"has space", b"x" * 65, b"back\\slash", "ünï".encode(), b"<script>"):
        given = client.get("/health", headers={"X-Request-ID": bad})
        assert len(given.headers["X-Request-ID"]) == 32 and given.headers["X-Request-ID"].encode() != bad


def test_refusals_are_logged_as_such(app_settings, lines) -> None:
    def build(settings: Any) -> Any:
        return fake_answerer(settings, FakeGenerator(answerable=0.0))

    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        c.post("/v1/ask", json={"question": QUESTION})
    assert _requests(lines.records)[-1]["refused"] is True


def test_no_question_or_document_text_in_the_log(client, lines) -> None:
    client.post("/v1/ask", json={"question": SECRET_QUESTION})
    client.post("/v1/ask", json={"question": SECRET_QUESTION, "stream": True})
    client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": SECRET_QUESTION}]})
    client.post("/v1/search", json={"question": SECRET_QUESTION})
    client.post("/v1/documents", files={"file": ("zebra.txt", b"Geheimprojekt Zebra hat 99 Chips.", "text/plain")})
    client.get("/v1/documents/zebra.txt")
    logged = _everything_logged(lines.records)
    assert len(_requests(lines.records)) == 6
    assert "Zebra" not in logged and "Geheimprojekt" not in logged and "DeepSeek nutzte" not in logged


def test_questions_are_logged_when_asked_to(app_settings, lines) -> None:
    verbose = app_settings.model_copy(update={"log_questions": True})
    with TestClient(create_app(verbose, build=fake_answerer)) as c:
        wait_ready(c)
        c.post("/v1/ask", json={"question": SECRET_QUESTION})
    assert _requests(lines.records)[-1]["question"] == SECRET_QUESTION


class _Buggy(FakeGenerator):
    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        raise ValueError(f"a bug quoting the prompt: {messages[-1]['content'][-60:]}")


def test_a_bug_is_logged_without_its_message(app_settings, lines) -> None:
    def build(settings: Any) -> Any:
        return replace(fake_answerer(settings), generator=_Buggy())

    with TestClient(create_app(app_settings, build=build), raise_server_exceptions=False) as c:
        wait_ready(c)
        r = c.post("/v1/ask", json={"question": SECRET_QUESTION})
    assert r.status_code == 500 and r.json()["error"]["type"] == "InternalError"
    bug = next(x for x in lines.records if x.getMessage() == "bug")
    assert bug.fields["error"] == "builtins.ValueError" and "test_logs.py" in bug.fields["stack"]  # type: ignore[attr-defined]
    assert _requests(lines.records)[-1]["status"] == 500
    assert "Zebra" not in _everything_logged(lines.records)


class _BuggyAfterASentence(FakeGenerator):
    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        yield "DeepSeek nutzte 2.048 GPUs [1]. "
        yield "Dann"
        raise ValueError(f"a bug quoting the prompt: {messages[-1]['content'][-60:]}")


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions"])
def test_a_bug_after_the_first_streamed_sentence_is_an_error_event_logged_without_its_message(
    app_settings, lines, path: str
) -> None:
    """With the model free and the first sentence quick, a bug after it just ended the stream (no error
    event, no [DONE]) and was logged with its message, which quoted the question."""

    def build(settings: Any) -> Any:
        return replace(fake_answerer(settings), generator=_BuggyAfterASentence())

    body = (
        {"question": SECRET_QUESTION}
        if path == "/v1/ask"
        else {"messages": [{"role": "user", "content": SECRET_QUESTION}]}
    )
    with TestClient(create_app(app_settings, build=build), raise_server_exceptions=False) as c:
        wait_ready(c)
        r = c.post(path, json={**body, "stream": True})
    assert r.status_code == 200 and "2.048 GPUs" in r.text and '"InternalError"' in r.text
    assert ("data: [DONE]" in r.text) if "chat" in path else ("event: error" in r.text)
    bug = next(x for x in lines.records if x.getMessage() == "bug while streaming an answer")
    assert bug.fields["error"] == "builtins.ValueError"  # type: ignore[attr-defined]
    assert "Zebra" not in _everything_logged(lines.records) and "Zebra" not in r.text.split("GPUs [1].")[-1]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_configured_format_and_level(settings, fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": fmt, "log_level": "info"}), stream)
    logger = logging.getLogger("rag.request")  # conftest restores the `rag` logger afterwards
    logger.debug("hidden")
    logger.info("request", extra={"fields": {"request_id": "abc", "route": "/v1/ask", "status": 200,
                                              "timings": {"retrieve": 0.0612}, "refused": False}})  # fmt: skip
    out = stream.getvalue().strip().splitlines()
    assert len(out) == 1 and "hidden" not in out[0]
    if fmt == "json":
        line = json.loads(out[0])
        assert line["level"] == "info" and line["logger"] == "rag.request" and line["message"] == "request"
        assert line["request_id"] == "abc" and line["timings"] == {"retrieve": 0.0612} and line["refused"] is False
    else:
        assert out[0].endswith("request request_id=abc route=/v1/ask status=200 timings=retrieve:0.061 refused=false")
