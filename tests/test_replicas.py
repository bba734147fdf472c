"""Replicas on one index folder: each follows the live version (RAG_INDEX_POLL_S), writes stay single-writer.

Two app instances with fake models share the corpus and index folders of `app_settings`, as two
`rag serve` containers share volumes in compose.yaml.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from fakes import A, B, C, FakeGenerator, fake_answerer, index_lock_held_elsewhere, wait_ready
from fastapi.testclient import TestClient

from rag import wiring
from rag.ingest.load import load_documents
from rag.serve.app import create_app

POLL_S = 0.2
TEXT = "Die Firma Zhipu trainierte GLM mit 777 Beschleunigern."
QUESTION = "Womit trainierte Zhipu GLM? 777 Beschleuniger"


@contextmanager
def replicas(settings: Any, count: int = 2, build: Any = fake_answerer) -> Iterator[list[TestClient]]:
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(create_app(settings, build=build))) for _ in range(count)]
        for c in clients:
            wait_ready(c)
        yield clients


def _version(client: TestClient) -> str:
    return str(client.get("/health").json()["index"])


def _wait_for_version(client: TestClient, version: str, within_s: float) -> float:
    started = time.monotonic()
    while _version(client) != version:
        waited = time.monotonic() - started
        assert waited < within_s, f"still on {_version(client)} after {waited:.1f} s, want {version}"
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_upload_through_one_replica_is_answered_by_the_other(app_settings) -> None:
    settings = app_settings.model_copy(update={"index_poll_s": POLL_S})
    with replicas(settings) as (one, two):
        before = _version(two)
        r = one.post("/v1/documents", files={"file": ("zhipu.txt", TEXT.encode(), "text/plain")})
        assert r.status_code == 201, r.text
        written = _version(one)
        assert written != before
        # Within the polling interval, plus the time to load the new version (milliseconds here).
        waited = _wait_for_version(two, written, within_s=POLL_S + 2.0)
        answer = two.post("/v1/ask", json={"question": QUESTION}).json()
        assert "777" in answer["text"] and answer["citations"][0]["doc_id"] == "zhipu.txt"
        assert two.get("/v1/documents/zhipu.txt").json()["text"] == TEXT
        # And back: a delete through the second is seen by the first.
        assert two.delete("/v1/documents/zhipu.txt").status_code == 200
        _wait_for_version(one, _version(two), within_s=POLL_S + 2.0)
        assert one.get("/v1/documents/zhipu.txt").status_code == 404
    print(f"\nsecond replica switched {waited:.2f} s after the upload (poll every {POLL_S} s)")


def test_rag_index_while_serving_is_picked_up(app_settings) -> None:
    """`rag index` (here its wiring call) on the folder a running service reads: no restart."""
    settings = app_settings.model_copy(update={"index_poll_s": POLL_S})
    with replicas(settings, count=1) as (one,):
        (settings.corpus_dir / "zhipu.txt").write_text(TEXT)
        docs, _ = load_documents([settings.corpus_dir])
        report = wiring.index_documents(settings, docs)
        _wait_for_version(one, str(report.version), within_s=POLL_S + 2.0)
        assert "zhipu.txt" in [d["doc_id"] for d in one.get("/v1/documents").json()["documents"]]


def test_polling_off_keeps_the_loaded_version(app_settings) -> None:
    settings = app_settings.model_copy(update={"index_poll_s": 0})
    with replicas(settings, count=1) as (one,):
        before = _version(one)
        (settings.corpus_dir / "zhipu.txt").write_text(TEXT)
        docs, _ = load_documents([settings.corpus_dir])
        wiring.index_documents(settings, docs)
        time.sleep(0.5)
        assert _version(one) == before


def test_the_replica_that_cannot_take_the_lock_answers_409(app_settings) -> None:
    settings = app_settings.model_copy(update={"index_poll_s": POLL_S})
    with replicas(settings, count=1) as (one,), index_lock_held_elsewhere(settings.index_dir):
        before = _version(one)
        r = one.post("/v1/documents", files={"file": ("zhipu.txt", TEXT.encode(), "text/plain")})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["type"] == "IndexLockedError" and "another process" in r.json()["error"]["message"]
        assert r.headers["Retry-After"]
        assert str(settings.index_dir) not in r.text  # the lock file's server path stays in the server's log
        assert one.delete(f"/v1/documents/{A.doc_id}").status_code == 409
        assert _version(one) == before
        # Nothing half-done: no staged upload, the document still there.
        assert sorted(p.name for p in settings.corpus_dir.iterdir()) == sorted(d.doc_id for d in (A, B, C))


class _HeldGenerator(FakeGenerator):
    """Blocks in its first reply until ``release`` is set, so a request holds the model."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def stream(self, messages, settings, *, prefix="", between=None):  # type: ignore[no-untyped-def]
        self.started.set()
        self.release.wait(10)
        yield from super().stream(messages, settings)


def test_the_switch_waits_until_no_answer_runs(app_settings) -> None:
    settings = app_settings.model_copy(update={"index_poll_s": 0.05})
    held = _HeldGenerator()
    with replicas(settings, count=1, build=lambda s: fake_answerer(s, held)) as (one,):
        before = _version(one)
        asking = threading.Thread(target=lambda: one.post("/v1/ask", json={"question": "Wie viele GPUs?"}))
        asking.start()
        assert held.started.wait(5)
        (settings.corpus_dir / "zhipu.txt").write_text(TEXT)
        docs, _ = load_documents([settings.corpus_dir])
        new = str(wiring.index_documents(settings, docs).version)
        time.sleep(0.5)  # ten polling intervals: the new version is loaded, but not switched to mid-answer
        assert _version(one) == before
        held.release.set()
        asking.join(10)
        _wait_for_version(one, new, within_s=2.0)
