"""A document filter with the real embedder over real articles: only that article, and k passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import wiring
from rag.config import Settings
from rag.ingest.load import load_documents
from rag.types import Filter

pytestmark = pytest.mark.real_models

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
DATED, BYLINE, OTHER = "001_632e2609b1775729.txt", "003_4a8c9f61d5cf23d7.txt", "002_a67883e9b2eeb20f.txt"


def test_doc_and_date_filters_with_the_real_embedder(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    embedder = wiring.embedder(settings)  # loaded once for indexing and every search
    docs, _ = load_documents([CORPUS / name for name in (DATED, BYLINE, OTHER)])
    wiring.index_documents(settings, docs, loaded_embedder=embedder)
    retriever = wiring.open_retriever(settings, embedder)
    question = "How many Nvidia chips did DeepSeek use for training?"
    free = retriever.search(question, 5)
    assert {h.chunk.doc_id for h in free} != {BYLINE}  # the filter below changes what comes back
    hits = retriever.search(question, 5, where=Filter(docs=(BYLINE,)))
    assert len(hits) == 5 and {h.chunk.doc_id for h in hits} == {BYLINE}
    assert all(h.dense_rank is not None for h in hits) and {h.chunk.author for h in hits} == {"Silke Mayr"}
    dated = retriever.search(question, 5, where=Filter(since="2025-01-01", until="2025-01-31"))
    assert {h.chunk.doc_id for h in dated} == {DATED} and {h.chunk.published for h in dated} == {"2025-01-28"}
