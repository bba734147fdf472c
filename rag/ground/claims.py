"""Facts of an answer sentence (numbers, names) and where the passages state them.

Pure text functions, used by `rag.ground.citations` to check that every claim rests on
a passage it cites and to spot passages that disagree. Precision comes before
recall: a correct sentence must not be flagged, so matching is tolerant
("2.048" == "2,048" == "2048", "5,6 Millionen" also matches a bare "5,6",
"DeepSeek" matches "DeepSeeks") and only tokens that are clearly names count as
names (see `extract_names`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rag.ground.quantities import SCALES, Quantity, extract_quantities, keys_of, number_keys
from rag.lexicon import MONTH_NAMES, MONTHS, STOPWORDS
from rag.types import Passage

_TOKEN = re.compile(r"[^\W_](?:[\w\-]*[^\W_])?(?:['’]s)?")
_CODE = re.compile(r"(?<![^\W_])[A-Za-z]+-?\d+(?:[.,]\d+)?[A-Za-z]*")
_CAMEL = re.compile(r"[a-zäöüß][A-ZÄÖÜ]")
_ACRONYM = re.compile(r"[A-ZÄÖÜ0-9\-]+s?")
_NEW_START = re.compile(r"[:.!?\"“„«»*(]")
# Punctuation between two capitalised words ends an English name: "Liang, Musk and Altman" names no "Liang Musk".
_APART = re.compile(r"[,;)\]/–—]")
# A sentence about an article or its author: only then may a name come from a passage's header, which names the
# article's author ("DeepSeek-V3 was developed by Silke Mayr" took the byline as a developer). Whole words, so
# "post-training", "authorities", "Verfassung", "Beitritt" and "reported" do not count.
_ABOUT_ARTICLE = re.compile(
    r"(?i)(?<![\w-])(?:artikel\w*|autor(?:in|innen|en|s)?|beitr(?:ag|ags|äge|ägen)|blog\w*|bericht(?:e|s)?|"
    r"schreib(?:t|en|er|erin)?|schrieb(?:en)?|geschrieben|verfass(?:t|te|ten|en|er|ers|erin)|journalist\w*|"
    r"kommentar\w*|reporter(?:in|s)?|articles?|authors?|authored|writ(?:e|es|er|ers|ten|ing)|wrote|byline|"
    r"report|posts?|piece|story)(?![\w-])"
)
# A question that asks who wrote: its short answer ("Von Silke Mayr.") may name the author from the header too.
_ASKS_AUTHOR = re.compile(
    r"(?i)(?<![\w-])(?:autor(?:in|en)?|verfass(?:t|te|er|erin)|geschrieben|schrieb|authors?|authored|wrote|"
    r"written|writer|byline)(?![\w-])"
)
# "Passage 2", "Quelle 1": the model naming a passage, not a number to check.
_REFERENCE = re.compile(r"(?i)\b(?:passagen?|quellen?|sources?|artikel|articles?|abschnitt)\s+\d{1,2}\b")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# Capitalised words that are not names: units, months, weekdays, demonyms, titles, function words.
_NOT_NAME_WORDS = """
    millionen milliarden million millions milliarde billion billionen mio mrd dollar dollars us-dollar euro
    prozent percent yuan monday tuesday wednesday thursday friday saturday sunday i chinese american
    european western eastern asian australian german british japanese korean indian french president
    minister ceo chief founder co-founder chairman prime secretary mr mrs ms dr according however also
    while after before during since laut am
    """
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split()) | MONTH_NAMES.keys() | STOPWORDS
# English exonyms of places a German article names in German ("the United States": "USA" or "Staaten").
_EXONYMS = MappingProxyType(
    {"beijing": ("peking",), "munich": ("münchen",), "cologne": ("köln",), "vienna": ("wien",),
     "germany": ("deutschland",), "europe": ("europa",), "russia": ("russland",), "america": ("amerika",),
     "brussels": ("brüssel",), "states": ("staaten", "usa"), "australia": ("australien",), "italy": ("italien",),
     "india": ("indien",), "france": ("frankreich",), "britain": ("großbritannien",), "spain": ("spanien",),
     "austria": ("österreich",), "switzerland": ("schweiz",), "netherlands": ("niederlande",)}
)  # fmt: skip


@dataclass(frozen=True)
class Name:
    """A name in a claim; it is found in a text if any of ``tokens`` is."""

    surface: str
    tokens: tuple[str, ...]


def _split_words(text: str) -> list[tuple[str, bool, bool]]:
    """Tokens of a claim, each with "may be capitalised only by its position" and "set apart from the word
    before by punctuation".

    >>> _split_words("Laut Musk: Chips, Geld")
    [('Laut', True, False), ('Musk', False, False), ('Chips', True, False), ('Geld', False, True)]
    """
    words: list[tuple[str, bool, bool]] = []
    previous_end = 0
    for match in _TOKEN.finditer(text):
        gap = text[previous_end : match.start()]
        words.append((match[0], not words or bool(_NEW_START.search(gap)), bool(words) and bool(_APART.search(gap))))
        previous_end = match.end()
    return words


def _coded(word: str) -> bool:
    """A code ("R1", "H800") or a word with an inner capital ("DeepSeek"): a name in any language and position."""
    return bool(_CODE.fullmatch(word) or _CAMEL.search(word))


# German adjective endings: "Andere", "Chinesischen", "Neuer", "Großes", "Deutschem".
_INFLECTED = re.compile(r"(?i).*(?:e|en|er|es|em)")


def _may_start_name(word: str) -> bool:
    """Whether a German sentence's first word may be a name's first word: not a function word or other
    word no name is made of, nor ending like an inflected adjective."""
    return word.lower() not in _NOT_NAMES and not _INFLECTED.fullmatch(word)


def extract_names(claim: str, lang: str) -> list[Name]:
    """Names in one answer sentence, conservatively.

    A name is (a) a code like "H800", "R1", "GPT-4" or a word with an inner
    capital like "DeepSeek", "OpenAI" (anywhere), or (b) a run of capitalised
    words, with units, months, titles and demonyms left out: in German two or
    more must remain ("Elon Musk", "Microsoft-CEO Satya Nadella"), because
    German capitalises every noun and a lone capitalised word is usually a
    noun; in English one is enough ("shares of Nvidia", "President Trump").
    The first word of a sentence (or after a colon or quote) is capitalised
    anyway: alone it never counts. In German it joins a run that goes on right
    after it ("Liang Wenfeng gründete ..."), unless it ends like an inflected
    adjective ("Andere Artikel", "Chinesische Firmen"; "Jensen Huang lobte ..."
    goes unchecked for that).

    >>> [n.surface for n in extract_names("Laut Elon Musk nutzte DeepSeek mehr Chips als H800.", "de")]
    ['Elon Musk', 'DeepSeek', 'H800']
    >>> [n.surface for n in extract_names("Die Kosten lagen bei 6 Millionen Dollar.", "de")]
    []
    >>> [n.surface for n in extract_names("Shares of Nvidia fell in January.", "en")]
    ['Nvidia']
    >>> [n.surface for n in extract_names("Wie bewertet Elon Musk DeepSeek?", "de")]
    ['Elon Musk', 'DeepSeek']
    >>> [n.surface for n in extract_names("Liang Wenfeng gründete DeepSeek. Elon Musk lobte R1.", "de")]
    ['Liang Wenfeng', 'DeepSeek', 'Elon Musk', 'R1']
    >>> [n.surface for n in extract_names("Nvidia verlor viel. Die Aktie fiel. Andere Artikel nennen 2.000.", "de")]
    []
    >>> [n.surface for n in extract_names("According to Liang, Musk and Sam Altman agreed.", "en")]
    ['Liang', 'Musk', 'Sam Altman']
    """
    names: list[Name] = []
    run: list[str] = []

    def close_run() -> None:
        kept = [w for w in run if w.lower() not in _NOT_NAMES]
        if len(kept) >= (1 if lang == "en" else 2):
            parts = tuple(p for w in kept for p in w.split("-") if p.lower() not in _NOT_NAMES and len(p) > 1)
            if parts:
                names.append(Name(" ".join(run), parts))
        run.clear()

    first = ""  # a German sentence's capitalised first word, until the next word shows whether a run goes on
    for word, initial, apart in _split_words(claim):
        if apart and lang == "en":  # German keeps the run: a lone German capitalised word is no name, and a
            close_run()  # list of surnames ("Musk, Altman und Huang") would go unchecked
            first = ""
        coded = False
        for part in word.split("-"):
            if _coded(part):
                names.append(Name(part, (part,)))
                coded = True
        # The first word is capitalised anyway ("Andere Artikel nennen ..."): alone never a name. A code or a word
        # with an inner capital is a name of its own: "Wie bewertet Elon Musk DeepSeek?" names Elon Musk and DeepSeek.
        capitalised = word[0].isupper() and not _ACRONYM.fullmatch(word) and not coded
        if capitalised and not initial:
            if first:  # set only right after a sentence's first word, when no run is open
                run.append(first)
            run.append(word)
        else:
            close_run()
        first = word if capitalised and initial and lang == "de" and _may_start_name(word) else ""
    close_run()
    return sorted(names, key=lambda n: claim.find(n.surface))


def _strip_possessive(token: str) -> str:
    return re.sub(r"['’]s$", "", token)


def name_in(name: Name, text: str) -> bool:
    """Whether any token of ``name`` starts a word of ``text`` (case-insensitive).

    Codes must end where the word's digits end ("R1" is not in "R10"); other
    tokens may go on, for inflection and compounds ("Nvidia" in "Nvidias").

    >>> name_in(Name("DeepSeeks", ("DeepSeeks",)), "Deepseek hat R1 gebaut")
    True
    >>> name_in(Name("R1", ("R1",)), "R10 und H800")
    False
    >>> name_in(Name("GPT4", ("GPT4",)), "wie GPT-4 oder Claude")
    True

    English names of places match their German names ("the United States": "USA" or "Staaten"):

    >>> [name_in(Name(n, tuple(n.split())), "Die USA und Australiens Minister") for n in ("United States", "Australia")]
    [True, True]
    >>> name_in(Name("United Kingdom", ("United", "Kingdom")), "Die USA und Australiens Minister")
    False
    """
    lowered = text.lower()
    for token in name.tokens:
        token = _strip_possessive(token)
        candidates = {token, token[:-1]} if token.endswith("s") and len(token) > 4 else {token}
        candidates |= {german for c in candidates for german in _EXONYMS.get(c.lower(), ())}
        for candidate in candidates:
            if _CODE.fullmatch(candidate):
                wanted = candidate.replace("-", "").lower()
                digits = re.sub(r"\D", "", wanted)
                if digits in lowered and any(c.replace("-", "").lower() == wanted for c in _CODE.findall(text)):
                    return True
            if candidate.lower() not in lowered:  # the search below needs the literal: skip it (long articles)
                continue
            tail = r"(?!\d)" if candidate[-1].isdigit() else ""
            if re.search(rf"(?<![^\W_]){re.escape(candidate)}{tail}", text, re.IGNORECASE):
                return True
    return False


def is_given(name: Name, question: str) -> bool:
    """Whether the question states ``name`` itself: every token of it, not only one.

    A name the question gives needs no passage ("Ed Husic" asked about); one that merely shares a word
    with it ("Liberal Party" to "Which political party ...?") is a claim to check.

    >>> is_given(Name("Ed Husic", ("Ed", "Husic")), "Which party does Ed Husic belong to?")
    True
    >>> is_given(Name("Liberal Party", ("Liberal", "Party")), "Which political party does Ed Husic belong to?")
    False
    """
    return all(name_in(Name(token, (token,)), question) for token in name.tokens)


# A question that locates its answer by the article ("the article that also mentions Hugging Face", "Trump's
# 'wake-up call' article", "im Interview") names where to look, not what the answer is about.
_ARTICLE = re.compile(
    r"(?i)\b(?:articles?|artikels?|beitr[aä]g\w*|bericht\w*|reports?|pieces?|blog\w*|texts?|textes|headlines?"
    r"|überschrift\w*|meldung\w*|interviews?|kommentar\w*|comments?|stor(?:y|ies)|nachricht\w*|news|zeitung\w*"
    r"|posts?|newsletter)\b"
)
# Question words, to tell a question of several parts ("Wer gründete DeepSeek, und was sagte Musk?").
_ASKING = {
    "de": re.compile(
        r"(?i)\b(?:wer|wen|wem|wessen|was|wann|wie(?:\s*viel\w*)?|wieso|weshalb|warum|welche[nmrs]?|wo|wodurch|womit"
        r"|wozu|wofür|woher|wohin|worüber|worauf|woran|worin|wovon|wobei|inwiefern)\b"
    ),
    "en": re.compile(r"(?i)\b(?:who|whom|whose|what|when|how|which|why|where)\b"),
}
_AND = re.compile(r"(?i)\b(?:und|sowie|and|as well as)\b")
# A name in more than this share of the indexed articles is what the collection is about ("DeepSeek"), not
# what a question singles out.
COMMON_SHARE = 0.5


@dataclass(frozen=True)
class Topic:
    """The names a question singles out, and for each the passages about it (`question_topic`): a number or
    name of the answer counts as stated only by one of those passages ("Which university is Marina Zhang
    affiliated with?" is not answered by a passage about Liang Wenfeng that names Zhejiang University).

    In a question of several parts ("Who founded DeepSeek, and what did Nvidia lose?") a sentence is held only
    to the names it repeats itself: its part may be about another name.
    """

    names: tuple[Name, ...] = ()
    passages: tuple[frozenset[int], ...] = ()  # per name, the numbers of the passages about it
    several_parts: bool = False

    def about(self, claim: str) -> frozenset[int] | None:
        """The passages that may state the facts of ``claim`` (None: any passage).

        >>> topic = Topic((Name("Marina Zhang", ("Marina", "Zhang")),), (frozenset({2}),))
        >>> topic.about("Marina Zhang studied there."), topic.about("Liang studied.")
        (frozenset({2}), frozenset({2}))
        >>> Topic(topic.names, topic.passages, several_parts=True).about("Liang studied.") is None
        True
        """
        said = [i for i, n in enumerate(self.names) if name_in(n, claim)]
        if not said and not self.several_parts:
            said = list(range(len(self.names)))
        return frozenset().union(*(self.passages[i] for i in said)) if said else None


class NameShares:
    """The share of one collection's articles that name a name (1.0 when there are none), each name's share
    remembered: a question's names are looked up in every article once, not once a question (keep one per
    index version).

    >>> shares = NameShares(["Nvidias Aktie", "DeepSeek", "Nvidia fiel", "R1"])
    >>> shares(Name("Nvidia", ("Nvidia",))), shares(Name("Nvidia", ("Nvidia",)))
    (0.5, 0.5)
    """

    def __init__(self, articles: Sequence[str]) -> None:
        self._articles = tuple(articles)
        self._known: dict[tuple[str, ...], float] = {}

    def __call__(self, name: Name) -> float:
        if name.tokens not in self._known:
            found = sum(name_in(name, t) for t in self._articles)
            self._known[name.tokens] = found / len(self._articles) if self._articles else 1.0
        return self._known[name.tokens]


def several_parts(question: str, lang: str) -> bool:
    """Whether ``question`` asks two things: two question words, or none and an "und" ("Nenne ... und ...").

    >>> several_parts("Wieviele Chips nutzte DeepSeek und was sagte Musk?", "de")
    True
    >>> several_parts("Which university was Marina Zhang affiliated with?", "en")
    False
    >>> several_parts("Nenne den Gründer und den Sitz.", "de"), several_parts("Wie reagierten A und B?", "de")
    (True, False)
    """
    asked = len(_ASKING.get(lang, _ASKING["en"]).findall(question))
    return asked > 1 or (asked == 0 and _AND.search(question) is not None)


def question_topic(question: str, lang: str, contexts: Mapping[int, str], share: Callable[[Name], float]) -> Topic:
    """The names ``question`` singles out and the passages about each (`Topic`). ``contexts``: each passage's
    number and the text that says what it is about (its article: a later passage may say "er" for a name);
    ``share``: a name's share of the indexed articles (`NameShares`).

    Not a name most of the articles name, none when the question names an article to look in, and none
    that no passage is about (the condition could not hold; whether the question is answerable is the
    check's decision).

    >>> articles = ["Marina Zhang sagt ... Zhejiang", "Liang Wenfeng ... DeepSeek", "DeepSeek ..."]
    >>> topic = question_topic("Which university is Marina Zhang affiliated with?", "en",
    ...                        {1: "Liang Wenfeng, Zhejiang", 2: "Marina Zhang sagt"}, NameShares(articles))
    >>> [n.surface for n in topic.names], topic.passages
    (['Marina Zhang'], (frozenset({2}),))
    >>> question_topic("What does DeepSeek's article say?", "en", {1: "DeepSeek"}, NameShares(articles)).names
    ()
    """
    if _ARTICLE.search(question):
        return Topic()
    names, passages = [], []
    for name in extract_names(question, lang):
        about = frozenset(n for n, text in contexts.items() if name_in(name, text))
        if about and share(name) <= COMMON_SHARE:
            names.append(name)
            passages.append(about)
    return Topic(tuple(names), tuple(passages), several_parts(question, lang))


def unknown_names(question: str, lang: str, share: Callable[[Name], float]) -> list[Name]:
    """The names in ``question`` no indexed article names, of the kinds no translation changes: codes ("R2",
    "H20") and words with an inner capital ("TikTok"). The articles cannot state what they never name, so
    "When does DeepSeek plan to release R2?" is the refusal. Other names are left to the check: an English
    question may name in English what the articles name in German ("Australia's", "Californian").

    >>> shares = NameShares(["DeepSeek R1 nutzte H800-Chips", "R1 und TikTok"])
    >>> [n.surface for n in unknown_names("When does DeepSeek plan to release R2?", "en", shares)]
    ['R2']
    >>> unknown_names("How many H800s did DeepSeek use for r1 in Australia?", "en", shares)
    []
    """
    return [
        name
        for name in extract_names(question, lang)
        if len(name.tokens) == 1 and _coded(name.surface) and share(name) == 0
    ]


def stems(text: str) -> frozenset[str]:
    """Content words cut to six letters, a crude stem for German and English inflection.

    >>> sorted(stems("Die chinesischen Konkurrenten und der Chinese"))
    ['chines', 'konkur']
    """
    words = re.findall(r"[^\W\d_]{4,}", text.lower())
    return frozenset(w[:6] for w in words if w not in STOPWORDS)


# What a number may count, as `extract_quantities` recognises it; a number the passages give as one of these is
# no amount of another ("2,048 parameters" is not backed by "2.048 GPUs").
KINDS = ("money", "chips", "percent")
# The English word after a number, when it says what the number counts ("2,048 parameters").
_COUNTED_EN = re.compile(
    r"\s([a-z][a-z\-]{2,}s)\b(?=\s*(?:$|[.,;:!?)\[]|(?:per|of|in|for|and|or|to|with|on|at|by|from|each)\b))"
)
_NEUTRAL_EN = frozenset({"units", "times", "points", "years", "days", "months", "weeks", "hours"})


@dataclass(frozen=True)
class Source:
    """A passage prepared for matching: its text with its duplicates' texts, and its numbers."""

    number: int
    text: str
    keys: frozenset[str]
    stems: frozenset[str]
    # What each number key counts where the passage gives it: "money", "chips", "percent" or None (unknown).
    kinds: Mapping[str, frozenset[str | None]] = field(default_factory=dict)
    # ``text`` without the article's date and author shown above the passage; None when it shows neither.
    body: str | None = None

    def names(self, name: Name, claim: str, question: str = "") -> bool:
        """Whether the passage states ``name`` for ``claim``: its author only for a sentence about the article
        or an answer to a question that asks who wrote it ("Wer hat den Artikel geschrieben?" -> "Von Silke
        Mayr.")."""
        if self.body is None or _ABOUT_ARTICLE.search(claim) or _ASKS_AUTHOR.search(question):
            return name_in(name, self.text)
        return name_in(name, self.body)

    def counts(self, keys: frozenset[str], kind: str | None) -> bool:
        """Whether the passage gives one of ``keys`` as an amount of ``kind`` (None: of anything; "other": of
        something that is no money, chip or percentage)."""
        found = [k for key in keys & self.keys for k in self.kinds.get(key, {None})]
        if kind is None:
            return bool(found)
        return any(k is None or k == kind for k in found)


def _stated_kind(quantity: Quantity) -> str | None:
    """The kind a number is given as: its unit when the unit's word follows it directly (or a currency sign
    comes before it), else None. "18 Länder Chips" and "5,6 Millionen auf Nvidia-Chips" count no chips.

    >>> text = "5,6 Millionen auf Nvidia-Chips, 2.048 Nvidia-Chips, $6 million, 17 Prozent"
    >>> [_stated_kind(q) for q in extract_quantities(text)]
    [None, 'chips', 'money', 'percent']
    """
    return quantity.unit if quantity.unit in KINDS and quantity.unit_next else None


def _kinds(quantities: Sequence[Quantity]) -> Mapping[str, frozenset[str | None]]:
    kinds: dict[str, set[str | None]] = {}
    for quantity in quantities:
        kind = _stated_kind(quantity)
        for key in quantity.keys:
            kinds.setdefault(key, set()).add(kind)
    return MappingProxyType({k: frozenset(v) for k, v in kinds.items()})


def source_text(passage: Passage) -> str:
    """What a passage states: its header (date, author: shown with the passage, so a sentence may state it),
    its text and its near-duplicates' texts (they say the same)."""
    return "\n".join([passage.hit.chunk.header(), _body(passage)])


def _body(passage: Passage) -> str:
    """A passage's text and its near-duplicates' texts, without the header `source_text` puts above them."""
    return "\n".join([passage.text, *(d.text for d in passage.hit.duplicates)])


def prepare(passages: Sequence[Passage]) -> list[Source]:
    """Sources for ``check_claim``, one per passage (`source_text`)."""
    sources = []
    for passage in passages:
        text = source_text(passage)
        quantities = extract_quantities(text)
        body = _body(passage) if passage.hit.chunk.header() else None
        sources.append(Source(passage.number, text, keys_of(quantities), stems(text), _kinds(quantities), body))
    return sources


@dataclass(frozen=True)
class ClaimCheck:
    """Outcome for one answer sentence.

    ``added``: passage numbers to cite in addition (repair); ``removed``: cited
    passages that state none of the sentence's facts while others do, or, for a
    sentence without facts, that share far fewer of its words than ``added`` (repair);
    ``missing``: facts that no offered passage states; ``supported`` is False
    exactly when some fact is missing.
    """

    facts: tuple[str, ...]
    added: tuple[int, ...] = ()
    missing: tuple[str, ...] = ()
    removed: tuple[int, ...] = ()

    @property
    def supported(self) -> bool:
        return not self.missing


def _counted_noun(quantity: Quantity, lang: str) -> frozenset[str]:
    """The stem of what a German claim's number counts, if a source must say it too (else empty).

    "2.048 Megawattstunden" is not backed by "2.048 GPUs": the number matches, the thing counted
    does not. Only for German claims (the articles' language: an English noun would not be
    found), and not for money, chips and percentages, whose words vary ("Grafikkarten" for
    "GPUs") and whose unit classes are recognised already.
    """
    if lang != "de" or quantity.unit or not quantity.noun:
        return frozenset()
    word = quantity.noun.lower()
    if word in _NOT_NAMES or word in MONTHS or word in SCALES:
        return frozenset()
    return stems(word)


def _claimed_kind(quantity: Quantity, claim: str, lang: str) -> str | None:
    """What a claim's number counts, as far as passages can contradict it: its recognised unit ("money",
    "chips", "percent", `_stated_kind`), "other" for an English word ending in -s (a plural noun, as a rule)
    that is none of those and ends its phrase ("2,048 parameters [1]", "2,000 parameters per token"), else None
    (a verb after the number says nothing; German nouns are `_counted_noun`'s).

    >>> claim = "R1 has 2,048 parameters, 2,048 GPUs and 6 million characterises it."
    >>> [_claimed_kind(q, claim, "en") for q in extract_quantities(claim)]
    ['other', 'chips', None]
    """
    kind = _stated_kind(quantity)
    if kind is not None or quantity.unit in KINDS:
        return kind
    if lang != "en" or quantity.unit == "date":
        return None
    word = _COUNTED_EN.match(claim, quantity.end)
    if word is None or word[1] in STOPWORDS or word[1] in MONTHS or word[1] in SCALES or word[1] in _NEUTRAL_EN:
        return None
    return "other"


# A cited passage that shares few of a fact-free sentence's words gives way to one that shares at least
# this many and twice as many (a sentence copied from passage 1 but marked [2]).
_REPOINT_MIN_WORDS = 3
_REPOINT_RATIO = 2


def check_claim(
    claim: str,
    cited: Sequence[int],
    sources: Sequence[Source],
    lang: str,
    *,
    given: str = "",
    about: Collection[int] | None = None,
) -> ClaimCheck:
    """Check that every number and name of ``claim`` (markers removed) is in a cited source.

    Single digits without unit or scale are not checked, nor are facts the question itself states
    (``given``: "... laut dem Artikel, der Hugging Face nennt" repeats the question). Facts found only in
    uncited sources are repaired by citing those (fewest sources that cover
    them, most word overlap first); a cited source that holds none of the facts
    is dropped, as long as some source holds one. With ``about`` (the numbers of the sources that name what
    the question singles out, `Topic`) a fact counts only where one of those states it. A claim without
    facts and without citation gets the source it shares most words with, if that is at least half of its
    words; a claim without facts whose cited sources share few of its words is moved to the source that
    shares most, when that one shares at least three and twice as many as the best cited one.
    """
    claim = _REFERENCE.sub(" ", _BULLET.sub("", claim))
    # A bare digit ("Platz 1", "in 2 Tagen") is too often a paraphrase to demand it verbatim.
    quantities = [q for q in extract_quantities(claim) if q.unit or q.scale or not re.fullmatch(r"\d", q.surface)]
    names = extract_names(claim, lang)
    if given:
        given_keys = number_keys(given)
        quantities = [q for q in quantities if not q.keys & given_keys]
        names = [n for n in names if not is_given(n, given)]
    facts: list[tuple[str, set[int]]] = []
    backing = [s for s in sources if about is None or s.number in about]
    for quantity in quantities:
        noun = _counted_noun(quantity, lang)
        stated = quantity.stated_keys
        kind = _claimed_kind(quantity, claim, lang)
        facts.append((quantity.surface, {s.number for s in backing if s.counts(stated, kind) and noun <= s.stems}))
    for name in names:
        facts.append((name.surface, {s.number for s in backing if s.names(name, claim, given)}))
    claim_stems = stems(claim)
    overlap = {s.number: len(claim_stems & s.stems) for s in sources}
    surfaces = tuple(surface for surface, _ in facts)
    if not facts:
        best = max(sources, key=lambda s: (overlap[s.number], -s.number), default=None)
        if best is None or not claim_stems:
            return ClaimCheck(surfaces)
        if not cited:
            if overlap[best.number] * 2 >= len(claim_stems):
                return ClaimCheck(surfaces, added=(best.number,))
            return ClaimCheck(surfaces)
        held = max((overlap.get(n, 0) for n in cited), default=0)
        if best.number not in cited and overlap[best.number] >= max(_REPOINT_MIN_WORDS, _REPOINT_RATIO * held):
            return ClaimCheck(surfaces, added=(best.number,), removed=tuple(cited))
        return ClaimCheck(surfaces)
    cited_set = set(cited)
    missing = tuple(surface for surface, where in facts if not where)
    uncovered = [where for _, where in facts if where and not where & cited_set]
    added: list[int] = []
    while uncovered:
        candidates = {n for where in uncovered for n in where}
        best_number = max(candidates, key=lambda n: (sum(n in w for w in uncovered), overlap[n], -n))
        added.append(best_number)
        uncovered = [where for where in uncovered if best_number not in where]
    found_somewhere = any(where for _, where in facts)
    removed = tuple(n for n in cited if found_somewhere and not any(n in where for _, where in facts))
    return ClaimCheck(surfaces, tuple(sorted(added)), missing, removed)
