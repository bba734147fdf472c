"""Schemathesis fuzzes every operation of the app's own OpenAPI document, in process, with fake models.

Valid and invalid requests alike must never get a 5xx (a 503 "Busy" with Retry-After is the one
documented exception), every error must leave in the one JSON shape ``{"error": {"type", "message"}}``,
and every response must match what the document declares for its status code.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from fakes import FakeGenerator, fake_answerer, served_routes, wait_ready
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance

from rag.serve.app import create_app

# Examples per operation and mode. The five operations that take input (body or path) get both modes;
# the others have nothing to vary, so a negative case cannot be built for them.
EXAMPLES = {GenerationMode.POSITIVE: 150, GenerationMode.NEGATIVE: 150}
MIN_CASES = 1000
BUDGET_S = 60


def error_problem(response: Any) -> str | None:
    """Why ``response`` breaks the service's error contract, or None when it keeps it."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{status} with a body that is not JSON: {response.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != {"type", "message"}:
        return f"{status} with a body not shaped {{'error': {{'type', 'message'}}}}: {body!r:.300}"
    if not (isinstance(error["type"], str) and error["type"] and isinstance(error["message"], str)):
        return f"{status} with an empty or non-string type/message: {body!r:.300}"
    if status >= 500 and not (status == 503 and error["type"] == "Busy" and "retry-after" in response.headers):
        return f"server error {status}: {body!r:.300}"
    return None


@pytest.fixture
def schema(app_settings):
    app = create_app(app_settings, build=fake_answerer)
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    with schemathesis.python.asgi.get_client(app) as asgi:  # starts the lifespan; schemathesis keeps it running
        for _ in range(200):
            if asgi.get("/health").status_code == 200:
                break
            time.sleep(0.05)
    yield loaded
    schemathesis.python.asgi.shutdown_lifespans()


def test_every_route_is_in_the_document(schema) -> None:
    from fastapi.routing import APIRoute

    app = schema.app
    documented = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    served = {(m, path) for m, path, route in served_routes(app) if isinstance(route, APIRoute)}
    assert served == documented


def fuzz(operation: Any, mode: GenerationMode, examples: int, statuses: Counter, problems: list[str]) -> None:
    """Run ``examples`` generated cases of ``operation``; record each status and each broken contract."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call()
        statuses[(operation.label, response.status_code)] += 1
        problem = error_problem(response)
        if problem is None:
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except AssertionError as exc:
                problem = f"does not match its documented response: {str(exc)[:300]}"
        if problem:
            # Recorded, not raised: one run then names every failing operation, not only the first.
            problems.append(f"{case.method} {case.formatted_path} [{mode.value}] -> {problem}")

    try:
        run()
    except Unsatisfiable:
        # A path parameter typed as any string has no invalid value: nothing to generate.
        if mode is GenerationMode.POSITIVE:
            raise


def test_fuzz_every_operation(schema) -> None:
    statuses: Counter[tuple[str, int]] = Counter()
    problems: list[str] = []
    started = time.monotonic()
    for operation in (r.ok() for r in schema.get_all_operations()):
        takes_input = bool(len(operation.body) or list(operation.iter_parameters()))
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not takes_input:
                continue
            fuzz(operation, mode, examples, statuses, problems)
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    print(f"\nfuzzed {total} cases in {elapsed:.1f} s")
    for (label, status), n in sorted(statuses.items()):
        print(f"  {label:<34} {status}  x{n}")
    assert not problems, f"{len(problems)} broken responses:\n" + "\n".join(dict.fromkeys(problems))
    assert total >= MIN_CASES, f"only {total} cases generated"


# What the schema cannot generate: unknown paths, wrong methods, broken or mistyped bodies.
EDGE_REQUESTS = [
    ("GET", "/nope", {}),
    ("GET", "/v1/ask", {}),
    ("PUT", "/v1/documents/a.txt", {}),
    ("POST", "/v1/ask", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ("POST", "/v1/ask", {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}),
    ("POST", "/v1/ask", {"content": b"[]", "headers": {"content-type": "application/json"}}),
    ("POST", "/v1/ask", {"content": b"null", "headers": {"content-type": "application/json"}}),
    ("POST", "/v1/ask", {"content": b'{"question": "x"}', "headers": {"content-type": "text/plain"}}),
    (
        "POST",
        "/v1/ask",
        {"content": b'{"question": "' + b"\\ud800" + b'"}', "headers": {"content-type": "application/json"}},
    ),
    ("POST", "/v1/ask", {"json": {"question": "x" * 2001}}),
    ("POST", "/v1/ask", {"json": {"question": "   "}}),
    ("POST", "/v1/ask", {"json": {"question": "x", "history": [{"role": "user", "content": "y"}] * 21}}),
    ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "system", "content": "x"}]}}),
    ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "x" * 8000}]}}),
    ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "x"}], "temperature": "nan"}}),
    ("POST", "/v1/documents", {"content": b"not multipart", "headers": {"content-type": "multipart/form-data"}}),
    ("POST", "/v1/documents", {"content": b"--b\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}}),
    ("POST", "/v1/documents", {"data": {"file": "a text field, not a file"}}),
    ("GET", "/v1/documents/" + "x" * 5000, {}),
    ("DELETE", "/v1/documents/%00", {}),
]


@pytest.mark.parametrize(("method", "path", "kw"), EDGE_REQUESTS, ids=[f"{m} {p[:30]}" for m, p, _ in EDGE_REQUESTS])
def test_edge_requests_get_a_4xx_in_the_error_shape(client, method: str, path: str, kw: dict[str, Any]) -> None:
    r = client.request(method, path, **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert error_problem(r) is None, error_problem(r)


# The schema's multipart body carries no file name, so the generated uploads above stop at the name check.
# These reach the document loaders (text decoding, HTML, pypdf) with hostile bytes under accepted names.
_PDF_HEAD = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
upload_bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=1500).map(lambda b: _PDF_HEAD + b),
    st.text(max_size=300).map(lambda t: f"<html><body><article>{t}</article>".encode("utf-8", "surrogatepass")),
)


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(suffix=st.sampled_from(["txt", "md", "html", "htm", "pdf"]), data=upload_bodies)
def test_uploads_of_arbitrary_bytes(client, app_settings, suffix: str, data: bytes) -> None:
    r = client.post("/v1/documents", files={"file": (f"fuzz.{suffix}", data, "application/octet-stream")})
    assert r.status_code in (201, 413, 422), r.text
    assert error_problem(r) is None
    if r.status_code == 201:
        assert client.delete(f"/v1/documents/fuzz.{suffix}").status_code == 200
    leftovers = [p.name for p in app_settings.corpus_dir.iterdir() if p.name not in ("a.txt", "b.txt", "c.txt")]
    assert leftovers == [], "an upload left files behind in the corpus folder"


# ----------------------------------------------------------------------------- a bug in the pipeline


class BuggyGenerator(FakeGenerator):
    """Fails like a programming error (not a RagError) when the prompt holds BOOM."""

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        if "BOOM" in messages[-1]["content"]:
            raise ValueError("a bug, with words from the question: BOOM")
        yield from super().stream(messages, settings)


def _with_timeout(fn: Any, seconds: float = 10.0) -> Any:
    """``fn()`` in a thread; a call that hangs fails the test instead of hanging it."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"request still running after {seconds} s (the model gate is never freed)"
    return result[0]


