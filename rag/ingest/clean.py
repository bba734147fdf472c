"""Keep the article, drop the web page around it, without changing a character.

News pages saved as text carry boilerplate: bylines, reading times, image alt texts
("blog main image"), share buttons, job adverts, "Meistgelesene Artikel" teasers,
"You may also like" lists and investment disclaimers. ``clean`` classifies each line
and returns the character spans of the lines worth keeping. It never rewrites text,
so every span is a slice of the original and citations stay traceable.

Rules work on whole lines (a paragraph is one line in extracted articles) and come
in three kinds, applied in this order:

1. line rules: a line that is boilerplate on its own (``_is_boilerplate_line``);
2. call-to-action blocks: an advert paragraph drops with the heading just above it;
3. tail sections: a heading such as "Weitere Artikel zu ..." or "#Disclaimer" in the
   second half of the text drops everything after it; earlier in the text it drops
   only itself and the short teaser lines that follow it.

>>> text = "Titel\\n3 Minuten Lesezeit\\nDer Text.\\nYou may also like"
>>> [text[s.start:s.end] for s in clean(text)]
['Titel', 'Der Text.']
"""

from __future__ import annotations

import re

from rag.ingest.meta import split_front_matter
from rag.lexicon import MONTHS, alternation
from rag.types import Span

# A line with no letter or digit: lone "-" bullets, separators, a lone emoji.
_NO_WORD = re.compile(r"[^\w]*")

_DATE = r"(\d{1,2}\.\s?\d{1,2}\.\s?\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})"
_MONTH = rf"(?:{alternation(MONTHS)})\.?"  # matched case-insensitively, like the lines it is part of

# Whole-line patterns (matched case-insensitively against the stripped line).
_BOILERPLATE_LINES = [
    # Date / time / meta lines of a page header or a teaser card.
    rf"((stand|veröffentlicht|aktualisiert|published|updated|posted)( am| on)?:?\s*)?{_DATE}"
    r"(,?\s*(um\s*)?\d{1,2}:\d{2}(\s*uhr)?)?",
    rf"\d{{1,2}}\.?\s*{_MONTH}\s*\d{{4}}",
    rf"{_MONTH}\s*\d{{1,2}},?\s*\d{{4}}",
    r"(lesezeit:?\s*)?\d+\s*(minuten?|min\.?)\s*(lesezeit|lesen)?",
    r"\d+\s*min(ute)?s?\s*read",
    r"\d+\s*(comments?|kommentare?|antworten|replies)",
    r"(kommentare|comments)\s*\(\d+\)",
    # Bylines: "by Silke Mayr", "Von Max Muster", "Autorin: Jana Beispiel".
    # The name part is case-sensitive so that a heading like "Von China lernen" stays.
    r"(by|von|text|autor|autorin|author|written by|posted by)\s*:?\s*"
    r"(?-i:[A-ZÄÖÜ][\w.'-]+(\s+[A-ZÄÖÜ][\w.'-]+){1,3})(\s*[,|]\s*.{0,40})?",
    # Alt texts of images that lost their picture: "blog main image", "article card image".
    # Lower case only: a real heading ("Das neue Bild") is capitalised.
    r"(?-i:([a-z-]+\s+){0,4}(image|img|photo|picture|thumbnail|icon|logo|banner|avatar|bild|foto))",
    # Navigation and buttons.
    r"(mehr|more|weiterlesen|weiter lesen|read more|mehr lesen|mehr erfahren|learn more|zurück|weiter|"
    r"back|next|previous|vorheriger artikel|nächster artikel|teilen|share|share this( article)?|"
    r"drucken|print|kommentieren|anzeige|werbung|advertisement|sponsored|newsletter|login|anmelden|"
    r"menü|menu|suche|search|home|startseite|nach oben|top|tags|schlagwörter|kategorien|categories|"
    r"artikel teilen|jetzt teilen|link kopieren|copy link)\s*[:»›>…]*",
    # Social buttons on one line: "Facebook Twitter LinkedIn E-Mail".
    r"((facebook|twitter|x|linkedin|xing|whatsapp|telegram|pinterest|reddit|e-mail|email|mail|"
    r"instagram|threads|bluesky|mastodon|flipboard)[\s|,·•]*){2,}",
    # Copyright and legal footer lines.
    r"(©|\(c\)|copyright\s*(©|\(c\))?\s*\d{4}).{0,150}",
    r".{0,100}(alle rechte vorbehalten|all rights reserved).{0,100}",
]
_BOILERPLATE_LINE = re.compile("|".join(f"(?:{p})" for p in _BOILERPLATE_LINES), re.IGNORECASE)

