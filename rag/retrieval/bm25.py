"""The keyword side of hybrid search: BM25 (bm25s) over stemmed, number-aware tokens.

Numbers and names are what dense embeddings blur ("2.048" vs "2.000", "H800"),
so the tokenizer keeps them whole and writes them one way:

    >>> tokenize("Nur 2.048 H800-GPUs für 5,6 Mio. Dollar", "de")
    ['2048', 'h800', 'gpus', '5_6', 'mio', 'dollar']

Documents are stemmed in their own language (Snowball via PyStemmer); a query is
stemmed with the German and the English stemmer both, because an English
question over German articles shares mostly names and numbers with them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.language import LANGUAGES
from rag.lexicon import STOPWORDS

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:\d+[^\W\d_]*)*|[^\W\d_]*\d+[^\W\d_]+", re.UNICODE)
_THOUSANDS = re.compile(r"^\d{1,3}(?:[.,]\d{3})+$")

_STEMMER_NAMES = {"de": "german", "en": "english"}


def normalise_number(token: str) -> str:
    """One spelling per number: thousands separators dropped, decimal mark written ``_``.

    >>> [normalise_number(t) for t in ("2.048", "2,048", "2048", "5,6", "5.6", "28.01.2025")]
    ['2048', '2048', '2048', '5_6', '5_6', '28_01_2025']
    """
    if _THOUSANDS.match(token):
        return re.sub(r"[.,]", "", token)
    return re.sub(r"[.,]", "_", token)


def _raw_tokens(text: str) -> list[str]:
    out = []
    for match in _TOKEN.finditer(text.lower()):
        tok = match.group(0)
        if tok[0].isdigit() and not any(c.isalpha() for c in tok):
            out.append(normalise_number(tok))
        elif tok not in STOPWORDS and len(tok) > 1:  # function words would bloat query expansion
            out.append(tok)
    return out


@lru_cache(maxsize=4)
def _stemmer(lang: str) -> Any:
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer(_STEMMER_NAMES.get(lang, "german"))


def _stem(token: str, lang: str) -> str:
    if any(c.isdigit() for c in token):
        return token  # "h800", "r1", numbers: never stemmed
    return str(_stemmer(lang).stemWord(token))


def tokenize(text: str, lang: str) -> list[str]:
    """Tokens of a document, stemmed in its language."""
    return [_stem(t, lang) for t in _raw_tokens(text)]


def tokenize_query(text: str) -> list[str]:
    """Query tokens stemmed both ways (German and English), duplicates removed, order kept."""
    seen: dict[str, None] = {}
    for tok in _raw_tokens(text):
        for lang in LANGUAGES:
            seen.setdefault(_stem(tok, lang), None)
    return list(seen)


class KeywordIndex:
    """BM25 over chunk token lists; row ``i`` is chunk ``i`` of the index.

    An index whose every document was removed has no rows: bm25s cannot build or load an empty
    corpus, so there is no bm25s object then (an empty folder on disk) and search finds nothing.
    """

    def __init__(self, retriever: object | None, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, token_lists: Sequence[list[str]]) -> KeywordIndex:
        if not token_lists:
            return cls(None, 0)
        import bm25s

        retriever = bm25s.BM25()
        # An empty document would give bm25s an empty row; a placeholder token keeps rows aligned.
        retriever.index([toks or ["\x00"] for toks in token_lists], show_progress=False)
        return cls(retriever, len(token_lists))

    def save(self, folder: Path) -> None:
        if self._retriever is None:
            folder.mkdir()
            return
        self._retriever.save(str(folder))  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path, size: int) -> KeywordIndex:
        if size == 0:
            return cls(None, 0)
        import bm25s

        return cls(bm25s.BM25.load(str(folder)), size)

    def search(self, query_tokens: list[str], k: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top ``k`` ``(row, score)`` pairs with a positive score, best first; only ``rows`` when given."""
        if self._retriever is None:
            return []
        vocab = self._retriever.vocab_dict  # type: ignore[attr-defined]
        known = [t for t in query_tokens if t in vocab]
        if not known:
            return []
        scores = np.asarray(self._retriever.get_scores(known))  # type: ignore[attr-defined]
        if rows is not None:
            allowed = np.zeros(self.size, dtype=bool)
            allowed[rows] = True
            scores = np.where(allowed, scores, 0.0)
        top = np.argsort(-scores, kind="stable")[: min(k, self.size)]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
