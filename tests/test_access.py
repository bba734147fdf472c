"""Access control and hostile input at the HTTP edge: the API key, upload names, size and type limits, logs.

Routes are enumerated from the app (``served_routes``), so a route added later is covered without editing this file.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import fake_answerer, served_routes, wait_ready
from fastapi.testclient import TestClient

from rag.errors import ModelError
from rag.serve.app import create_app

KEY = "k3y-" + "7" * 28
PUBLIC = {
    "/health": "load balancers and `make run` poll it without a key",
    "/": "the static chat page; a browser cannot send a bearer header when it opens a URL, and the page "
    "asks for the key itself (it holds no data: see test_public_page_holds_no_data)",
}
WRONG_KEYS = [
    None,
    "",
    "Bearer ",
    "Bearer wrong",
    f"Bearer {KEY[:-1]}",
    f"Bearer {KEY}x",
    f"Bearer  {KEY}",
    KEY,
    f"Basic {KEY}",
    f"Bearer {KEY.upper()}",
]
ORIGINALS = ["a.txt", "b.txt", "c.txt"]


@pytest.fixture
def secured(app_settings) -> Iterator[TestClient]:
    settings = app_settings.model_copy(update={"api_key": KEY, "max_upload_bytes": 2000})
    with TestClient(create_app(settings, build=fake_answerer)) as c:
        wait_ready(c)
        yield c


def _auth(header: str | None) -> dict[str, str]:
    return {} if header is None else {"Authorization": header}


def _request(client: TestClient, method: str, path: str, header: str | None) -> Any:
    """One request that would succeed with the right key (a real body, an existing document)."""
    path = path.replace("{doc_id}", "a.txt").replace("{path}", "x")
    kw: dict[str, Any] = {"headers": _auth(header)}
    if path == "/v1/ask":
        kw["json"] = {"question": "Wie viele GPUs nutzte DeepSeek?"}
    elif path == "/v1/chat/completions":
        kw["json"] = {"messages": [{"role": "user", "content": "How many GPUs did DeepSeek use?"}]}
    elif path == "/v1/search":
        kw["json"] = {"question": "Wie viele GPUs nutzte DeepSeek?"}
    elif path == "/v1/summarize":
        kw["json"] = {"doc_id": "a.txt"}
    elif path == "/v1/documents" and method == "POST":
        kw["files"] = {"file": ("new.txt", b"Die Firma baute 12 Chips.", "text/plain")}
    return client.request(method, path, **kw)


def _routes(client: TestClient) -> list[tuple[str, str]]:
    found = sorted(  # DELETE last, so the other requests still find the document it removes
        (method == "DELETE", method, path) for method, path, _ in served_routes(client.app)
    )
    assert {p for *_, p in found} >= {"/v1/ask", "/v1/documents", "/v1/documents/{doc_id}", "/openapi.json"}
    return [(method, path) for _, method, path in found]


def test_every_route_but_the_public_ones_needs_the_key(secured: TestClient) -> None:
    checked = 0
    for method, path in _routes(secured):
        if path in PUBLIC:
            continue
        for header in WRONG_KEYS:
            r = _request(secured, method, path, header)
            assert r.status_code == 401, f"{method} {path} with Authorization={header!r}: {r.status_code}"
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            if method != "HEAD":
                assert r.json()["error"]["type"] == "Unauthorized"
                assert KEY not in r.text
            checked += 1
    assert checked >= 10 * len(WRONG_KEYS)
    # Nothing was done by the refused requests.
    assert [d["doc_id"] for d in _documents(secured)] == ORIGINALS


def test_the_right_key_opens_every_route(secured: TestClient) -> None:
    for method, path in _routes(secured):
        r = _request(secured, method, path, f"Bearer {KEY}")
        assert r.status_code < 400, f"{method} {path} with the right key: {r.status_code} {r.text[:200]}"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive(secured: TestClient, scheme: str) -> None:
    """RFC 7235: the auth scheme is case-insensitive (some clients send `bearer`); the key is not."""
    assert secured.get("/v1/documents", headers={"Authorization": f"{scheme} {KEY}"}).status_code == 200


def test_public_routes_answer_without_the_key(secured: TestClient) -> None:
    assert secured.get("/health").status_code == 200
    assert secured.get("/").status_code == 200


def _failed_health(c: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """`/health` once loading has failed (it fails in the loader thread, so wait for it: at most 5 s)."""
    deadline = time.monotonic() + 5
    while (r := c.get("/health", headers=headers)).json()["status"] == "loading":
        assert time.monotonic() < deadline, "loading did not fail"
        time.sleep(0.01)
    assert r.status_code == 503
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("key", [None, KEY])
def test_health_shows_the_load_error_only_with_the_key(app_settings, key: str | None) -> None:
    """`/health` is public, and a load error can name server paths: with a key set, only its holders see it."""
    secret_path = "/srv/private/models/qwen.gguf"

    def broken(settings: Any) -> Any:
        raise ModelError(f"model not found at {secret_path}; run `rag models fetch`")

    with TestClient(create_app(app_settings.model_copy(update={"api_key": key}), build=broken)) as c:
        for header in WRONG_KEYS if key else [None]:
            body = _failed_health(c, _auth(header))
            if key:
                assert body["status"] == "error" and secret_path not in str(body), header
                assert "failed" in body["detail"] and "RAG_API_KEY" in body["detail"]
            else:  # no key set: the whole API is open, so is the detail
                assert secret_path in body["detail"]
        if key:
            assert secret_path in _failed_health(c, _auth(f"bearer {key}"))["detail"]
            assert c.post("/v1/ask", json={"question": "x"}).status_code == 401  # the 500 with the error needs it too


def test_public_page_holds_no_data(secured: TestClient, app_settings) -> None:
    page = secured.get("/").text
    for name in ORIGINALS:
        text = (app_settings.corpus_dir / name).read_text()
        assert text[:20] not in page
    assert KEY not in page and "DeepSeek nutzte" not in page


@pytest.mark.parametrize(
    "path",
    ["/v1/documents/", "//v1/documents", "/v1//documents", "/health/../v1/documents", "/v1/documents/a.txt/",
     "/health%2F..%2Fv1/documents", "/v1/documents/%2E%2E%2Fa.txt", "/%761/documents", "/metrics?x=/health"],
)  # fmt: skip
def test_path_tricks_never_skip_the_key(secured: TestClient, path: str) -> None:
    r = secured.get(path)
    assert r.status_code in (401, 404, 307), (path, r.status_code)
    assert "DeepSeek" not in r.text and "rag_requests_total" not in r.text


def test_cors_preflight_passes_but_the_request_still_needs_the_key(app_settings) -> None:
    settings = app_settings.model_copy(update={"api_key": KEY, "cors_origins": ["https://app.example"]})
    with TestClient(create_app(settings, build=fake_answerer)) as c:
        wait_ready(c)
        origin = {"Origin": "https://app.example"}
        pre = c.options(
            "/v1/ask",
            headers={**origin, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"},
        )  # fmt: skip
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        denied = c.post("/v1/ask", json={"question": "x"}, headers=origin)
        assert denied.status_code == 401
        # The browser page on that origin can read why it was refused.
        assert denied.headers.get("access-control-allow-origin") == "https://app.example"


# ----------------------------------------------------------------------------- upload names


def _multipart(filename: bytes, data: bytes = b"Die Firma baute 12 Chips.") -> tuple[bytes, dict[str, str]]:
    """A multipart body written by hand, so the file name reaches the server byte for byte."""
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + data + b"\r\n--XyZ--\r\n"
    )
    return body, {"content-type": "multipart/form-data; boundary=XyZ", "Authorization": f"Bearer {KEY}"}


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


OUTSIDE = f"/tmp/rag-access-{uuid.uuid4().hex}.txt"
UNSAFE_NAMES = [
    "../x.txt",
    "../../x.txt",
    "..\\x.txt",
    "..\\\\x.txt",
    "sub/x.txt",
    "sub\\x.txt",
    OUTSIDE,
    "C:x.txt",
    "a\x00.txt",
    "x.txt\x00.exe",
    "a.txt\n",
    "a.txt\r",
    "a\n.txt",
    ".txt",
    ".hidden.txt",
    "..txt",
    "....//x.txt",
    "%2e%2e%2fx.txt",
    "\uff0e\uff0e\uff0fx.txt",  # fullwidth "../"
    "\u2025/x.txt",  # two dot leader
    "x\u2215y.txt",  # division slash
    "ａ.txt",  # fullwidth a
    "x\u202etxt.exe",  # right-to-left override
    "x.txt\u200b",  # zero width space
    "\u0430.txt",  # Cyrillic a
    "x.txt ",
    " x.txt",
    "x.exe",
    "x.txt.exe",
    "x",
    "x.docx",
    "x.php",
    "a" * 200 + ".txt",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=[ascii(n)[:40] for n in UNSAFE_NAMES])
def test_upload_names_cannot_escape_or_trick_the_corpus(secured: TestClient, app_settings, name: str) -> None:
    root = app_settings.corpus_dir.parent  # tmp_path: corpus, index and anything a traversal would reach
    before = _files_under(root)
    body, headers = _multipart(name.encode("utf-8"))
    r = secured.post("/v1/documents", content=body, headers=headers)
    assert 400 <= r.status_code < 500, f"{name!r}: {r.status_code} {r.text[:200]}"
    assert set(r.json()["error"]) == {"type", "message"}
    assert _files_under(root) == before
    assert not Path(OUTSIDE).exists()
    assert sorted(p.name for p in app_settings.corpus_dir.iterdir()) == ORIGINALS
    assert [d["doc_id"] for d in _documents(secured)] == ORIGINALS


@pytest.mark.parametrize("name", ["C:\\x.txt", "C:\\..\\..\\x.txt"])
def test_windows_full_paths_are_cut_to_their_base_name(secured: TestClient, app_settings, name: str) -> None:
    """python-multipart keeps only the base name of a "C:\\..." file name (old browsers sent full paths),
    so the app never sees the folders; the document lands inside the corpus as x.txt."""
    root = app_settings.corpus_dir.parent
    before = _files_under(root)
    body, headers = _multipart(name.encode())
    r = secured.post("/v1/documents", content=body, headers=headers)
    assert r.status_code == 201 and r.json()["doc_id"] == "x.txt"
    assert _files_under(root) - before <= {app_settings.corpus_dir / "x.txt"} | set((root / "index").rglob("*"))
    assert (app_settings.corpus_dir / "x.txt").is_file()


@pytest.mark.parametrize("name", ["bericht.txt", "notes_2025.md", "Seite-1.html", "a.htm", "a..b.txt"])
def test_plain_names_are_accepted(secured: TestClient, app_settings, name: str) -> None:
    body, headers = _multipart(name.encode(), b"<p>Die Firma baute 12 Chips.</p>")
    r = secured.post("/v1/documents", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert (app_settings.corpus_dir / name).is_file()


def _documents(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/v1/documents", headers={"Authorization": f"Bearer {KEY}"}).json()["documents"]


# ----------------------------------------------------------------------------- size and type limits


def test_upload_over_the_limit_is_413(secured: TestClient) -> None:
    r = secured.post(
        "/v1/documents",
        files={"file": ("big.txt", b"Wort " * 1000, "text/plain")},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"


def test_upload_over_the_limit_without_content_length_is_413(secured: TestClient, app_settings) -> None:
    body, headers = _multipart(b"big.txt", b"Wort " * 100_000)

    def chunks() -> Iterator[bytes]:  # a generator body goes out chunked, with no Content-Length
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = secured.post("/v1/documents", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
    assert sorted(p.name for p in app_settings.corpus_dir.iterdir()) == ORIGINALS


def test_json_body_over_the_limit_without_content_length_is_413(secured: TestClient) -> None:
    big = b'{"question": "' + b"x" * 200_000 + b'"}'
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    r = secured.post("/v1/ask", content=iter([big[:1000], big[1000:]]), headers=headers)
    assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"


@pytest.mark.parametrize("length", ["abc", "-1", "1e9", "99999999999999999999"])
def test_malformed_content_length_is_refused(secured: TestClient, length: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json", "content-length": length}
    r = secured.post("/v1/ask", content=b'{"question": "x"}', headers=headers)
    assert r.status_code in (400, 413) and set(r.json()["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bin.txt", bytes(range(256)) * 4),
        ("fake.pdf", b"Dies ist kein PDF, nur Text."),
        ("empty.md", b""),
        ("nul.html", b"<p>a\x00b</p>" * 10),
    ],
)
def test_uploads_that_are_not_articles_are_422_and_leave_nothing(
    secured: TestClient,
    app_settings,
    name: str,
    data: bytes,
) -> None:
    body, headers = _multipart(name.encode(), data)
    r = secured.post("/v1/documents", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["type"] == "DocumentError"
    assert name in r.json()["error"]["message"]
    # The message names the upload, not where the server keeps its files.
    assert str(app_settings.corpus_dir) not in r.text and ".upload-" not in r.text
    assert sorted(p.name for p in app_settings.corpus_dir.iterdir()) == ORIGINALS


# ----------------------------------------------------------------------------- logs


def test_logs_hold_no_key_no_question_and_no_document_text(
    secured: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO (stricter than `rag serve`'s default, WARNING), across every logger."""
    question = "Wie viele Geheimchips nutzte QuestionMarker4711?"
    chat = "How many secret chips did ChatMarker4712 use?"
    text = "Die Firma DocMarker4713 baute heimlich 12 Chips."
    auth = {"Authorization": f"Bearer {KEY}"}
    caplog.set_level(logging.INFO)
    secured.post("/v1/ask", json={"question": question}, headers=auth)
    secured.post("/v1/ask", json={"question": question, "stream": True}, headers=auth)
    secured.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": chat}]}, headers=auth)
    secured.post("/v1/ask", json={"question": question, "k": 0}, headers=auth)  # 422
    secured.post("/v1/ask", json={"question": question}, headers={"Authorization": f"Bearer {KEY}x"})  # 401
    secured.post("/v1/ask", content=b'{"question": "QuestionMarker4711', headers=auth)  # broken JSON
    body, headers = _multipart(b"geheim.txt", text.encode())
    secured.post("/v1/documents", content=body, headers=headers)
    secured.get("/v1/documents/geheim.txt", headers=auth)
    body, headers = _multipart(b"kaputt.pdf", text.encode())
    secured.post("/v1/documents", content=body, headers=headers)  # 422
    secured.delete("/v1/documents/geheim.txt", headers=auth)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (KEY, "QuestionMarker4711", "ChatMarker4712", "DocMarker4713", "Geheimchips"):
        assert secret not in logged, f"{secret!r} appears in the log"


def test_a_page_on_an_allowed_origin_can_read_when_to_retry(app_settings) -> None:
    """Retry-After is no CORS-safelisted header: unless exposed, a browser hides it from a cross-origin page."""
    settings = app_settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with TestClient(create_app(settings, build=fake_answerer)) as c:
        wait_ready(c)
        r = c.get("/v1/models", headers={"Origin": "https://app.example"})
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"retry-after", "x-request-id"} <= exposed
