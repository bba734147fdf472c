"""Article metadata: title, publication date, author and source URL, as far as the file states them.

Three places hold them, tried in this order, each filling only what is still empty:

1. Markdown front matter (a YAML block between ``---`` lines at the top of a .md file);
2. an HTML page's ``<meta>`` tags, JSON-LD, ``<link rel=canonical>`` and ``<time>``;
3. the plain-text forms of saved articles, in the head of the text (the lines before the first
   long paragraph): a date line (``28.01.2025``, ``28. Januar 2025``, ``2025-01-28``), a byline
   (``by Silke Mayr``, ``Von Max Muster``) and a labelled URL (``Quelle: https://…``).

Nothing is guessed: a field the file does not state stays ``None``, and a date must name its day,
month and year (dateutil fills missing parts from a default, so each date is parsed with two
different defaults and kept only when both agree). The text is never changed, so offsets stay true.

>>> text_metadata("Titel\\n\\n28.01.2025\\nby Silke Mayr\\n" + "Text. " * 50)
Metadata(title=None, published='2025-01-28', author='Silke Mayr', url=None)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import yaml
from dateutil import parser as dateparser
from selectolax.lexbor import LexborHTMLParser

from rag.lexicon import MONTH_ABBREVIATIONS, MONTH_NAMES, MONTHS, alternation

# The head of a plain text ends at its first line this long (a body paragraph) ...
_PARAGRAPH_CHARS = 200
# ... or after this many non-empty lines.
_HEAD_LINES = 12
# A date or byline is a short line of its own; a longer line is a sentence that mentions one.
_META_LINE_CHARS = 100

_DATE = (
    r"\d{4}-\d{2}-\d{2}"
    r"|\d{1,2}\.\s?\d{1,2}\.\s?\d{4}"
    rf"|\d{{1,2}}\.?\s+(?:{alternation(MONTHS)})\.?\s+\d{{4}}"
    rf"|(?:{alternation(MONTHS)})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
)
_DATE_LABEL = (
    r"(?:(?:veröffentlicht|publiziert|erschienen|published|posted|datum|date)(?:\s+(?:am|on))?\s*:?\s*"
    r"|(?:am|on)\s+)"
)
_TIME = r"(?:,?\s*(?:um\s+)?\d{1,2}:\d{2}(?::\d{2})?(?:\s*uhr)?)?"
_DATE_SEGMENT = re.compile(rf"{_DATE_LABEL}?(?P<date>{_DATE}){_TIME}", re.IGNORECASE)
# Names are capitalised words (case-sensitive), so "von China lernen" is no byline.
_NAME = r"[A-ZÄÖÜ][\w.'-]+(?:\s+[A-ZÄÖÜ][\w.'-]+){1,3}"
_BYLINE_SEGMENT = re.compile(
    rf"(?i:by|von|written by|posted by|autor|autorin|author|text)\s*:?\s+"
    rf"(?P<name>{_NAME}(?:\s*(?:,|und|and|&)\s*{_NAME})*?)(?:\s*,\s*.{{0,40}})?"
)
_URL = r"https?://[^\s<>\"']+"
_URL_LINE = re.compile(rf"(?:(?i:quelle|source|url|link|original(?:artikel)?)\s*:\s*)?(?P<url>{_URL})")
# Separators between the parts of a meta line: "Von Max Muster | 28.01.2025 · 3 Min. Lesezeit".
_SEGMENTS = re.compile(r"\s+[|·•–—]\s+|\s*\|\s*")
# A date line about a change is no publication date.
_UPDATE = re.compile(r"aktualisiert|geändert|updated|modified|stand\b", re.IGNORECASE)


@dataclass(frozen=True)
class Metadata:
    title: str | None = None
    published: str | None = None  # ISO YYYY-MM-DD
    author: str | None = None
    url: str | None = None

    def fill(self, other: Metadata) -> Metadata:
        """These fields, with the empty ones taken from ``other``."""
        return replace(self, **{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})


# ----------------------------------------------------------------------------- dates


class _Months(dateparser.parserinfo):
    """dateutil's English month names plus the German ones ("28. Januar 2025", "3. Mär. 2024")."""

    MONTHS: ClassVar[list[tuple[str, ...]]] = [
        tuple(
            dict.fromkeys(
                [*dateparser.parserinfo.MONTHS[n - 1]]
                + [w for words in (MONTH_NAMES, MONTH_ABBREVIATIONS) for w, m in words.items() if m == n]
            )
        )
        for n in range(1, 13)
    ]


_PARSERINFO = _Months(dayfirst=True)  # "02.05.2025" is the 2nd of May, as German articles write it
_YEAR_FIRST = _Months(yearfirst=True)  # "2025-05-02" too: dayfirst alone reads it as 2025-02-05


