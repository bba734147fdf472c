"""Questions about a part of an article: its headline or opening, or its closing paragraph.

"What does the closing paragraph say must be rethought?" or "Was steht im Fazit des Beitrags?" point at
a place in an article that neither a keyword nor the question's meaning finds: the closing paragraph
shares no word with "closing paragraph". `position_cue` reads such a pointer; `zone` names the chunks at
that end of every article, which retrieval then ranks as one more list in its fusion
(`rag.retrieval.retrieve.Retriever.search`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Literal

import numpy as np

Position = Literal["start", "end"]

_ARTICLE = r"(?:article|report|piece|post|blog|story|text|column)"
_ARTIKEL = r"(?:artikels?|berichts?|beitrags?|blogs?|textes|texts?|posts?|stücks?|kommentars?)"
_PART = r"(?:sentence|paragraph|lines?|section|words)"
_TEIL = r"(?:satz|absatz|abschnitt|zeilen?)"
_START = re.compile(
    r"(?i)\b(?:"
    + "|".join(
        (
            r"(?<!making )(?<!made )(?<!make )headlines?",  # not "R1 made headlines"
            r"(?:the|its|[\w-]+'s) title",
            rf"title of the {_ARTICLE}",
            r"introduc\w*|intro|lede",
            rf"(?:opening|first) {_PART}",
            rf"(?:beginning|start) of (?:the|this|that) {_ARTICLE}",
            r"überschrift\w*|titel|einleitung\w*|einstieg\w*|vorspann\w*|teaser",
            r"schlagzeile\w*(?! (?:mach|gemacht|sorg|geschrieben))",  # not "Schlagzeilen machen"
            rf"erste[nmrs]? {_TEIL}",
            rf"anfang (?:des|der) {_ARTIKEL}",
        )
    )
    + r")\b"
)
_END = re.compile(
    r"(?i)\b(?:"
    + "|".join(
        (
            rf"close of (?:the|this|that) {_ARTICLE}",
            rf"(?:closing|final|last) {_PART}|closing (?:remarks|part)|final thoughts?",
            r"(?:the|its|[\w-]+'s) conclusion|in conclusion|concluding \w+",
            rf"end of (?:the|this|that) {_ARTICLE}",
            r"fazit\w*|schluss(?:fazit|absatz|satz|teil|wort|gedanke\w*|abschnitt|bemerkung\w*)",
            rf"(?:zum|am) schluss|schluss (?:des|der) {_ARTIKEL}",  # not "zu welchem Schluss kommt er"
            rf"letzte[nmrs]? (?:{_TEIL}|worte?n?)",
            rf"ende (?:des|der) {_ARTIKEL}|abschließend",
        )
    )
    + r")\b"
)


def position_cue(question: str) -> Position | None:
    """Which end of an article ``question`` points at, or None.

    >>> position_cue("What does the closing paragraph of the report say?"), position_cue("Was steht im Fazit?")
    ('end', 'end')
    >>> position_cue("According to the headline, what is DeepSeek confronting?"), position_cue("Laut der Einleitung?")
    ('start', 'start')
    >>> position_cue("Who founded it?"), position_cue("Wer schloss den Deal ab?"), position_cue("It made headlines")
    (None, None, None)
    >>> position_cue("Zu welchem Schluss kommt Nadella?"), position_cue("Was steht am Schluss des Artikels?")
    (None, 'end')
    """
    end, start = _END.search(question), _START.search(question)
    if end and start:
        return "end" if end.start() < start.start() else "start"
    return "end" if end else "start" if start else None


def zone(doc_rows: Mapping[str, np.ndarray], where: Position, share: float, at_least: int = 2) -> np.ndarray:
    """The rows of the first (``start``) or last (``end``) ``share`` of each article's chunks, at least
    ``at_least`` of them; ``doc_rows`` holds each article's rows in reading order.

    >>> rows = {"a": np.arange(10), "b": np.arange(10, 13)}
    >>> zone(rows, "end", 0.2).tolist(), zone(rows, "start", 0.3).tolist()
    ([8, 9, 11, 12], [0, 1, 2, 10, 11])
    """
    parts = []
    for chunks in doc_rows.values():
        n = min(len(chunks), max(at_least, math.ceil(share * len(chunks))))
        parts.append(chunks[:n] if where == "start" else chunks[len(chunks) - n :])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
