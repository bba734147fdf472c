"""Facts of an answer sentence (numbers, names) and where the passages state them.

Pure text functions, used by `rag.citations` to check that every claim rests on
a passage it cites and to spot passages that disagree. Precision comes before
recall: a correct sentence must not be flagged, so matching is tolerant
("2.048" == "2,048" == "2048", "5,6 Millionen" also matches a bare "5,6",
"DeepSeek" matches "DeepSeeks") and only tokens that are clearly names count as
names (see `extract_names`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from rag.types import Passage

_SCALES = {
    "tausend": 3, "thousand": 3, "million": 6, "millionen": 6, "millions": 6, "mio": 6, "mn": 6,
    "milliarde": 9, "milliarden": 9, "mrd": 9, "billion": 9, "billions": 9, "bn": 9, "billionen": 12,
}  # fmt: skip
_MONTHS = {
    "januar": 1, "jänner": 1, "january": 1, "jan": 1, "februar": 2, "february": 2, "feb": 2,
    "märz": 3, "march": 3, "april": 4, "apr": 4, "mai": 5, "may": 5, "juni": 6, "june": 6,
    "juli": 7, "july": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "oktober": 10, "october": 10, "oct": 10, "okt": 10, "november": 11, "nov": 11,
    "dezember": 12, "december": 12, "dec": 12, "dez": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?![\d])")
_DATE_DAY_MONTH = re.compile(rf"(?i)(?<!\d)(\d{{1,2}})\.?\s+({_MONTH})\b\.?(?:\s+(\d{{4}}))?")
_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)"
    r"(\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)(?![\d_])"
    r"(?:\s?(" + "|".join(_SCALES) + r")\b\.?)?",
    re.IGNORECASE,
)
_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|bis(?: zu)?|to|und|and|oder|or)\s*", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£]|US\$|USD|EUR)\s?$")
_PERCENT_AFTER = re.compile(r"\s?(?:%|prozent\b|percent\b|per cent\b)", re.IGNORECASE)
_UNIT_WORDS = re.compile(r"[\w\-]+|[$€£%]")
_MONEY = re.compile(r"(?i)(?:us-?)?dollars?$|usd$|euros?$|eur$|yuan$|[$€£]$")
_NOUN_AFTER = re.compile(r"\s([A-ZÄÖÜ][^\W\d_]{3,}(?:-[^\W\d_]+)*)\b")
_CHIPS = re.compile(r"(?i)(?:chips?|gpus?|grafikkarten?|grafikprozessoren|prozessoren|beschleuniger|accelerators?)$")

_TOKEN = re.compile(r"[^\W_](?:[\w\-]*[^\W_])?(?:['’]s)?")
_CODE = re.compile(r"(?<![^\W_])[A-Za-z]+-?\d+(?:[.,]\d+)?[A-Za-z]*")
_CAMEL = re.compile(r"[a-zäöüß][A-ZÄÖÜ]")
_ACRONYM = re.compile(r"[A-ZÄÖÜ0-9\-]+s?")
_NEW_START = re.compile(r"[:.!?\"“„«»*(]")
# "Passage 2", "Quelle 1": the model naming a passage, not a number to check.
_REFERENCE = re.compile(r"(?i)\b(?:passagen?|quellen?|sources?|artikel|articles?|abschnitt)\s+\d{1,2}\b")
_DIGIT = re.compile(r"\d")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# Capitalised words that are not names: units, months, demonyms, titles, function words.
_NOT_NAME_WORDS = """
    millionen milliarden million millions milliarde billion billionen mio mrd dollar dollars us-dollar euro
    prozent percent yuan januar februar märz april mai juni juli august september oktober november dezember
    january february march may june july october december monday tuesday wednesday thursday friday
    saturday sunday i chinese american european western eastern asian australian german british japanese
    korean indian french president minister ceo chief founder co-founder chairman prime secretary mr mrs
    ms dr the a an in on at of for and but or this that these those it its according however also while
    after before during since when where which who what how der die das den dem des ein eine laut im am
    """
_STOPWORD_WORDS = """
    der die das den dem des ein eine einer einen einem eines und oder aber mit für von zu zum zur im in auf
    aus bei nach über unter als wie auch nur noch sich ist sind war hat haben wurde wird werden dass nicht
    the a an of to in on at by for with from and or but is are was were has have had that this it its as
    """
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())
# English exonyms of places a German article names in German.
_EXONYMS = MappingProxyType(
    {"beijing": "peking", "munich": "münchen", "cologne": "köln", "vienna": "wien", "germany": "deutschland",
     "europe": "europa", "russia": "russland", "america": "amerika", "brussels": "brüssel"}
)  # fmt: skip
_STOPWORDS = frozenset(_STOPWORD_WORDS.split())


@dataclass(frozen=True)
class Quantity:
    """A number as written, with every normalised form that counts as the same number.

    ``keys`` hold the scaled value ("5600000"), the bare number ("5.6") and, for
    "2.048"-shaped numbers, the other reading ("2.048"); ``unit`` is "money",
    "chips", "percent" or None; dates have ``value`` 0 and keys like "2025-01-28".
    """

    surface: str
    start: int
    end: int
    value: float
    keys: frozenset[str]
    unit: str | None = None
    scale: int = 0
    unit_end: int = 0
    noun: str | None = None  # the capitalised word right after it ("2.048 Megawattstunden")


@dataclass(frozen=True)
class Name:
    """A name in a claim; it is found in a text if any of ``tokens`` is."""

    surface: str
    tokens: tuple[str, ...]


def _key(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _readings(digits: str) -> list[Decimal]:
    """Readings of a German or English number, most likely first.

    >>> _readings("2.048"), _readings("5,6"), _readings("1.234,5")
    ([Decimal('2048'), Decimal('2.048')], [Decimal('5.6')], [Decimal('1234.5')])
    """
    if "." in digits and "," in digits:
        decimal_sep = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        return [Decimal(digits.replace(thousands, "").replace(decimal_sep, "."))]
    for sep in ".,":
        parts = digits.split(sep)
        if len(parts) > 2 or (len(parts) == 2 and len(parts[1]) == 3 and parts[0] != "0"):
            grouped = Decimal(digits.replace(sep, ""))
            # "2.048" may also be an English decimal; "2.000" is never written for 2.
            plain = len(parts) > 2 or parts[1].endswith("0")
            return [grouped] if plain else [grouped, Decimal(digits.replace(sep, "."))]
    return [Decimal(digits.replace(",", "."))]


def _unit_after(text: str, end: int) -> tuple[str | None, int]:
    """Unit among the next three words after ``end`` (stopping at phrase punctuation), and where it ends.

    >>> _unit_after("2.000 spezialisierten Chips trainiert", 5)
    ('chips', 27)
    >>> _unit_after("16.000, die westliche Konzerne", 6)
    (None, 6)
    """
    window = re.split(r"[,;:!?()\[\]]|\.\s|\s[–—-]\s", text[end : end + 60], maxsplit=1)[0]
    percent = _PERCENT_AFTER.match(window)
    if percent:
        return "percent", end + percent.end()
    for match in list(_UNIT_WORDS.finditer(window))[:3]:
        for unit, pattern in (("money", _MONEY), ("chips", _CHIPS)):
            if pattern.search(match[0]):
                return unit, end + match.end()
    return None, end


def _dates(text: str) -> list[Quantity]:
    """ "28.01.2025" and "28. Januar 2025"; "January 28, 2025" is left to its numbers 28 and 2025."""
    found = []
    numeric = [(m, int(m[1]), int(m[2]), int(m[3]) + 2000 * (len(m[3]) == 2)) for m in _DATE_NUMERIC.finditer(text)]
    named = [(m, int(m[1]), _MONTHS[m[2].lower()], int(m[3] or 0)) for m in _DATE_DAY_MONTH.finditer(text)]
    for match, day, month, year in numeric + named:
        if 1 <= day <= 31 and 1 <= month <= 12:
            keys = {f"--{month:02d}-{day:02d}"} | ({f"{year}-{month:02d}-{day:02d}"} if year else set())
            found.append(Quantity(match[0], match.start(), match.end(), 0.0, frozenset(keys), "date"))
    return found


def extract_quantities(text: str) -> list[Quantity]:
    """Numbers, amounts, percentages and dates in ``text``, in order.

    >>> [sorted(q.keys) for q in extract_quantities("5,6 bis 6 Millionen Dollar")]
    [['5.6', '5600000'], ['6', '6000000']]
    >>> [(q.surface, q.unit) for q in extract_quantities("nur 2.048 GPUs, nicht H800 oder R1")]
    [('2.048', 'chips')]
    >>> sorted(extract_quantities("am 28.01.2025")[0].keys)
    ['--01-28', '2025-01-28']
    """
    dates = _dates(text)
    taken = [(d.start, d.end) for d in dates]
    numbers: list[Quantity] = []
    for match in _NUMBER.finditer(text):
        if any(s <= match.start() < e for s, e in taken):
            continue
        readings = _readings(match[1])
        scale = _SCALES[match[2].lower().rstrip(".")] if match[2] else 0
        unit, unit_end = _unit_after(text, match.end())
        if unit is None and _CURRENCY_BEFORE.search(text[max(0, match.start() - 4) : match.start()]):
            unit = "money"
        keys = frozenset({_key(r) for r in readings} | {_key(r.scaleb(scale)) for r in readings})
        value = float(readings[0].scaleb(scale))
        surface = match[0].rstrip(". ")
        noun = _NOUN_AFTER.match(text, match.end())
        numbers.append(
            Quantity(surface, match.start(), match.end(), value, keys, unit, scale, unit_end, noun and noun[1])
        )
    for i, (first, second) in enumerate(itertools.pairwise(numbers)):
        # "5,6 bis 6 Millionen Dollar": the first number takes the second's scale and unit.
        if not first.scale and first.unit is None and _RANGE_JOIN.fullmatch(text[first.end : second.start]):
            readings = [Decimal(k) for k in first.keys]
            keys = first.keys | {_key(r.scaleb(second.scale)) for r in readings}
            value = first.value * 10**second.scale
            numbers[i] = Quantity(
                first.surface, first.start, first.end, value, keys, second.unit, second.scale, second.unit_end
            )
    return sorted(dates + numbers, key=lambda q: q.start)


def number_keys(text: str) -> frozenset[str]:
    """Every key of every quantity in ``text``, plus the day, month and year of its dates.

    >>> sorted(number_keys("28.01.2025: 2.048 GPUs"))
    ['--01-28', '1', '2.048', '2025', '2025-01-28', '2048', '28']
    """
    keys: set[str] = set()
    for quantity in extract_quantities(text):
        keys |= quantity.keys
        if quantity.unit == "date":
            keys |= {str(int(part)) for key in quantity.keys for part in key.strip("-").split("-")}
    return frozenset(keys)


def _split_words(text: str) -> list[tuple[str, bool]]:
    """Tokens of a claim, each with "may be capitalised only by its position".

    >>> _split_words("Laut Elon Musk: Chips")
    [('Laut', True), ('Elon', False), ('Musk', False), ('Chips', True)]
    """
    words: list[tuple[str, bool]] = []
    previous_end = 0
    for match in _TOKEN.finditer(text):
        gap = text[previous_end : match.start()]
        words.append((match[0], not words or bool(_NEW_START.search(gap))))
        previous_end = match.end()
    return words


def extract_names(claim: str, lang: str) -> list[Name]:
    """Names in one answer sentence, conservatively.

    A name is (a) a code like "H800", "R1", "GPT-4" or a word with an inner
    capital like "DeepSeek", "OpenAI" (anywhere), or (b) a run of capitalised
    words, with units, months, titles and demonyms left out: in German two or
    more must remain ("Elon Musk", "Microsoft-CEO Satya Nadella"), because
    German capitalises every noun and a lone capitalised word is usually a
    noun; in English one is enough ("shares of Nvidia", "President Trump").
    The first word of a sentence (or after a colon or quote) never counts: it
    is capitalised anyway, so "Jensen Huang lobte ..." goes unchecked.

    >>> [n.surface for n in extract_names("Laut Elon Musk nutzte DeepSeek mehr Chips als H800.", "de")]
    ['Elon Musk', 'DeepSeek', 'H800']
    >>> [n.surface for n in extract_names("Die Kosten lagen bei 6 Millionen Dollar.", "de")]
    []
    >>> [n.surface for n in extract_names("Shares of Nvidia fell in January.", "en")]
    ['Nvidia']
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

    for word, initial in _split_words(claim):
        for part in word.split("-"):
            if _CODE.fullmatch(part) or _CAMEL.search(part):
                names.append(Name(part, (part,)))
        # The first word is capitalised anyway ("Andere Artikel nennen ..."): never part of a run.
        if word[0].isupper() and not initial and not _ACRONYM.fullmatch(word) and not _CODE.fullmatch(word):
            run.append(word)
        else:
            close_run()
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
    """
    for token in name.tokens:
        token = _strip_possessive(token)
        candidates = {token, token[:-1]} if token.endswith("s") and len(token) > 4 else {token}
        candidates |= {_EXONYMS[c.lower()] for c in candidates if c.lower() in _EXONYMS}
        for candidate in candidates:
            if _CODE.fullmatch(candidate):
                wanted = candidate.replace("-", "").lower()
                if any(c.replace("-", "").lower() == wanted for c in _CODE.findall(text)):
                    return True
            tail = r"(?!\d)" if candidate[-1].isdigit() else ""
            if re.search(rf"(?<![^\W_]){re.escape(candidate)}{tail}", text, re.IGNORECASE):
                return True
    return False


def stems(text: str) -> frozenset[str]:
    """Content words cut to six letters, a crude stem for German and English inflection.

    >>> sorted(stems("Die chinesischen Konkurrenten und der Chinese"))
    ['chines', 'konkur']
    """
    words = re.findall(r"[^\W\d_]{4,}", text.lower())
    return frozenset(w[:6] for w in words if w not in _STOPWORDS)


@dataclass(frozen=True)
class Source:
    """A passage prepared for matching: its text with its duplicates' texts, and its numbers."""

    number: int
    text: str
    keys: frozenset[str]
    stems: frozenset[str]