def iso_date(value: object) -> str | None:
    """``value`` (a string, date or datetime) as ``YYYY-MM-DD``; None unless it names day, month and year.

    A time and a time zone are ignored: the date is the one the article states.

    >>> [iso_date(v) for v in ("28.01.2025", "2025-01-28T09:30:00+01:00", "28. Januar 2025", "Jan 28, 2025")]
    ['2025-01-28', '2025-01-28', '2025-01-28', '2025-01-28']
    >>> [iso_date(v) for v in ("2025-05-02", "2025/05/02", "2025-12-01T08:00:00.000Z", "02.05.2025", "05/02/2025")]
    ['2025-05-02', '2025-05-02', '2025-12-01', '2025-05-02', '2025-02-05']
    >>> [iso_date(v) for v in ("20250502", "2025 05 02", "20250502T0800")]
    ['2025-05-02', '2025-05-02', '2025-05-02']
    >>> [iso_date(v) for v in ("Januar 2025", "2025", "31.02.2025", "3 Minuten Lesezeit", "")]
    [None, None, None, None, None]
    """
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str) or not re.search(r"\d{4}", value) or len(value) > 80:
        return None
    text = re.sub(r"(\d)\.(?=[^\W\d_])", r"\1. ", value.strip())  # "28.Januar" -> "28. Januar"
    # Year first, with or without separators ("2025-05-02", "2025/05/02", "2025 05 02", "20250502").
    year_first = re.match(r"\d{4}(?:\s*[-/.]\s*|\s+)\d{1,2}(?:\s*[-/.]\s*|\s+)\d{1,2}(?!\d)|\d{8}(?!\d)", text)
    info = _YEAR_FIRST if year_first else _PARSERINFO
    try:
        # Two defaults that differ in year, month and day: a part the text lacks shows as a difference.
        first = dateparser.parse(text, parserinfo=info, default=dt.datetime(2000, 1, 1))
        second = dateparser.parse(text, parserinfo=info, default=dt.datetime(2004, 2, 2))
    except (ValueError, OverflowError):
        return None
    if first.date() != second.date():
        return None
    return first.date().isoformat()


# ----------------------------------------------------------------------------- plain text


def _head(text: str) -> list[str]:
    """The non-empty lines before the first paragraph-long line, at most ``_HEAD_LINES``."""
    head: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if len(line) >= _PARAGRAPH_CHARS or len(head) >= _HEAD_LINES:
            break
        head.append(line)
    return head


def _segments(line: str) -> list[str]:
    return [s.strip() for s in _SEGMENTS.split(line) if s.strip()] if len(line) <= _META_LINE_CHARS else []


def text_metadata(text: str) -> Metadata:
    """The date, byline and source URL lines in the head of a plain text (and a labelled URL at its end).

    >>> text_metadata("Von Max Muster | 3. März 2024 · 4 Min. Lesezeit\\n" + "Text. " * 50)
    Metadata(title=None, published='2024-03-03', author='Max Muster', url=None)
    >>> text_metadata("Was am 27.01.2025 geschah, war ein Schock für die Börse und für viele Anleger.")
    Metadata(title=None, published=None, author=None, url=None)
    """
    published = author = url = None
    head = _head(text)
    for line in head:
        for segment in _segments(line):
            if published is None and (m := _DATE_SEGMENT.fullmatch(segment)) and not _UPDATE.search(segment):
                published = iso_date(m.group("date"))
            elif author is None and (m := _BYLINE_SEGMENT.fullmatch(segment)):
                author = m.group("name")
    tail = [line.strip() for line in text.splitlines() if line.strip()][-3:]
    for line in (*head, *tail):
        if m := _URL_LINE.fullmatch(line):
            url = m.group("url").rstrip(".,;)")
            break
    return Metadata(published=published, author=author, url=url)


# ----------------------------------------------------------------------------- Markdown front matter

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?P<yaml>.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


def split_front_matter(text: str) -> tuple[dict[str, Any], int]:
    """The front matter of a Markdown text as a mapping, and where the body begins (0: none).

    A block that is not a YAML mapping is no front matter (a Markdown file may open with a rule).

    >>> split_front_matter("---\\ntitle: R1\\ndate: 2025-01-28\\n---\\n# R1\\n")
    ({'title': 'R1', 'date': datetime.date(2025, 1, 28)}, 35)
    >>> split_front_matter("---\\n\\nText")
    ({}, 0)
    """
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, 0
    try:
        data = yaml.safe_load(m.group("yaml"))
    except yaml.YAMLError:
        return {}, 0
    if not isinstance(data, dict):
        return {}, 0
    return {str(k): v for k, v in data.items()}, m.end()


