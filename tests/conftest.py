"""Shared test set-up: no hub access, no writes outside tmp_path, fakes for the models."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports a model library
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["RAG_ENV_FILE"] = ""  # a developer's .env in the working folder must not change the tests

from fakes import A, B, C, FakeEmbedder, fake_answerer, wait_ready
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(autouse=True)
def _rag_logging_restored() -> Iterator[None]:
    """`rag serve` configures the ``rag`` logger (handler, level, no propagation); no test leaves that behind."""
    logger = logging.getLogger("rag")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    logger.handlers[:] = handlers
    logger.propagate, logger.level = propagate, level


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing every folder into tmp_path (models stay where `rag models fetch` put them)."""
    from rag.config import Settings

    for key in list(os.environ):
        if key.startswith("RAG_") and key not in ("RAG_MODELS_DIR", "RAG_CACHE_DIR", "RAG_ENV_FILE"):
            monkeypatch.delenv(key)
    return Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")


@pytest.fixture
def app_settings(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Index of the fake corpus built through the real wiring path (fake embedder, word-count tokenizer)."""
    from rag import wiring
    from rag.ingest.load import load_documents

    monkeypatch.setattr(wiring, "token_counter", lambda s: lambda t: len(t.split()))
    monkeypatch.setattr(wiring, "embedder", lambda s: FakeEmbedder(768))
    settings = settings.model_copy(update={"corpus_dir": tmp_path / "corpus", "min_dense_score": 0.1})
    settings.corpus_dir.mkdir()
    for d in (A, B, C):
        (settings.corpus_dir / d.doc_id).write_text(d.text)
    docs, _ = load_documents([settings.corpus_dir])
    wiring.index_documents(settings, docs)
    return settings


@pytest.fixture
def client(app_settings):
    """The HTTP app with fake models, loaded and ready."""
    from rag.serve.app import create_app

    with TestClient(create_app(app_settings, build=fake_answerer)) as c:
        wait_ready(c)
        yield c