# Patterns found anywhere in a short line (<= _PROMO_MAX chars): promotions and link teasers.
_PROMO_MAX = 300
_PROMO = re.compile(
    r"finden sie (hier|in unserer|auf unserer|in diesem)|entdecken sie mehr|hier klicken|klicken sie hier|"
    r"click here|^(lesen sie auch|lies auch|mehr zum thema|auch interessant|siehe auch|read also|"
    r"see also|related|read more)\s*[:–—-]|jetzt (kostenlos )?(abonnieren|anmelden|registrieren|"
    r"bewerben|testen|sichern|downloaden|herunterladen)|(sign up|subscribe) (for|to)|follow us|"
    r"folgen sie uns|newsletter (abonnieren|bestellen)|(wir verwenden|we use|diese website verwendet|"
    r"this (web)?site uses) cookies|"
    r"keine anlageberatung|not (constitute )?(financial|investment) advice",
    re.IGNORECASE,
)

# Call-to-action paragraphs of adverts ("Lassen Sie sich kostenlos von einem unserer Berater informieren").
_CALL_TO_ACTION = re.compile(
    r"lassen sie sich .{0,60}(beraten|informieren)|unsere[rnm]? (berater|experten) .{0,40}(beraten|"
    r"informieren)|(bewerben|registrieren|melden) sie sich (jetzt|noch heute|kostenlos)|"
    r"(apply|register|sign up) (now|today)|kostenlose?s? (beratung|erstgespräch|probeabo)",
    re.IGNORECASE,
)

# Headings that open a section of links, teasers, comments or legal text.
_TAIL_MARKER = re.compile(
    r"#*\s*(meistgelesen(e|en)?( artikel| beiträge| news)?|meist gelesen|most (read|popular|viewed)|"
    r"(weitere|mehr|ähnliche|verwandte|passende) (artikel|beiträge|nachrichten|news|themen|"
    r"stories)\b.{0,60}|(related|more|similar|recommended|popular) (articles|stories|posts|news|reading)"
    r"\b.{0,40}|you (may|might) also like|(das|dies) könnte (sie|dich) auch interessieren|"
    r"auch interessant|empfohlene artikel|mehr zum thema|lesen sie (auch|mehr)|"
    r"disclaimer|haftungsausschluss|risikohinweis|rechtliche[rn]? hinweise?|"
    r"kommentare|comments|leave a (reply|comment)|schreibe(n sie)? einen kommentar)\s*:?",
    re.IGNORECASE,
)

_PROSE_MIN_WORDS = 8
_HEADING_MAX_WORDS = 14
_SENTENCE_END = tuple('.!?"“”»«)')


def clean(text: str) -> list[Span]:
    """Return the spans of ``text`` that are article content, sorted and non-overlapping.

    Each span is one kept line with surrounding whitespace excluded, so
    ``text[span.start:span.end]`` is exactly the kept content.

    Markdown front matter (the metadata block at the top) is no article text either.

    >>> text = "by Silke Mayr\\n0 comments\\nDeepSeek nutzte 2.048 GPUs.\\n-\\nMEHR"
    >>> [text[s.start:s.end] for s in clean(text)]
    ['DeepSeek nutzte 2.048 GPUs.']
    """
    _, body = split_front_matter(text)
    lines = [span for span in _line_spans(text) if span.start >= body]
    contents = [text[s.start : s.end] for s in lines]
    keep = [not _is_boilerplate_line(line) for line in contents]
    keep = _drop_call_to_action_blocks(contents, keep)
    keep = _drop_tail_sections(contents, keep)
    return [span for span, kept in zip(lines, keep, strict=True) if kept]


