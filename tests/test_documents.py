"""The documents API against a corpus folder a person also keeps by hand: subfolders, files outside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import fake_answerer, wait_ready
from fastapi.testclient import TestClient


@pytest.fixture
def client_with(app_settings: Any, tmp_path: Path) -> Iterator[TestClient]:
    """The app over a corpus with a.txt, b.txt, c.txt, sub/tief.txt, and draussen.txt indexed from outside it."""
    from rag import wiring
    from rag.ingest.load import load_documents
    from rag.serve.app import create_app

    (app_settings.corpus_dir / "sub").mkdir()
    (app_settings.corpus_dir / "sub" / "tief.txt").write_text("Ein Artikel im Unterordner über Chips.")
    (tmp_path / "draussen.txt").write_text("Ein Artikel ausserhalb des Korpus.")
    docs, _ = load_documents([app_settings.corpus_dir, tmp_path / "draussen.txt"])
    wiring.index_documents(app_settings, docs)
    with TestClient(create_app(app_settings, build=fake_answerer)) as c:
        wait_ready(c)
        yield c


def test_deleting_a_document_from_a_subfolder_removes_its_file(client_with: TestClient, app_settings: Any) -> None:
    """Only corpus/<id> was removed: sub/tief.txt stayed, and the next `rag index` brought the document back."""
    assert client_with.delete("/v1/documents/tief.txt").status_code == 200
    assert not (app_settings.corpus_dir / "sub" / "tief.txt").exists()
    from rag.ingest.load import load_documents

    assert "tief.txt" not in {d.doc_id for d in load_documents([app_settings.corpus_dir])[0]}


def test_deleting_a_document_indexed_from_outside_the_corpus_keeps_its_file(
    client_with: TestClient, tmp_path: Path
) -> None:
    assert client_with.delete("/v1/documents/draussen.txt").status_code == 200
    assert "draussen.txt" not in [d["doc_id"] for d in client_with.get("/v1/documents").json()["documents"]]
    assert (tmp_path / "draussen.txt").exists()


def test_a_delete_after_the_chunk_size_changed_removes_one_document(app_settings: Any) -> None:
    """The server serves an index built with other chunker settings; the first upload or delete rebuilt it
    from the request's documents alone: a delete left an empty index."""
    from rag.serve.app import create_app

    changed = app_settings.model_copy(update={"chunk_tokens": app_settings.chunk_tokens - 10})
    with TestClient(create_app(changed, build=fake_answerer)) as c:
        wait_ready(c)
        assert c.delete("/v1/documents/a.txt").status_code == 200
        assert [d["doc_id"] for d in c.get("/v1/documents").json()["documents"]] == ["b.txt", "c.txt"]


def test_an_upload_named_like_a_folder_in_the_corpus_changes_nothing(client: TestClient, app_settings: Any) -> None:
    """The rename over the folder failed after the index swap: a 422, and the index on disk held the document."""
    from rag import wiring

    (app_settings.corpus_dir / "ordner.txt").mkdir()
    before = wiring.open_index(app_settings).version
    r = client.post("/v1/documents", files={"file": ("ordner.txt", b"Ein Artikel. Satz zwei.", "text/plain")})
    assert r.status_code == 422 and "a folder of that name" in r.json()["error"]["message"]
    assert wiring.open_index(app_settings).version == before
    assert not [p for p in app_settings.corpus_dir.iterdir() if p.name.startswith(".upload-")]
