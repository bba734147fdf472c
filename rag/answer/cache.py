"""An in-memory answer cache for repeated questions.

Keyed by everything that decides an answer: the index version (so adding or removing a document
invalidates every entry at once), the answer model, the question with its whitespace normalised,
the conversation so far, the language override, the answer settings and the document filter. Least recently used
entries go first; ``max_entries=0`` turns the cache off.

A hit is the stored answer as this request got it: ``cached``, and no tokens processed (its token
counts and decode speed are zero), so usage reported to a client is what this request cost.

A sampled answer (temperature above 0) has no key: asking again must be able to give another answer
(a chat page's "regenerate"), so it is neither served from the cache nor stored in it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import replace

from rag.answer.pipeline import AnswerSettings
from rag.types import Answer

Key = tuple[Hashable, ...]


def cache_key(
    *,
    index_version: str,
    model_id: str,
    question: str,
    history: Sequence[dict[str, str]],
    lang: str | None,
    settings: AnswerSettings,
    where: Hashable = None,
) -> Key | None:
    """The key of an answer, or None when it is sampled (temperature above 0) and so must not be cached."""
    if settings.generation.temperature > 0:
        return None
    turns = tuple((t.get("role", ""), " ".join(t.get("content", "").split())) for t in history)
    return (index_version, model_id, " ".join(question.split()), turns, lang, settings, where)


class AnswerCache:
    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key | None) -> Answer | None:
        """The stored answer as a hit (``cached``, no tokens processed), or None (always for no key)."""
        if key is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return replace(found, cached=True, prompt_tokens=0, completion_tokens=0, tokens_per_second=0.0)

    def put(self, key: Key | None, value: Answer) -> None:
        """Store ``value`` under ``key``; without a key (a sampled answer) nothing is stored."""
        if key is None or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
