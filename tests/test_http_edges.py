"""HTTP edges an OpenAI client, curl or a browser meets: methods, headers, framing, odd text in streams."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fakes import fake_answerer, served_routes, wait_ready
from fastapi.testclient import TestClient

from rag.serve.app import create_app
from rag.wiring import Answerer


def test_a_wrong_method_is_405_naming_the_allowed_ones(client) -> None:
    """RFC 9110: a 405 carries ``Allow``; the error handler must not drop the exception's headers."""
    for method, path, allowed in (("PUT", "/v1/ask", "POST"), ("DELETE", "/v1/models", "GET")):
        r = client.request(method, path)
        assert r.status_code == 405 and r.json()["error"]["type"] == "HTTPError"
        assert allowed in r.headers.get("allow", ""), (method, path, dict(r.headers))


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions"])
def test_json_nested_too_deep_is_malformed_json_like_any_other(client, path: str) -> None:
    """json.loads fails with RecursionError past about 1000 levels, which FastAPI answered 400 HTTPError "There was
    an error parsing the body", not the 422 of every other malformed JSON body."""
    json_body = {"content-type": "application/json"}
    broken = client.post(path, content=b"{", headers=json_body)
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000):
        r = client.post(path, content=body, headers=json_body)
        assert r.status_code == broken.status_code == 422, r.text
        assert r.json()["error"]["type"] == broken.json()["error"]["type"] == "ValidationError"
        assert r.json()["error"]["message"].startswith("body: JSON nested too deep"), r.text


@pytest.mark.parametrize(
    ("origin", "asked", "refused"),
    [
        ("https://evil.example", {}, "origin 'https://evil.example' is not in RAG_CORS_ORIGINS"),
        ("https://app.example", {"Access-Control-Request-Method": "TRACE"}, "method 'TRACE' is not allowed"),
        (
            "https://evil.example",
            {"Access-Control-Request-Method": "TRACE"},
            "origin 'https://evil.example' is not in RAG_CORS_ORIGINS; method 'TRACE' is not allowed",
        ),
        (
            "https://app.example",
            {"Access-Control-Request-Private-Network": "true"},
            "private network access (Access-Control-Request-Private-Network) is not allowed",
        ),
    ],
    ids=["origin", "method", "origin and method", "private network"],
)
def test_a_refused_cors_preflight_is_in_the_error_shape(app_settings, origin, asked, refused) -> None:
    """Starlette refused a preflight in plain text ("Disallowed CORS origin"); its status and CORS headers stay."""
    settings = app_settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with TestClient(create_app(settings, build=fake_answerer)) as c:
        wait_ready(c)
        r = c.options("/v1/ask", headers={"Origin": origin, "Access-Control-Request-Method": "POST", **asked})
        assert r.status_code == 400
        assert r.json() == {"error": {"type": "CORSRefused", "message": f"CORS preflight refused: {refused}"}}
        assert "access-control-allow-methods" in r.headers and "x-request-id" in r.headers
        assert (r.headers.get("access-control-allow-origin") == origin) is (origin == "https://app.example")


def test_the_page_cannot_be_framed_by_another_site(client) -> None:
    """The page keeps the API key and deletes documents on a click: no clickjacking from a framing site."""
    for r in (client.get("/"), client.head("/")):
        assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
        policy = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"


ODD = "Erste Zeile\u2028zweite\u2029dritte\x85 vierte."


@dataclass
class _OddText(Answerer):
    """Answers with text holding Unicode line separators, streamed as one piece."""

    def __call__(self, question: str, **kwargs: Any) -> Any:
        if kwargs.get("on_token"):
            kwargs["on_token"](ODD)
        return replace(super().__call__(question), text=ODD)


def test_sse_data_survives_clients_that_split_lines_on_unicode_separators(app_settings) -> None:
    """A line of SSE ends at CR or LF only, but httpx's ``iter_lines`` and ``str.splitlines`` also end one at
    U+2028, U+2029 and U+0085 (NEL: cp1252's "…" read as Latin-1). Article text may hold them; a frame must
    still be one line each such client can parse, with the same text."""

    def build(settings: Any) -> Answerer:
        base = fake_answerer(settings)
        return _OddText(**{f: getattr(base, f) for f in base.__dataclass_fields__})

    messages = [{"role": "user", "content": "Wie viele GPUs?"}]
    with TestClient(create_app(app_settings, build=build)) as c:
        wait_ready(c)
        for path, body in (
            ("/v1/ask", {"question": "Wie viele GPUs?"}),
            ("/v1/chat/completions", {"messages": messages}),
        ):
            with c.stream("POST", path, json={**body, "stream": True}) as r:
                data = [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ") and ln != "data: [DONE]"]
            final = [json.loads(d) for d in data][-1]  # each frame whole, however the client split lines
            assert (final.get("text") or final["rag"]["text"]) == ODD, path


def test_no_page_loads_anything_from_another_host(client) -> None:
    """FastAPI's /docs and /redoc load scripts and fonts from CDNs, on the origin whose page keeps the API key,
    and machines may be offline: they are off; the OpenAPI document stays."""
    assert client.get("/docs").status_code == client.get("/redoc").status_code == 404
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]
    for method, path, _ in served_routes(client.app):
        if method == "GET":
            text = client.get(path.replace("{doc_id}", "a.txt")).text
            assert "cdn.jsdelivr.net" not in text and "fonts.googleapis.com" not in text, path


def test_head_works_on_every_get_route(client) -> None:
    """RFC 9110: a GET resource answers HEAD too (``curl -I``, uptime probes): GET's status and headers, no body."""
    paths = [p.replace("{doc_id}", "a.txt") for method, p, _ in served_routes(client.app) if method == "GET"]
    assert {"/health", "/", "/v1/models", "/v1/documents", "/v1/documents/a.txt", "/metrics"} <= set(paths)
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, (path, head.status_code)
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
        if path != "/metrics":  # its counters moved between the two
            assert head.headers["content-length"] == get.headers["content-length"], path
    assert 'rag_requests_total{path="/v1/models",status="200"} 2.0' in client.get("/metrics").text  # its route
    refused = client.head("/v1/ask")  # a POST route: still 405, naming the method it takes
    assert refused.status_code == 405 and refused.headers["allow"] == "POST" and refused.content == b""


def test_head_leaves_the_server_s_scope_a_head_request() -> None:
    """The server reads its own scope when it sends: a method changed there to GET made uvicorn's httptools
    backend expect the body and fail ("Response content shorter than Content-Length")."""
    import asyncio

    from rag.serve.app import HeadAsGet

    seen: list[str] = []
    scope: dict[str, Any] = {"type": "http", "method": "HEAD", "path": "/health"}

    async def app(inner: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(inner["method"])
        inner["route"] = "the route"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict[str, Any]) -> None:
        seen.append(f"{message['type']} {scope['method']} {message.get('body', b'')!r}")

    asyncio.run(HeadAsGet(app)(scope, None, send))  # type: ignore[arg-type]
    assert seen == ["GET", "http.response.start HEAD b''", "http.response.body HEAD b''"]
    assert scope["method"] == "HEAD" and scope["route"] == "the route"  # the log's route, the method unchanged
