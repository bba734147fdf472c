"""Topics that name what no article names: a summary of "Tesla Aktie" over articles that never name Tesla
would lend the nearest passages' facts to it ("Die Tesla Aktien stürzten ab ... [1]").

Answers have the answerability check for this; for topics the model says Yes to every one
(docs/experiments.md), so the decision is made on the topic's words: `unnamed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.ground.claims import Name, extract_names, name_in
from rag.language import COMMON_ZIPF, GERMAN_MARGIN, GERMAN_MIN_ZIPF


@dataclass(frozen=True)
class Articles:
    """The text of every indexed article, as `unnamed` looks names up in it."""

    text: str
    lowered: str

    @classmethod
    def of(cls, texts: Iterable[str]) -> Articles:
        text = "\n\n".join(texts)
        return cls(text, text.lower())

    def name(self, word: str) -> bool:
        """Whether an article names ``word``: as a word of its own, inflected ("Nvidias", "Nvidia-Chips"), or by its
        German name ("Beijing": "Peking"), not inside another word ("Intel" is not in "Intelligenz")."""
        if not name_in(Name(word, (word,)), self.text):
            return False
        if word.lower() not in self.lowered:
            return True  # by another spelling: its German name ("Beijing": "Peking") or a code's ("GPT4": "GPT-4")
        inflected = rf"(?<![^\W_]){re.escape(word)}(?:s|es|n|en|['’]s)?(?![^\W_])"
        return re.search(inflected, self.text, re.IGNORECASE) is not None


# A capitalised English word counts as an everyday English word, not a name, when wordfreq finds it this much
# more often in English than in German ("University" 5.4 / 4.1, "Fund" 4.8 / 3.9); names are written alike in
# both and about as frequent in each ("Tesla" 3.8 / 3.9, "Jeff" 4.5 / 3.9, "Gemini" 3.4 / 2.8).
ENGLISH_MARGIN = 0.8
# A topic's first word is capitalised anyway: there an English count noun, one whose plural is this common
# ("Stock market crash": "stocks" 4.3), is a common word too; a name's plural is rare ("teslas" 1.9).
PLURAL_ZIPF = 3.5
_CODED = re.compile(r"\d|[a-zäöüß][A-ZÄÖÜ]")  # "R2", "H20", "iPhone", "SpaceX": names in any language
_PLURAL_ES = re.compile(r"(?:s|x|z|ch|sh)$")
_PLURAL_IES = re.compile(r"[^aeiou]y$")


def unnamed(topic: str, articles: Articles) -> list[str]:
    """The names in ``topic`` that none of ``articles`` names: a summary of such a topic is the refusal.

    A name is a code or a word with an inner capital ("R2", "SpaceX"), or a capitalised word that is not an
    everyday German or English word. German capitalises every noun, so capitals alone do not tell: wordfreq
    does. A word far more frequent in German than in English is a German word ("Aktie", "Politik"; also
    "Scholz"), one far more frequent in English than in German an English word ("University", "Controls"), and
    one wordfreq hardly knows a German compound when it is two known words ("Exportkontrollen"); names are
    about as frequent in both ("Tesla", "Berlin", "Samsung"). Titles, demonyms, units and function words are
    never names (`extract_names`), nor are lowercase words: an English topic written in English ("export
    controls", "Nvidia share price") names only what it capitalises, and the articles, being German, may say
    the rest in German. A name counts as named when an article has it as a word of its own, inflected ("Nvidias",
    "Nvidia-Chips") or by its German name ("Beijing": "Peking"), not inside another word ("Intel" is not in
    "Intelligenz").

    >>> articles = Articles.of(["Nvidias Aktie fiel. Die US-Sanktionen trafen Peking. Künstliche Intelligenz."])
    >>> [unnamed(t, articles) for t in ("Tesla Aktie", "Nvidia share price", "Beijing's view", "Intel", "Politik")]
    [['Tesla'], [], [], ['Intel'], []]
    """
    found: list[str] = []
    for position, word in enumerate(topic.split()):
        for name in extract_names("x " + word.lstrip("\"'„“”‚‘’«»(["), "en"):  # "x": never the first word
            for token in name.tokens:
                token = re.sub(r"['’]s$", "", token)
                common = not _CODED.search(token) and _common_word(token, first=position == 0)
                if not common and not articles.name(token) and token not in found:
                    found.append(token)
    return found


def _common_word(word: str, *, first: bool) -> bool:
    from wordfreq import zipf_frequency

    de, en = zipf_frequency(word, "de"), zipf_frequency(word, "en")
    if (de >= GERMAN_MIN_ZIPF and de >= en + GERMAN_MARGIN) or (en >= COMMON_ZIPF and en >= de + ENGLISH_MARGIN):
        return True
    if first and zipf_frequency(_plural(word), "en") >= PLURAL_ZIPF:
        return True
    return de < GERMAN_MIN_ZIPF and en < COMMON_ZIPF and _compound(word)


def _plural(word: str) -> str:
    word = word.lower()
    if _PLURAL_ES.search(word):
        return word + "es"
    return word[:-1] + "ies" if _PLURAL_IES.search(word) else word + "s"


def _compound(word: str) -> bool:
    """A German compound wordfreq does not list: a known word, a linking "s" allowed, then a German word
    ("Export|kontrollen", "Chip|industrie", "Regierung|s|sprecher")."""
    from wordfreq import zipf_frequency

    low = word.lower()
    for cut in range(3, len(low) - 3):
        head, tail = low[:cut], low[cut:]
        if zipf_frequency(tail, "de") < COMMON_ZIPF:
            continue
        heads = (head, head[:-1]) if head.endswith("s") else (head,)
        if any(max(zipf_frequency(h, "de"), zipf_frequency(h, "en")) >= COMMON_ZIPF for h in heads):
            return True
    return False