def prepare(passages: Sequence[Passage]) -> list[Source]:
    """Sources for ``check_claim``; a passage's near-duplicates count as saying the same."""
    sources = []
    for passage in passages:
        text = "\n".join([passage.text, *(d.text for d in passage.hit.duplicates)])
        sources.append(Source(passage.number, text, number_keys(text), stems(text)))
    return sources


@dataclass(frozen=True)
class ClaimCheck:
    """Outcome for one answer sentence.

    ``added``: passage numbers to cite in addition (repair); ``removed``: cited
    passages that state none of the sentence's facts while others do (repair);
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
    if word in _NOT_NAMES or word in _STOPWORDS or word in _MONTHS or word in _SCALES:
        return frozenset()
    return stems(word)


def check_claim(claim: str, cited: Sequence[int], sources: Sequence[Source], lang: str) -> ClaimCheck:
    """Check that every number and name of ``claim`` (markers removed) is in a cited source.

    Single digits without unit or scale are not checked. Facts found only in
    uncited sources are repaired by citing those (fewest sources that cover
    them, most word overlap first); a cited source that holds none of the facts
    is dropped, as long as some source holds one. A claim without facts and without citation
    gets the source it shares most words with, if that is at least half of its
    words.
    """
    claim = _REFERENCE.sub(" ", _BULLET.sub("", claim))
    # A bare digit ("Platz 1", "in 2 Tagen") is too often a paraphrase to demand it verbatim.
    quantities = [q for q in extract_quantities(claim) if q.unit or q.scale or not re.fullmatch(r"\d", q.surface)]
    names = extract_names(claim, lang)
    facts: list[tuple[str, set[int]]] = []
    for quantity in quantities:
        noun = _counted_noun(quantity, lang)
        facts.append((quantity.surface, {s.number for s in sources if quantity.keys & s.keys and noun <= s.stems}))
    for name in names:
        facts.append((name.surface, {s.number for s in sources if name_in(name, s.text)}))
    claim_stems = stems(claim)
    overlap = {s.number: len(claim_stems & s.stems) for s in sources}
    surfaces = tuple(surface for surface, _ in facts)
    if not facts:
        if cited or not claim_stems:
            return ClaimCheck(surfaces)
        best = max(sources, key=lambda s: (overlap[s.number], -s.number), default=None)
        if best is not None and overlap[best.number] * 2 >= len(claim_stems):
            return ClaimCheck(surfaces, added=(best.number,))
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
