"""Which language a question is in, and the fixed refusal sentences.

The service answers in the question's language, German or English, so all we
need is a two-way decision on short, often sloppy input: "Nvidia Verlust",
"how mny GPUs did deepseek use", "Und die Chips?". Three steps, first that
decides wins:

1. Words that exist in only one of the two languages (function words,
   question words, the domain's vocabulary) vote. Cheap, and decisive for
   any question phrased as a sentence.
2. Otherwise py3langid (a character n-gram model shipped inside its wheel,
   restricted to de/en) decides if it is at least 70% sure. Product names
   and codes ("DeepSeek", "H800") are removed first: they are not language.
3. Otherwise the default, German: the corpus is German news, so a question
   like "H800 Chips?" is most likely from a German reader, and a German
   answer can quote the articles verbatim.

``tests/test_language.py`` holds the questions used to choose this and the
accuracy measured for each library tried.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

LANGUAGES = ("de", "en")  # the languages questions are answered in
DEFAULT_LANGUAGE = "de"

# The one sentence the answer model writes when the articles hold no answer (read-only).
REFUSAL: Mapping[str, str] = MappingProxyType(
    {
        "de": "Dazu enthalten die Artikel keine Angabe.",
        "en": "The articles do not say.",
    }
)


# The answer to a question asked in neither German nor English (`asked_in_another_language`): in English, the
# language a reader of a third one most likely reads, and in German, the articles' own.
ASK_AGAIN = (
    "I answer questions in German or English only; please ask again in one of them. "
    "Ich beantworte nur Fragen auf Deutsch oder Englisch."
)
OTHER_LANGUAGE_MIN_P = 0.5  # py3langid's probability of the third language; none of 310 tuning and held-out questions


def asked_in_another_language(question: str) -> str | None:
    """The language of a question asked in neither German nor English, else None.

    The answer model, told to answer in English, echoed such a question into a garbled answer ("DeepSeek
    a-t-il utilisées pour entraîner R1 2,048 GPUs [1]."). Only a question of three words or more, with at
    most one German- or English-only word, that py3langid (all its languages) puts in a third language with
    probability `OTHER_LANGUAGE_MIN_P`, and whose longer words are mostly not common German or English ones:
    keyword questions ("meta llama", "deepseek app datenschutz") stay ours.

    >>> asked_in_another_language("Combien de puces DeepSeek a-t-il utilisées pour entraîner R1 ?")
    'fr'
    >>> asked_in_another_language("Wie viele Parameter hat R1?"), asked_in_another_language("meta llama")
    (None, None)
    """
    german, english = word_votes(question)
    words = [w.lower() for w in _LETTER_WORD.findall(question)]
    if german + english > 1 or len(words) < 3 or _mostly_known_words(words):  # "deepseek app datenschutz"
        return None
    guess, probability = _any_language_identifier().classify(_without_names(question))
    return str(guess) if guess not in LANGUAGES and probability >= OTHER_LANGUAGE_MIN_P else None


def refusal_sentence(lang: str) -> str:
    """The fixed refusal sentence in ``lang`` (English for a language we do not answer in).

    >>> refusal_sentence("de")
    'Dazu enthalten die Artikel keine Angabe.'
    """
    return REFUSAL.get(lang, REFUSAL["en"])


def cut_notice(lang: str, limit: int) -> str:
    """What an answer says when its token limit stopped it before one sentence passed its check: the limit
    stopped it, not the articles, so it is not the refusal sentence.

    >>> cut_notice("en", 5)
    'The reply reached its limit of 5 tokens before a sentence of it could be checked.'
    """
    if lang == "de":
        return f"Die Antwort erreichte ihr Limit von {limit} Tokens, bevor ein Satz geprüft werden konnte."
    return f"The reply reached its limit of {limit} tokens before a sentence of it could be checked."


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that are (nearly) only German or only English. Words spelled the same in
# both ("in", "an", "was", "will", "war", "also", "so", "man", "chips") are left
# out on purpose: they would pull short questions the wrong way.
_GERMAN_WORDS = _word_set(
    """
    der die das den dem des ein eine einer einen einem eines kein keine keinen
    wie wieviel wieviele wer wen wem wessen wo wann warum wieso weshalb welche welcher welches welchen
    ist sind hat haben hatte hatten wurde wurden wird werden gibt gab kann können konnte sollen soll
    und oder aber nicht auch noch schon nur sehr mehr viele viel wenig weniger als
    mit für von vom zu zum zur im ins auf aus bei beim nach über unter gegen ohne um bis seit laut durch
    sich es er sie ihr ihre sein seine seinen ich du wir uns mich dich dazu davon darüber daran
    diese dieser dieses diesen jetzt heute hier dort denn doch ob dass dann erst wenn weil damit sowie
    etwa genau gegenüber jedoch trotz wegen während
    gekostet kostete kosten kostet genutzt nutzte benutzt benutzte verwendet verwendete gegründet gründete
    verlor verloren verlust verluste gründer unternehmen aktie aktien börse börsenwert marktwert
    entwicklungskosten trainingskosten sanktionen modell modelle rechenleistung grafikkarten
    milliarden millionen prozent geld artikel quelle unterschied zwischen chef sagte sagt meint
    behauptet reagierte steht hinter veröffentlicht westliche konzerne brauchen braucht
    hallo danke bitte tschüss
    """
)
_ENGLISH_WORDS = _word_set(
    """
    the a of to did does do done is are were be been being has have had
    how what which who whom whose when where why many much
    and or but not no only very more less than with for from about by into on at after before
    against between without because it its they their them this that these those he she his her we you
    there here any some according said say says claim claimed think thinks then if because while
    though however despite during versus
    cost costs spend spent use used using uses lose lost loss losses founder founded found company
    companies share shares stock market value valuation sanctions model models training trained train
    billion million percent percentage money articles article source difference react reacted
    behind released release need needs western chip own owns
    hi hello hey thanks thank please
    """
)
_WORD = re.compile(r"[^\W\d_]+")
# Tokens that name things rather than belong to a language: digits, inner capitals, acronyms.
# Checked token by token (split on whitespace), so the cost stays linear in the text's length.
_NAME_MARK = re.compile(r"\d|[a-zäöü][A-ZÄÖÜ]")
_ACRONYM = re.compile(r"\b[A-ZÄÖÜ]{2,}s?\b")
MIN_MODEL_CONFIDENCE = 0.7


def word_votes(text: str) -> tuple[int, int]:
    """Count the words of ``text`` that exist only in German and only in English.

    >>> word_votes("Wie viele GPUs?")
    (2, 0)
    >>> word_votes("How many GPUs?")
    (0, 2)
    >>> word_votes("H800 Chips?")
    (0, 0)
    """
    words = _WORD.findall(text.lower())
    return sum(w in _GERMAN_WORDS for w in words), sum(w in _ENGLISH_WORDS for w in words)


@functools.cache
def _identifier() -> LanguageIdentifier:
    """py3langid restricted to German and English: a shallow copy of the all-language model.

    ``set_languages`` assigns new, sliced arrays to the copy and leaves the shared full model
    untouched, so the model file is read once (about 1 s) instead of twice.
    """
    identifier = copy.copy(_any_language_identifier())
    identifier.set_languages(list(LANGUAGES))
    return identifier


@functools.cache
def _any_language_identifier() -> LanguageIdentifier:
    # Loaded on first use (about 1 s) and kept; read-only afterwards.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def preload() -> None:
    """Load the language models answers need (py3langid once, wordfreq's German and English lists).

    About 1.5 s on 2 cores, paid once per process: `rag.wiring.answerer` calls this at start-up so
    that the first answer of a server or a `rag ask` does not pay it inside its first-token time.
    """
    from wordfreq import zipf_frequency

    _identifier()
    _any_language_identifier()
    for lang in LANGUAGES:
        zipf_frequency("the", lang)


_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")
COMMON_ZIPF = 3.0
_LOWER_WORD = re.compile(r"(?<![\w-])[a-zäöüßéèáàíóúñç]{2,}(?![\w-])")


def in_another_language(sentence: str) -> bool:
    """Whether an answer sentence is in neither German nor English ("Hola amigo, Microsoft ofrece ...").

    Only a sentence of at least three lowercase words, none of them a German- or English-only word,
    that py3langid (all its languages) puts in a third language: names alone ("Microsoft-CEO Satya
    Nadella") and short German phrases it takes for Luxembourgish or Dutch are not flagged.

    >>> in_another_language("Hola amigo, Microsoft ofrece DeepSeek R1 en Azure AI Foundry y en GitHub.")
    True
    >>> in_another_language("Das Auftauchen des DeepSeek-Modells löste Schockwellen an der Wall Street aus.")
    False
    >>> in_another_language("Microsoft-CEO Satya Nadella")
    False
    >>> in_another_language("Satya Nadella called R1 super impressive.")
    False
    """
    lower = _LOWER_WORD.findall(sentence)
    if len(lower) < 3 or word_votes(sentence) != (0, 0):
        return False
    if _mostly_known_words(lower):
        return False
    return str(_any_language_identifier().classify(sentence)[0]) not in LANGUAGES


def _mostly_known_words(words: list[str]) -> bool:
    """py3langid guesses wildly on a short English sentence ("Satya Nadella called R1 super impressive":
    Italian), so words of four letters or more that wordfreq knows as common English or German words (Zipf
    >= 3, about once in a million words) keep a text ours when they are at least half of them."""
    from wordfreq import zipf_frequency

    long = [w for w in words if len(w) >= 4]
    known = [w for w in long if max(zipf_frequency(w, "en"), zipf_frequency(w, "de")) >= COMMON_ZIPF]
    return bool(long) and 2 * len(known) >= len(long)


def model_guess(text: str) -> tuple[str, float] | None:
    """py3langid's ``(language, probability)`` for ``text`` without names; None if nothing is left.

    >>> model_guess("DeepSeek H800")
    """
    rest = _without_names(text)
    if not _WORD.search(rest):
        return None
    lang, probability = _identifier().classify(rest)
    return str(lang), float(probability)


def _without_names(text: str) -> str:
    """``text`` without names and acronyms, which tell nothing of its language ("DeepSeek", "GPU")."""
    return " ".join(_ACRONYM.sub(" ", " ".join(t for t in text.split() if not _NAME_MARK.search(t))).split())


# A word counts as German in an English sentence when wordfreq finds it at least this often in German
# (Zipf scale: 1.5 is about once in 30 million words) and GERMAN_MARGIN more often than in English:
# "Weckruf" (de 3.1, en 0.0), "Plattform" (4.4 / 1.4), "Universität" (4.9 / 2.3). Names used in both
# languages ("Nvidia", "Hangzhou", "Liang") and German first names seen in English text ("Silke", 3.5 / 2.0) stay.
GERMAN_MIN_ZIPF = 1.5
GERMAN_MARGIN = 1.5
_LETTERS = re.compile(r"[^\W\d_]{4,}")


def german_words(sentence: str) -> tuple[str, ...]:
    """The German words (four letters or more) left in an English sentence, each once, in order.

    A small model answering an English question from German passages often copies German words or a
    whole quotation ("a \"Weckruf\" for the US-Tech-Industrie"): these are what it missed translating.
    Word frequencies come from wordfreq (lists shipped inside its wheel; the first call loads them, ~1 s).

    >>> german_words('Trump called DeepSeek a "Weckruf" for the US-Tech-Industrie [1].')
    ('Weckruf', 'Industrie')
    >>> german_words("Nvidia lost 600 billion dollars in Hangzhou.")
    ()
    """
    from wordfreq import zipf_frequency

    found: dict[str, None] = {}
    for word in _LETTERS.findall(sentence):
        german = zipf_frequency(word, "de")
        if german >= GERMAN_MIN_ZIPF and german >= zipf_frequency(word, "en") + GERMAN_MARGIN:
            found[word] = None
    return tuple(found)


def detect_language(text: str, default: str = DEFAULT_LANGUAGE) -> str:
    """Return ``"de"`` or ``"en"`` for a (short) question; ``default`` when undecided.

    >>> detect_language("Wie viele GPUs nutzte DeepSeek?")
    'de'
    >>> detect_language("how mny chips did deepseek use")
    'en'
    >>> detect_language("Nvidia Verlust")
    'de'
    >>> detect_language("H800 Chips?")
    'de'
    >>> detect_language("hello"), detect_language("Hallo")
    ('en', 'de')
    """
    german, english = word_votes(text)
    if german != english:
        return "de" if german > english else "en"
    return _confident_guess(text) or default


def _confident_guess(text: str) -> str | None:
    """py3langid's language when it is sure enough, else None."""
    guess = model_guess(text)
    return guess[0] if guess is not None and guess[1] >= MIN_MODEL_CONFIDENCE else None


# Wordings the model uses for the same refusal; the pipeline replaces them by the fixed sentence.
_REFUSAL_VARIANTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "de": ("Dazu enthält der Artikel keine Angabe.", "Dazu enthalten die Artikel keine Angaben.",
               "Die Artikel enthalten dazu keine Angabe."),
        "en": ("The article does not say.", "The articles don't say.", "The article doesn't say."),
    }
)  # fmt: skip
_REFUSAL_TAIL = re.compile(r"[\s\.\!\*_\"'“”„»«]*(?:\[[^\]]*\][\s\.]*)*$")


def _normalise_sentence(text: str) -> str:
    collapsed = " ".join(text.strip().strip("*_\"'“”„»«").split())
    return _REFUSAL_TAIL.sub("", collapsed).lower()


def is_refusal(text: str, lang: str | None = None) -> bool:
    """Whether ``text`` is the fixed refusal sentence (of ``lang``, or of either language).

    Tolerates surrounding whitespace, emphasis, a missing final period and a
    stray citation marker after it.

    >>> is_refusal("Dazu enthalten die Artikel keine Angabe.", "de")
    True
    >>> is_refusal("  The articles do not say [1]  ")
    True
    >>> is_refusal("The articles do not say how many GPUs.", "en")
    False
    """
    langs = [lang] if lang is not None and lang in REFUSAL else list(REFUSAL)
    candidates = [sentence for code in langs for sentence in (REFUSAL[code], *_REFUSAL_VARIANTS[code])]
    seen = _normalise_sentence(text)
    return any(seen == _normalise_sentence(sentence) for sentence in candidates)


def has_language_evidence(text: str) -> bool:
    """Whether ``text`` shows its language at all ("ChatGPT [1]" or "Marina Zhang" does not).

    >>> has_language_evidence("ChatGPT [1]."), has_language_evidence("It was ChatGPT [1].")
    (False, True)
    """
    return word_votes(text) != (0, 0) or _confident_guess(text) is not None