def _line_spans(text: str) -> list[Span]:
    """Spans of the non-blank lines of ``text``, each stripped of surrounding whitespace."""
    spans = []
    for match in re.finditer(r"[^\n]+", text):
        line = match.group()
        stripped = line.strip()
        if stripped:
            start = match.start() + (len(line) - len(line.lstrip()))
            spans.append(Span(start, start + len(stripped)))
    return spans


def _is_boilerplate_line(line: str) -> bool:
    """True for a line that is page furniture whatever surrounds it.

    >>> _is_boilerplate_line("3 Minuten Lesezeit"), _is_boilerplate_line("Nvidia verlor 600 Milliarden.")
    (True, False)
    """
    if _NO_WORD.fullmatch(line) or _BOILERPLATE_LINE.fullmatch(line):
        return True
    return (len(line) <= _PROMO_MAX and bool(_PROMO.search(line))) or _is_caption(line)


def _is_caption(line: str) -> bool:
    """An image caption or alt text: "Foto: dpa", "Darstellung des Modells ... Verordnung".

    Captions start with a picture word; a line that does and then ends without
    sentence punctuation is alt text that lost its image, not a sentence.
    """
    match = re.match(
        r"(symbolbild|bildunterschrift|darstellung|abbildung|illustration|grafik|foto|fotos|bild|"
        r"bildquelle|image|photo|picture|caption|credit)\b\s*(:|\||des|der|von|eines|einer|of|by|zeigt|"
        r"shows)",
        line,
        re.IGNORECASE,
    )
    if not match or len(line) > _PROMO_MAX:
        return False
    return match.group(2) in (":", "|") or not line.endswith(_SENTENCE_END)


def _is_prose(line: str) -> bool:
    """A paragraph of running text rather than a heading, teaser title or button."""
    return len(line.split()) >= _PROSE_MIN_WORDS and line.endswith(_SENTENCE_END)


def _is_heading(line: str) -> bool:
    return len(line.split()) <= _HEADING_MAX_WORDS and not line.endswith(".")


def _drop_call_to_action_blocks(lines: list[str], keep: list[bool]) -> list[bool]:
    """Drop advert paragraphs together with the heading right above them.

    A job advert reads "Mehr Flexibilität, mehr Gehalt, mehr Karriere in 2025?" /
    "... Lassen Sie sich kostenlos von einem unserer Berater informieren." / "MEHR":
    the heading is only recognisable by the advert under it.
    """
    keep = list(keep)
    for i, line in enumerate(lines):
        # Long lines are articles that happen to quote an advert phrase, not adverts.
        if len(line) <= _PROMO_MAX and _CALL_TO_ACTION.search(line):
            keep[i] = False
            if i > 0 and _is_heading(lines[i - 1]):
                keep[i - 1] = False
    return keep


def _drop_tail_sections(lines: list[str], keep: list[bool]) -> list[bool]:
    """Drop link lists, comments and disclaimers that follow a section marker.

    In the second half of the text (by characters) a marker ends the article:
    everything after it goes. Earlier, it drops itself and the teaser titles under
    it, up to the next paragraph of prose.
    """
    keep = list(keep)
    total = sum(len(line) for line in lines)
    seen = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if len(line) <= 100 and _TAIL_MARKER.fullmatch(line):
            if seen >= total / 2:
                return keep[:i] + [False] * (len(lines) - i)
            keep[i] = False
            j = i + 1
            while j < len(lines) and not _is_prose(lines[j]):
                keep[j] = False
                j += 1
            i = j
            continue
        seen += len(line)
        i += 1
    return keep
