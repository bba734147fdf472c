"""Shared test set-up: no hub access, no writes outside tmp_path, fakes for the models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing every folder into tmp_path (models stay where `rag models fetch` put them)."""
    from rag.config import Settings

    for key in list(os.environ):
        if key.startswith("RAG_") and key not in ("RAG_MODELS_DIR", "RAG_CACHE_DIR"):
            monkeypatch.delenv(key)
    return Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")