def test_stream_answer_ends_when_the_worker_hits_a_bug() -> None:
    """Without the "failed" event the consumer waited forever and held the model gate."""
    import asyncio

    from rag.serve.stream import stream_answer

    def run(on_token: Any) -> Any:
        on_token("ein ")
        raise ValueError("a bug")

    async def consume() -> list[str]:
        return [kind async for kind, _ in stream_answer(run)]

    started = time.monotonic()
    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(asyncio.wait_for(consume(), timeout=3))
    # The timeout's cancellation also surfaces the ValueError (from `await worker`): only speed tells.
    assert time.monotonic() - started < 2, "the stream ended only when the consumer was cancelled"


# If stream_answer regresses, the stream=True case hangs rather than fails; the test above names the cause.
@pytest.mark.parametrize("stream", [False, True])
def test_a_bug_is_a_500_in_the_error_shape_and_frees_the_model(app_settings, stream: bool) -> None:
    def build(settings: Any) -> Any:
        return replace(fake_answerer(settings), generator=BuggyGenerator())

    with TestClient(create_app(app_settings, build=build), raise_server_exceptions=False) as c:
        wait_ready(c)
        for _ in range(3):  # more than once: a leaked gate would block the second call
            bad = {"question": "Wie viele GPUs nutzte DeepSeek? BOOM", "stream": stream}
            r = _with_timeout(lambda bad=bad: c.post("/v1/ask", json=bad))
            assert r.status_code == 500 and r.json()["error"]["type"] == "InternalError"
            assert "BOOM" not in r.text  # the message may quote the question: it stays in the server log
            good = _with_timeout(lambda: c.post("/v1/ask", json={"question": "Wie viele GPUs nutzte DeepSeek?"}))
            assert good.status_code == 200


def test_retry_after_is_not_the_keep_alive_timeout() -> None:
    """A client that honours Retry-After must not come back just as uvicorn closes its idle connection."""
    import uvicorn

    from rag.serve.shapes import RETRY_AFTER_S

    keep_alive = uvicorn.Config(app=None).timeout_keep_alive
    assert abs(RETRY_AFTER_S - keep_alive) >= 2
