"""Word lists more than one stage needs, written once: month names and function words (stopwords).

German and English, lower case. Stages compile their own patterns from them:
`rag.ground.quantities` reads dates, `rag.ingest.chunk` and `rag.ground.citations` keep
"28. Januar" in one sentence, `rag.ingest.clean` spots date lines, `rag.retrieval.bm25`
and `rag.ground.claims` skip function words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

# Full month names, German (with Austrian "Jänner") and English, by month number.
MONTH_NAMES: Mapping[str, int] = MappingProxyType(
    {
        "januar": 1, "jänner": 1, "january": 1, "februar": 2, "february": 2, "märz": 3, "march": 3,
        "april": 4, "mai": 5, "may": 5, "juni": 6, "june": 6, "juli": 7, "july": 7, "august": 8,
        "september": 9, "oktober": 10, "october": 10, "november": 11, "dezember": 12, "december": 12,
    }
)  # fmt: skip
# Abbreviations as articles write them ("27. Jan.", "Sept. 2024").
MONTH_ABBREVIATIONS: Mapping[str, int] = MappingProxyType(
    {
        "jan": 1, "feb": 2, "mär": 3, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
        "okt": 10, "oct": 10, "nov": 11, "dez": 12, "dec": 12,
    }
)  # fmt: skip
MONTHS: Mapping[str, int] = MappingProxyType({**MONTH_NAMES, **MONTH_ABBREVIATIONS})


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first so "sept" wins over "sep".

    >>> alternation(frozenset({"sep", "sept"}))
    'sept|sep'
    """
    return "|".join(sorted(words, key=lambda w: (-len(w), w)))


# Function words of German and English: they say nothing about what a text is about.
_STOPWORD_WORDS = """
    der die das den dem des ein eine einer einen einem eines und oder aber auch als an auf aus bei bis
    durch für gegen hat haben hatte ich ihr im in ist sind mit nach nicht noch nur ob sich sie so über um
    unter von vor war was wer wie wo wurde wird werden zu zum zur es er wir man sein seine dass daß da
    dann denn
    the a an and or but of to in on at by for with from is are was were be been has have had it its this
    that these those what which who whom how why when where did do does as not no than then
    """
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_WORDS.split())
