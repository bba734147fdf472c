"""Numbers, amounts, percentages and dates in text, each with every form that counts as the same.

Pure text functions for `rag.ground.claims` (is a number of an answer in a passage?) and
`rag.ground.conflicts` (do passages give different numbers for the same thing?). Tolerant by design:
"2.048" == "2,048" == "2048", and "5,6 Millionen" also matches a bare "5,6".
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from rag.lexicon import MONTHS, STOPWORDS, alternation

SCALES = {
    "tausend": 3, "thousand": 3, "million": 6, "millionen": 6, "millions": 6, "mio": 6, "mn": 6,
    "milliarde": 9, "milliarden": 9, "mrd": 9, "billion": 9, "billions": 9, "bn": 9, "billionen": 12,
}  # fmt: skip
_MONTH = alternation(MONTHS)
_DATE_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?![\d])")
_DATE_DAY_MONTH = re.compile(rf"(?i)(?<!\d)(\d{{1,2}})\.?\s+({_MONTH})\b\.?(?:\s+(\d{{4}}))?")
_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)"
    r"(\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)(?![\d_])"
    r"(?:\s?(" + "|".join(SCALES) + r")\b\.?)?",
    re.IGNORECASE,
)
# A number written the German way: thousands with dots, maybe a decimal comma ("2.048", "1.234,5"), or a decimal
# comma alone ("5,6"); not part of a date or of a longer number.
_GERMAN_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+,\d+)(?![\d_]|[.,]\d)")


_QUOTED = re.compile(r'„[^“”"]*[“”"]|“[^”]*”|"[^"]*"|»[^«]*«|«[^»]*»')


def english_numbers(text: str, german_sources: Iterable[str]) -> str:
    """``text`` with each number it copied from a German source written the English way.

    An English answer that copies "2.048 GPUs" from a German article tells an English reader "about two"; a
    number is rewritten only when it stands, written so, in one of ``german_sources`` (in German "16,000"
    is no thousands figure, and an English "2.048" is left alone when no German source has it). A quotation
    keeps the article's words as they are ('says "nur 2.048 GPUs"').

    >>> english_numbers("R1 used 2.048 GPUs for 5,6 million dollars, 16,000 in the US.", ["2.048 GPUs, 5,6 Mio."])
    'R1 used 2,048 GPUs for 5.6 million dollars, 16,000 in the US.'
    >>> english_numbers("On 28.01.2025 it lost 1.234,5 points.", ["am 28.01.2025 ... 1.234,5 Punkte"])
    'On 28.01.2025 it lost 1,234.5 points.'
    >>> english_numbers('It used 2.048 GPUs ("nur 2.048 GPUs").', ["nur 2.048 GPUs"])
    'It used 2,048 GPUs ("nur 2.048 GPUs").'
    """
    sources = list(german_sources)
    quoted = [m.span() for m in _QUOTED.finditer(text)]

    def stated(number: str) -> bool:
        pattern = re.compile(rf"(?<![\w.,]){re.escape(number)}(?![\d_]|[.,]\d)")
        return any(pattern.search(source) for source in sources)

    def english(match: re.Match[str]) -> str:
        number = match.group(1)
        if not stated(number) or any(a <= match.start() < b for a, b in quoted):
            return number
        return number.replace(".", "\x00").replace(",", ".").replace("\x00", ",")

    return _GERMAN_NUMBER.sub(english, text)


_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|bis(?: zu)?|to|und|and|oder|or)\s*", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(?:[$€£]|US\$|USD|EUR)\s?$")
_PERCENT_AFTER = re.compile(r"\s?(?:%|prozent\b|percent\b|per cent\b)", re.IGNORECASE)
_UNIT_WORDS = re.compile(r"[\w\-]+|[$€£%]")
_MONEY = re.compile(r"(?i)(?:us-?)?dollars?$|usd$|euros?$|eur$|yuan$|bucks$|cents?$|[$€£]$")
_NOUN_AFTER = re.compile(r"\s([A-ZÄÖÜ][^\W\d_]{3,}(?:-[^\W\d_]+)*)\b")
_CHIPS = re.compile(
    r"(?i)(?:chips?|gpus?|grafikkarten?|grafikprozessoren|prozessoren|processors?|cards?|beschleuniger|accelerators?"
    r"|semiconductors?|halbleiter\w*)$"
)

# A question that asks for an amount ("Wie viele ...", "How much ...") is answered only by a sentence that
# states one: a number (not a date, a year or a number the question gives), a number or scale word, a
# percentage, or a vague amount ("mehrere", "tens of"). "Wie hoch" is left out: it asks for levels too.
_HOW_MANY_WORDS = r"wie\s*viel(?:e[nrs]?)?|how many|how much"
_HOW_OFTEN_WORDS = r"wie\s+oft|wie\s+häufig|how\s+often"
_ASKS_AMOUNT = re.compile(
    rf"(?i)\b(?:{_HOW_MANY_WORDS}|{_HOW_OFTEN_WORDS}|what percentage)\b"
    # "Welchen Zollsatz ...?", "Welche Summe ...?", "What figure ...?", "At what valuation ...?"
    r"|\b(?:welche[nmrs]?|in welcher|what|which)\s+(?:[\w-]+\s+)?(?:\w*(?:satz|sätze|rate|quote|anteil|summe|betrag"
    r"|beträge|zahl|höhe)|rate|share|percentage|proportion|amount|sum|figure|price|valuation|budget)\b"
)
_DE_DIGIT = "zwei|drei|vier|fünf|sechs|sieben|acht|neun"
_DE_NUMBER = (
    rf"(?:(?:ein|{_DE_DIGIT})und)?(?:zwanzig|dreißig|vierzig|fünfzig|sechzig|siebzig|achtzig|neunzig)"
    rf"|(?:ein|{_DE_DIGIT}|zehn|elf|zwölf|zwanzig)?(?:hundert|tausend)"
    rf"|(?:drei|vier|fünf|sech|sieb|acht|neun)zehn|{_DE_DIGIT}|zehn|elf|zwölf"
)
_EN_NUMBER = (
    "two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    "eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|dozens?|tens|"
    "twice|half|double[ds]?|triple[ds]?|several|few|numerous|couple"
)
_DE_VAGUE = "mehrer|einig|wenig|zahlreich|dutzend|hälft|halb|doppelt|dreifach|drittel|viertel"
_AMOUNT_WORD = re.compile(
    rf"(?i)\b(?:(?:{_DE_NUMBER}|{_DE_VAGUE})(?:e[nmrs]?)?(?:mal)?|{_EN_NUMBER}|zwei-?|drei-?)"
    rf"(?:stellig\w*|fach\w*)?\b|\b(?:million|milliard|billion|mio\b|mrd\b|bn\b|prozent|percent)|%"
    r"|\b(?:verdoppel|verdreifach|halbiert)"
)
# "Wie oft ...?" is also answered by a frequency ("täglich", "mehrmals", "once a week"), no other amount question.
_ASKS_OFTEN = re.compile(rf"(?i)\b(?:{_HOW_OFTEN_WORDS})\b")
_FREQUENCY_WORD = re.compile(
    r"(?i)\b(?:täglich|wöchentlich|monatlich|jährlich|stündlich|mehrmals|daily|weekly|monthly|yearly|annually"
    r"|hourly|once)\b"
)


# A question that asks when ("Wann ...?", "In what year ...?"; not "What happened when ...?") is answered only by a
# sentence that places something in time: a date, a year, a month or weekday, a span ("drei Wochen"), a season, or
# a word that orders it ("seit", "nach", "before"). Lenient on purpose: it turns away only sentences with no time.
_ASKS_TIME = re.compile(
    r"(?i)^\W*(?:(?:und|and)\s+)?(?:(?:seit|bis|ab)\s+)?(?:wann|when)\b"
    r"|\b(?:in (?:what|which) (?:year|month)|in welchem (?:jahr|monat)|an welchem (?:tag|datum)"
    r"|on (?:what|which) (?:date|day)|what date|which day)\b"
)
_TIME_WORD = re.compile(
    rf"(?i)\b(?:(?:19|20)\d\d|{_MONTH}"
    r"|\w*(?:tag|tage|tagen|woche|wochen|monat|monate|monaten|monats|jahr|jahre|jahren|jahres|quartal|quartals)"
    # German compounds of a period and a point in it: "Jahresende", "Wochenbeginn", "Jahrtausendwende".
    r"|\w*(?:jahres|jahrtausend|jahrhundert|monats|wochen|quartals)(?:anfang|anfangs|beginn|beginns|ende|endes|mitte"
    r"|wechsel|wechsels|wende|hälfte)"
    r"|(?:mon|tues|wednes|thurs|fri|satur|sun)day|days?|weeks?|months?|years?|quarters?"
    r"|heute|gestern|morgen|today|yesterday|tomorrow|frühjahr|frühling|sommer|herbst|winter|spring|summer|autumn"
    r"|anfang|ende|mitte|beginning|end|early|late|bald|soon|kürzlich|jüngst|recently|zuvor|damals|derzeit"
    r"|currently|now|jetzt|bisher|seit|since|vor|nach|nachdem|bevor|after|before|während|during|bis|until)\b"
)


def asks_for_time(question: str) -> bool:
    """Whether ``question`` asks when.

    >>> asks_for_time("Wann wurde DeepSeek gegründet?"), asks_for_time("In what year was it founded?")
    (True, True)
    >>> asks_for_time("What did Nvidia lose when R1 came out?"), asks_for_time("Wer gründete DeepSeek?")
    (False, False)
    """
    return _ASKS_TIME.search(question) is not None


def states_time(text: str, question: str = "") -> bool:
    """Whether ``text`` (a claim, its citation markers removed) places something in time (``question`` is
    not used: the signature is `states_amount`'s).

    >>> states_time("DeepSeek wurde 2023 gegründet."), states_time("am Montag"), states_time("seit dem Start")
    (True, True, True)
    >>> states_time("R2 comes in the next Schritt."), states_time("The article was published on.")
    (False, False)
    >>> states_time("Die Aktie fiel zu Wochenbeginn."), states_time("bis zum Jahresende"), states_time("eine Wende")
    (True, True, False)
    """
    return bool(_dates(text)) or _TIME_WORD.search(text) is not None


def asks_for_amount(question: str) -> bool:
    """Whether ``question`` asks how many or how much.

    >>> asks_for_amount("Wie viele GPUs nutzte DeepSeek?"), asks_for_amount("Mit wie vielen Chips?")
    (True, True)
    >>> asks_for_amount("How much did R1 cost?"), asks_for_amount("Wer gründete DeepSeek?")
    (True, False)
    >>> asks_for_amount("Welchen Zollsatz sieht sie vor?"), asks_for_amount("What figure does it give?")
    (True, True)
    >>> asks_for_amount("Welche Firma baute R1?"), asks_for_amount("Which number one app did it replace?")
    (False, False)
    >>> asks_for_amount("Wie oft wurde die App geladen?"), asks_for_amount("How often is it updated?")
    (True, True)
    """
    return _ASKS_AMOUNT.search(question) is not None


def could_answer(question: str, texts: Iterable[str]) -> bool:
    """Whether one of ``texts`` (the passages given to the model) could state what ``question`` asks for when
    it asks for an amount (`states_amount`) or a time (`states_time`); True for any other question. When none
    does, every answer would be a claim no passage backs: the question is refused before generating.

    >>> q = "Wie viele Mitarbeiter hat DeepSeek?"
    >>> could_answer(q, ["DeepSeek wurde 2023 gegründet.", "Nvidia verlor 600 Milliarden Dollar."])
    False
    >>> could_answer(q, ["DeepSeek beschäftigt rund 200 Mitarbeiter."]), could_answer("Wer gründete es?", [])
    (True, True)
    """
    if asks_for_amount(question):
        return any(states_amount(text, question) for text in texts)
    if asks_for_time(question):
        return any(states_time(text, question) for text in texts)
    return True


# "Wie viele Tokens ...?", "Mit wie vielen Milliarden Dollar ...?", "How many GPUs ...?": the words after it say
# what the amount counts and at what scale; an amount of something else does not answer it (`asked_amount`).
_HOW_MANY = re.compile(rf"(?i)\b(?:{_HOW_MANY_WORDS})\s+")
_MONEY_WORD = re.compile(
    r"(?i)^(?:geld|kapital|umsatz|umsätze|gewinne?|kosten|investition(?:en)?|budget|\w*wert|verluste?|ausgaben"
    r"|money|capital|cash|funding|revenues?|sales|profits?|costs?|investments?|value|valuation|spending)$"
)
_UNIT_SPELLINGS = {
    **dict.fromkeys(("chips", "gpus", "grafikkarten", "prozessoren", "processors", "halbleiter"), "chips"),
    **dict.fromkeys(("dollar", "dollars", "euro", "euros", "yuan"), "money"),
    **dict.fromkeys(("prozent", "percent"), "percent"),
}
_MONEY_COMPOUND = re.compile(r"(?i)betr[aä]g|summe|invest|dollar|euro|kosten|umsatz|wert|budget")


def _word_at(text: str, pos: int) -> str:
    """The whole word around ``pos``: "Milliardenbeträgen" for the position of its "Milliard".

    >>> _word_at("weit unter den Milliardenbeträgen, die", 15)
    'Milliardenbeträgen'
    """
    before = re.search(r"[\w-]*$", text[:pos])
    after = re.match(r"[\w-]*", text[pos:])
    return (before[0] if before else "") + (after[0] if after else "")


def asked_amount(question: str) -> tuple[str | None, int]:
    """What a how-many question counts ("money", "chips", "percent", "other" for another noun, None when it
    does not say) and the scale it asks in (9 for "Milliarden"; 0 when none).

    >>> asked_amount("Mit wie vielen Milliarden Dollar wird DeepSeek bewertet?"), asked_amount("How many GPUs?")
    (('money', 9), ('chips', 0))
    >>> asked_amount("Mit wie vielen Billionen Tokens wurde R1 trainiert?"), asked_amount("How much did it cost?")
    (('other', 12), (None, 0))
    >>> asked_amount("Wie viel Prozent verlor Nvidia?"), asked_amount("Wie viele Mitarbeiter hat DeepSeek?")
    (('percent', 0), ('other', 0))
    >>> asked_amount("how many chps did deepseek use"), asked_amount("How many parameters does R1 have?")
    (('chips', 0), ('other', 0))
    >>> asked_amount("Wie viel Umsatz erzielte Nvidia?"), asked_amount("Wie viel Energie verbrauchte es?")
    (('money', 0), ('other', 0))
    """
    match = _HOW_MANY.search(question)
    if match is None:
        return None, 0
    words = re.findall(r"[\w$€%-]+", question[match.end() : match.end() + 60])[:3]
    scale = SCALES.get(words[0].lower().rstrip("."), 0) if words else 0
    unit, _, _ = _unit_after(question, match.end() - 1)
    noun = words[1 if scale else 0] if len(words) > (1 if scale else 0) else ""
    if unit is None and _MONEY_WORD.match(noun):
        unit = "money"
    if unit is None and noun:  # "how many chps": a misspelt unit word is that unit
        close = difflib.get_close_matches(noun.lower(), _UNIT_SPELLINGS, n=1, cutoff=0.75)
        unit = _UNIT_SPELLINGS[close[0]] if close else None
    if unit is None and noun and noun.lower() not in STOPWORDS:
        asked = match[0].lower()
        german_noun = noun[:1].isupper() and not asked.startswith("how")
        if german_noun or asked.startswith("how many") or noun.lower() in ("time", "zeit"):
            unit = "other"
    return unit, scale


def states_amount(text: str, question: str = "") -> bool:
    """Whether ``text`` (a claim, its citation markers removed) states an amount, however vaguely; a
    date, a year, a model name ("R1") or a number ``question`` gives does not count, nor does an amount of
    something other than the question counts, or at a smaller scale than it asks in (`asked_amount`).

    >>> states_amount("2.048 GPUs"), states_amount("tens of billions of dollars"), states_amount("mehreren Chips")
    (True, True, True)
    >>> states_amount("zweihundert"), states_amount("Hunderten Servern"), states_amount("zweistellige Beträge")
    (True, True, True)
    >>> states_amount("Die Effizienz weckt Bewunderung."), states_amount("2023 von Liang Wenfeng gegründet.")
    (False, False)
    >>> states_amount("Satya Nadella nannte R1 beeindruckend."), states_amount("Die Macht der Nacht in Leipzig")
    (False, False)
    >>> states_amount("Es waren 2.000 Chips.", question="laut dem Artikel, der 2.000 Chips nennt?")
    False
    >>> tokens, worth = "Mit wie vielen Billionen Tokens?", "Mit wie vielen Milliarden Dollar wird es bewertet?"
    >>> states_amount("mit 6 Millionen Dollar", tokens), states_amount("mit 5,6 Millionen Dollar", worth)
    (False, False)
    >>> states_amount("mit fast 600 Milliarden Dollar", worth), states_amount("mit 14,8 Billionen Tokens", tokens)
    (True, True)
    >>> often = "Wie oft aktualisiert DeepSeek das Modell?"
    >>> states_amount("Es wird täglich aktualisiert.", often), states_amount("Google investiert jährlich.", "Wie viel?")
    (True, False)
    >>> users = "Wie viele Nutzer hat die App?"
    >>> states_amount("Die App hat Millionen Nutzer.", users), states_amount("unter den Milliardenbeträgen", tokens)
    (True, False)
    """
    kind, scale = asked_amount(question)
    constrained = kind is not None or scale
    if constrained:
        # Amounts of another kind, or at a smaller scale, are taken out with their scale and unit words.
        for quantity in reversed(extract_quantities(text)):
            other = quantity.unit is not None and quantity.unit != "date" and quantity.unit != kind
            smaller = scale and (quantity.scale or quantity.unit) and quantity.value < 10**scale
            if other or smaller:
                text = text[: quantity.start] + " " + text[max(quantity.end, quantity.unit_end) :]
    vague = list(_AMOUNT_WORD.finditer(text))
    if constrained and kind != "money":  # "Milliardenbeträge" is money, no count of tokens; "Millionen Nutzer" is
        vague = [m for m in vague if not _MONEY_COMPOUND.search(_word_at(text, m.start()))]
    if vague or (_ASKS_OFTEN.search(question) and _FREQUENCY_WORD.search(text)):
        return True
    given = number_keys(question)
    for quantity in extract_quantities(text):
        year = re.fullmatch(r"(?:19|20)\d\d", quantity.surface) and not (quantity.unit or quantity.scale)
        if quantity.unit != "date" and not year and not quantity.keys & given:
            return True
    return False


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
    # The unit's word follows the number directly ("2.048 GPUs", "17 %") or a currency sign precedes it ("$6"):
    # "5,6 Millionen auf Nvidia-Chips" gives no chips.
    unit_next: bool = False

    @property
    def stated_keys(self) -> frozenset[str]:
        """The keys a text must share to state this number: with a scale word only the scaled values, so
        "600 Millionen" is not stated by "600 Milliarden"; without one, every reading ("5,6" is in
        "5,6 Millionen").

        >>> [sorted(q.stated_keys) for q in extract_quantities("600 Millionen Dollar, 5,6")]
        [['600000000'], ['5.6']]
        """
        if not self.scale:
            return self.keys
        return frozenset(k for k in self.keys if Decimal(k) >= 10**self.scale)


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


def _unit_after(text: str, end: int) -> tuple[str | None, int, bool]:
    """Unit among the next three words after ``end`` (stopping at phrase punctuation), where it ends, and
    whether its word comes right after ``end`` (only whitespace or lower-case words that are no stop words
    between: "2.000 spezialisierten Chips", not "5,6 Millionen auf Nvidia-Chips").

    >>> _unit_after("2.000 spezialisierten Chips trainiert", 5), _unit_after("2.000 Chips", 5)
    (('chips', 27, True), ('chips', 11, True))
    >>> _unit_after(" auf Nvidia-Chips", 0)[2], _unit_after(" Länder Chips", 0)[2], _unit_after(" more GPUs", 0)[2]
    (False, False, True)
    >>> _unit_after("16.000, die westliche Konzerne", 6)
    (None, 6, False)
    """
    window = re.split(r"[,;:!?()\[\]]|\.\s|\s[–—-]\s", text[end : end + 60], maxsplit=1)[0]
    percent = _PERCENT_AFTER.match(window)
    if percent:
        return "percent", end + percent.end(), True
    for match in list(_UNIT_WORDS.finditer(window))[:3]:
        for unit, pattern in (("money", _MONEY), ("chips", _CHIPS)):
            if pattern.search(match[0]):
                return unit, end + match.end(), _only_modifiers(window[: match.start()])
    return None, end, False


def _only_modifiers(between: str) -> bool:
    """Whether the words between a number and its unit only qualify the unit: none, or lower-case words that
    are no stop words (adjectives: "spezialisierten", "specialized")."""
    return all(re.fullmatch(r"[a-zäöüß][\w-]*", w) and w not in STOPWORDS for w in between.split())


def _dates(text: str) -> list[Quantity]:
    """ "28.01.2025" and "28. Januar 2025"; "January 28, 2025" is left to its numbers 28 and 2025."""
    found = []
    numeric = [(m, int(m[1]), int(m[2]), int(m[3]) + 2000 * (len(m[3]) == 2)) for m in _DATE_NUMERIC.finditer(text)]
    named = [(m, int(m[1]), MONTHS[m[2].lower()], int(m[3] or 0)) for m in _DATE_DAY_MONTH.finditer(text)]
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
        scale = SCALES[match[2].lower().rstrip(".")] if match[2] else 0
        unit, unit_end, unit_next = _unit_after(text, match.end())
        if unit is None and _CURRENCY_BEFORE.search(text[max(0, match.start() - 4) : match.start()]):
            unit, unit_next = "money", True
        keys = frozenset({_key(r) for r in readings} | {_key(r.scaleb(scale)) for r in readings})
        value = float(readings[0].scaleb(scale))
        surface = match[0].rstrip(". ")
        noun = _NOUN_AFTER.match(text, match.end())
        numbers.append(
            Quantity(
                surface, match.start(), match.end(), value, keys, unit, scale, unit_end, noun and noun[1], unit_next
            )
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
    return keys_of(extract_quantities(text))


def keys_of(quantities: Iterable[Quantity]) -> frozenset[str]:
    """`number_keys` of quantities already extracted."""
    keys: set[str] = set()
    for quantity in quantities:
        keys |= quantity.keys
        if quantity.unit == "date":
            keys |= {str(int(part)) for key in quantity.keys for part in key.strip("-").split("-")}
    return frozenset(keys)