def front_matter_metadata(data: dict[str, Any]) -> Metadata:
    """Title, date, author and URL from front matter keys as Jekyll, Hugo and other generators write them.

    >>> front_matter_metadata({"Title": "R1", "date": "28.01.2025", "authors": ["A B", {"name": "C D"}]})
    Metadata(title='R1', published='2025-01-28', author='A B, C D', url=None)
    """
    keys = {k.lower().replace("-", "_"): v for k, v in data.items()}

    def first(*names: str) -> Any:
        return next((keys[n] for n in names if keys.get(n) not in (None, "", [])), None)

    title = first("title", "headline")
    return Metadata(
        title=_clean_text(title) if isinstance(title, str) else None,
        published=iso_date(first("published", "date_published", "datepublished", "publishdate", "pubdate", "date")),
        author=_names(first("author", "authors", "byline", "creator")),
        url=_http_url(first("url", "canonical_url", "canonical", "permalink", "source_url", "source", "link")),
    )


# ----------------------------------------------------------------------------- HTML


def html_metadata(tree: LexborHTMLParser) -> Metadata:
    """Metadata of a parsed page: ``<meta>`` tags, then JSON-LD, then the page's own elements.

    Read before invisible parts (``<head>``, ``<header>``) are removed for the text.

    >>> html_metadata(LexborHTMLParser('''<head><meta property="og:title" content="R1">
    ... <meta name="author" content="Silke Mayr"><link rel="canonical" href="https://x.de/r1"></head>
    ... <body><article><time datetime="2025-01-28T09:00">28. Januar</time></article></body>'''))
    Metadata(title='R1', published='2025-01-28', author='Silke Mayr', url='https://x.de/r1')
    """
    meta: dict[str, str] = {}
    for node in tree.css("meta"):
        key = node.attributes.get("property") or node.attributes.get("name") or node.attributes.get("itemprop")
        content = (node.attributes.get("content") or "").strip()
        if key and content:
            meta.setdefault(key.strip().lower(), content)

    def first(*names: str) -> str | None:
        return next((meta[n] for n in names if n in meta), None)

    ld = _json_ld(tree)
    tagged = Metadata(
        title=_clean_text(first("og:title", "twitter:title", "dc.title", "title")),
        published=iso_date(
            first(
                "article:published_time",
                "og:article:published_time",
                "datepublished",
                "date",
                "pubdate",
                "publishdate",
                "dc.date.issued",
                "dc.date",
                "parsely-pub-date",
                "sailthru.date",
            )
        ),
        author=_names(first("author", "dc.creator", "parsely-author", "sailthru.author", "article:author")),
        url=_http_url(_attr(tree, "link[rel=canonical]", "href") or first("og:url")),
    )
    linked = Metadata(
        title=_clean_text(ld.get("headline")),
        published=iso_date(ld.get("datePublished")),
        author=_names(ld.get("author")),
        url=_http_url(ld.get("url")),
    )
    time_node = tree.css_first("article time[datetime]") or tree.css_first("time[datetime]")
    h1 = tree.css_first("article h1") or tree.css_first("h1")
    title_node = tree.css_first("title")
    page = Metadata(
        title=_clean_text(h1.text(deep=True) if h1 else None) or _clean_text(title_node.text() if title_node else None),
        published=iso_date(time_node.attributes.get("datetime") if time_node else None)
        or iso_date(_text_of(tree, "article time") or _text_of(tree, "time")),
        author=_names(_attr(tree, "[itemprop=author] [itemprop=name]", "content"))
        or _names(_text_of(tree, "[itemprop=author]"))
        or _names(_text_of(tree, "[rel=author]")),
    )
    return tagged.fill(linked).fill(page)


def _json_ld(tree: LexborHTMLParser) -> dict[str, Any]:
    """The first JSON-LD object that describes an article (has a headline or datePublished)."""
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text() or "")
        except json.JSONDecodeError:
            continue
        for item in _walk(data):
            if "headline" in item or "datePublished" in item:
                return item
    return {}


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _walk(item)
    elif isinstance(data, dict):
        yield data
        yield from _walk(data.get("@graph", []))


def _attr(tree: LexborHTMLParser, selector: str, name: str) -> str | None:
    node = tree.css_first(selector)
    return node.attributes.get(name) if node is not None else None


def _text_of(tree: LexborHTMLParser, selector: str) -> str | None:
    node = tree.css_first(selector)
    return node.text(deep=True) if node is not None else None


# ----------------------------------------------------------------------------- values


def _clean_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _names(value: object) -> str | None:
    """Author names from a string, a list, or objects with a ``name`` (JSON-LD, front matter); no URLs."""
    if isinstance(value, dict):
        value = value.get("name")
    if isinstance(value, list):
        names = [n for n in (_names(v) for v in value) if n]
        return ", ".join(dict.fromkeys(names)) or None
    text = _clean_text(value)
    if text is None or re.match(r"https?://", text):  # article:author is often a profile URL
        return None
    return re.sub(r"^(?i:by|von)\s+", "", text)


def _http_url(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    text = _clean_text(value)
    return text if text is not None and re.fullmatch(_URL, text) else None
